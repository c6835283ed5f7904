package dev.veneur.proxy.ingest;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.memory.MemoryBudget;
import io.vertx.core.Context;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.internal.http.HttpServerRequestInternal;
import io.vertx.core.internal.http.HttpServerRequestWrapper;

/**
 * The bytes of one gRPC call, inside the memory budget. Vert.x gRPC reads a call's HTTP/2 DATA
 * frames into its deframer until a message is whole, and it does not count them anywhere: this
 * wrapper sits between the HTTP/2 stream and that deframer, reserves every frame in the budget as
 * it arrives (sized by what arrived, never by the length a message declares), and pauses the
 * stream when the budget is full, so HTTP/2 flow control holds the client back (its stream and
 * connection windows are not credited while paused). The bytes of a whole message are given back
 * once it is translated ({@link #consumed}); what is left at the call's end (a message cut short,
 * or one skipped for its size) is given back then ({@link #finish}).
 *
 * <p>As for {@code /import} bodies, one call at a time may read on through a full budget ({@link
 * MemoryBudget#tryLead}): paused calls each hold part of a message, and if they filled the budget
 * between them none could finish and free anything.
 */
final class GrpcCall extends HttpServerRequestWrapper {
  /** Told when the call must end for want of memory or time. */
  interface Listener {
    void overloaded();

    void tooSlow();
  }

  /**
   * What a received byte may cost on the heap until its message is whole: Vert.x's deframer
   * appends frames to one buffer that grows by doubling, so a message in progress can occupy
   * twice its bytes. Counted at one, 2,000 stalled streams of 256 KiB each filled the 102 MiB
   * budget with ~200 MiB of heap and a -Xmx256m process died (GrpcAttackTest, on a loaded
   * machine); counted at two, the budget bounds the heap they take.
   */
  static final long GROWTH = 2;

  private final Vertx vertx;
  private final Context context;
  private final MemoryBudget budget;
  private final ProxyConfig cfg;
  private Listener listener;
  /** Received and reserved, not yet translated. */
  private long held;
  private boolean paused;
  private boolean pausedByReader;
  private boolean leading;
  private boolean finished;
  private MemoryBudget.Waiter waiter;
  private long waitTimer = -1;
  private long deadlineTimer = -1;
  private long waitedNanos;
  private long waitStarted;

  GrpcCall(HttpServerRequest req, Vertx vertx, Context context, MemoryBudget budget, ProxyConfig cfg) {
    super((HttpServerRequestInternal) req);
    this.vertx = vertx;
    this.context = context;
    this.budget = budget;
    this.cfg = cfg;
  }

  /** Starts the call's deadline; {@code listener} hears of overload and slowness. */
  void begin(Listener l, long deadlineMs) {
    this.listener = l;
    deadlineTimer = vertx.setTimer(Math.max(1, deadlineMs), t -> {
      deadlineTimer = -1;
      if (finished) return;
      if (paused) listener.overloaded();
      else listener.tooSlow();
    });
  }

  @Override
  public HttpServerRequest handler(Handler<Buffer> handler) {
    if (handler == null) return super.handler(null);
    return super.handler(buf -> {
      // Answered already: what the client still sends is dropped here, never handed to the
      // deframer, where it would pile up uncounted for as long as the client keeps the stream open.
      if (finished) return;
      long n = GROWTH * buf.length();
      budget.reserve(n);
      budget.receiving(n);
      held += n;
      handler.handle(buf);
      if (!finished && budget.over() && !paused) waitForMemory();
    });
  }

  // The deframer pauses and resumes the stream too (its own queue): a pause for memory must not be
  // undone by its resume, nor its pause by a resume for memory.
  @Override
  public HttpServerRequest pause() {
    pausedByReader = true;
    return super.pause();
  }

  @Override
  public HttpServerRequest resume() {
    pausedByReader = false;
    if (paused) return this;
    return super.resume();
  }

  @Override
  public HttpServerRequest fetch(long amount) {
    if (paused) return this;
    return super.fetch(amount);
  }

  /** A whole message of {@code bytes} (payload plus its 5-byte prefix) is translated: its bytes go back. */
  void consumed(long bytes) {
    long n = Math.min(GROWTH * bytes, held);
    if (n <= 0) return;
    held -= n;
    budget.receiving(-n);
    budget.release(n);
    if (paused && !budget.over()) memoryAvailable();
  }

  /** After more was handed on (a part of a stream): wait here if that filled the budget. */
  void checkMemory() {
    if (!finished && budget.over() && !paused) waitForMemory();
  }

  /** The call ended (answered, reset or failed): what it still holds goes back. */
  void finish() {
    if (finished) return;
    finished = true;
    if (held > 0) {
      budget.receiving(-held);
      budget.release(held);
      held = 0;
    }
    if (deadlineTimer >= 0) vertx.cancelTimer(deadlineTimer);
    if (waitTimer >= 0) vertx.cancelTimer(waitTimer);
    deadlineTimer = -1;
    waitTimer = -1;
    if (waiter != null) budget.cancel(waiter);
    waiter = null;
    if (leading) {
      leading = false;
      budget.yieldLead(this);
    }
  }

  /**
   * After an answer given before the request ended (a refusal, a deadline): asks the client to stop
   * sending with RST_STREAM NO_ERROR, as RFC 9113 section 8.1 allows once the response is complete,
   * so the stream and whatever Vert.x holds for it are let go now, not when the client gives up.
   */
  void endStream() {
    if (delegate.isEnded()) return;
    try {
      delegate.response().reset(0);
    } catch (RuntimeException alreadyClosed) {
      // the stream is gone already
    }
  }

  private void waitForMemory() {
    if (leading || budget.tryLead(this)) {
      leading = true;
      return;
    }
    paused = true;
    super.pause();
    waitAgain();
  }

  private void memoryAvailable() {
    if (finished) return;
    if (waiter != null) budget.cancel(waiter);
    waiter = null;
    if (waitTimer >= 0) vertx.cancelTimer(waitTimer);
    waitTimer = -1;
    waitedNanos += System.nanoTime() - waitStarted;
    if (budget.over()) {
      if (leading || budget.tryLead(this)) {
        leading = true;
      } else {
        waitAgain();
        return;
      }
    }
    paused = false;
    if (!pausedByReader) super.resume();
  }

  private void waitAgain() {
    waitStarted = System.nanoTime();
    long left = cfg.memoryWaitTimeout.toNanos() - waitedNanos;
    if (left <= 0) {
      listener.overloaded();
      return;
    }
    waitTimer = vertx.setTimer(Math.max(1, left / 1_000_000), t -> {
      waitTimer = -1;
      if (!finished) listener.overloaded();
    });
    waiter = budget.await(context, this::memoryAvailable, held > 0);
  }
}
