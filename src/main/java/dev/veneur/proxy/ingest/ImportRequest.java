package dev.veneur.proxy.ingest;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.memory.MemoryBudget;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.internal.buffer.BufferInternal;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Receives one {@code POST /import} body within the memory budget. Every network read is reserved
 * in the budget as it arrives, sized by what actually arrived (never by a declared length). When
 * the budget is full the socket is paused, so TCP pushes back on the sender, and the request waits
 * its turn; only if the wait passes {@code memory_wait_timeout} is it refused with 503. A request
 * has {@code http_request_timeout} from its first byte to its last, whatever happens: past it, a
 * sender that was too slow gets 408, and one the proxy held back for memory gets 503. Any refusal
 * before the body was read whole closes the connection, so nothing the sender still pushes is
 * kept, and no connection outlives its deadline.
 */
final class ImportRequest {
  /** What the request hands on once its body is complete. */
  interface Sink {
    void received(ImportRequest request);

    void refused(HttpServerRequest req, ImportRefusal refusal, boolean close);
  }

  final HttpServerRequest req;
  final long startedNanos;
  private final Vertx vertx;
  private final ProxyContext ctx;
  private final Sink sink;
  private final ProxyConfig cfg;
  private final List<Buffer> parts = new ArrayList<>();
  private long bytes;
  private boolean finished;
  private MemoryBudget.Waiter waiter;
  private long deadlineTimer = -1;
  private long waitTimer = -1;
  /** Time left of http_request_timeout when the request handler got the request. */
  private final long deadlineLeftNanos;
  private long waitedNanos;
  private long waitStarted;
  private boolean paused;
  /** The one request allowed to read through a full budget (see {@link MemoryBudget#tryLead}). */
  private boolean leading;
  private final ConnectionGuard guard;

  ImportRequest(Vertx vertx, ProxyContext ctx, HttpServerRequest req, long deadlineLeftNanos, Sink sink) {
    this.vertx = vertx;
    this.ctx = ctx;
    this.req = req;
    this.guard = ConnectionGuard.of(req.connection());
    this.sink = sink;
    this.cfg = ctx.config();
    this.startedNanos = System.nanoTime();
    this.deadlineLeftNanos = deadlineLeftNanos;
  }

  /** The body as the network delivered it, read in place. */
  List<ByteBuffer> body() {
    List<ByteBuffer> out = new ArrayList<>(parts.size());
    for (Buffer b : parts) out.add(((BufferInternal) b).getByteBuf().nioBuffer());
    return out;
  }

  long bodyBytes() {
    return bytes;
  }

  void begin() {
    String cl = req.getHeader("Content-Length");
    if (cl != null) {
      long declared;
      try {
        declared = Long.parseLong(cl.trim());
      } catch (NumberFormatException e) {
        declared = -1;
      }
      if (declared > cfg.maxBodyBytes) {
        refuse(tooLarge());
        return;
      }
    }
    req.handler(this::onData);
    req.endHandler(v -> onEnd());
    req.exceptionHandler(e -> abandon());
    req.response().closeHandler(v -> abandon());
    if (deadlineLeftNanos <= 0) {
      slow();
      return;
    }
    deadlineTimer = vertx.setTimer(Math.max(1, deadlineLeftNanos / 1_000_000), t -> {
      deadlineTimer = -1;
      // Held back for memory when time ran out: the proxy's overload, not the sender's pace.
      if (paused) overloaded();
      else slow();
    });
    if (ctx.budget().over()) {
      waitForMemory();
    } else {
      req.resume();
    }
  }

  private void onData(Buffer buf) {
    if (finished) return;
    int n = buf.length();
    ctx.budget().reserve(n);
    ctx.budget().receiving(n);
    if (guard != null) guard.delivered(n);
    parts.add(buf);
    bytes += n;
    if (bytes > cfg.maxBodyBytes) {
      refuse(tooLarge());
      return;
    }
    if (ctx.budget().over() && !paused) waitForMemory();
  }

  private void onEnd() {
    if (finished) return;
    finished = true;
    ctx.budget().receiving(-bytes); // complete: it frees itself once decoded
    cancelTimers();
    if (waiter != null) ctx.budget().cancel(waiter);
    stopLeading();
    sink.received(this);
  }

  /** Pauses the socket until the budget has room. */
  private void waitForMemory() {
    if (leading || ctx.budget().tryLead(this)) {
      // Every paused request holds what it has read (and what its socket delivered after the
      // pause); if they filled the budget between them, none could finish and free anything.
      // One request at a time reads on to its end.
      leading = true;
      if (paused) {
        paused = false;
        if (guard != null) guard.resumeFromMemory();
        req.resume();
      }
      return;
    }
    paused = true;
    req.pause();
    if (guard != null) guard.pauseForMemory();
    waitAgain();
  }

  private void memoryAvailable() {
    if (finished) return;
    waiter = null;
    if (waitTimer >= 0) {
      vertx.cancelTimer(waitTimer);
      waitTimer = -1;
    }
    waitedNanos += System.nanoTime() - waitStarted;
    if (ctx.budget().over()) {
      if (leading || ctx.budget().tryLead(this)) {
        leading = true; // woken to lead: read on through the full budget (see waitForMemory)
      } else {
        // Someone else took the room first; queue again (the wait already spent still counts).
        waitAgain();
        return;
      }
    }
    paused = false;
    if (guard != null) guard.resumeFromMemory();
    req.resume();
  }

  /** Still paused: back in the queue for memory, with what is left of memory_wait_timeout. */
  private void waitAgain() {
    waitStarted = System.nanoTime();
    long left = cfg.memoryWaitTimeout.toNanos() - waitedNanos;
    if (left <= 0) {
      overloaded();
      return;
    }
    waitTimer = vertx.setTimer(Math.max(1, left / 1_000_000), t -> {
      waitTimer = -1;
      overloaded();
    });
    waiter = ctx.budget().await(vertx.getOrCreateContext(), this::memoryAvailable,
        bytes > 0 || guard != null && guard.pausedBytes() > 0);
  }

  private void overloaded() {
    refuse(new ImportRefusal(503, "overloaded",
        "the proxy's memory budget is full (memory_budget); retry later"));
  }

  private void slow() {
    refuse(new ImportRefusal(408, "slow_body",
        "the request body did not arrive within http_request_timeout (" + cfg.httpRequestTimeout.toMillis() + "ms)"));
  }

  private ImportRefusal tooLarge() {
    return new ImportRefusal(413, "too_large",
        "request body exceeds max_body_bytes (" + cfg.maxBodyBytes + " bytes)");
  }

  /** Refuses before the body was read whole: the connection closes and the bytes are let go. */
  private void refuse(ImportRefusal r) {
    if (finished) return;
    finished = true;
    ctx.budget().receiving(-bytes);
    cancelTimers();
    if (waiter != null) ctx.budget().cancel(waiter);
    if (guard != null) guard.resumeFromMemory();
    stopLeading();
    release();
    sink.refused(req, r, true);
  }

  /** The connection went away mid-body. */
  private void abandon() {
    if (finished) return;
    finished = true;
    ctx.budget().receiving(-bytes);
    cancelTimers();
    if (waiter != null) ctx.budget().cancel(waiter);
    if (guard != null) guard.resumeFromMemory();
    stopLeading();
    release();
  }

  private void stopLeading() {
    if (leading) {
      leading = false;
      ctx.budget().yieldLead(this);
    }
  }

  private void cancelTimers() {
    if (deadlineTimer >= 0) vertx.cancelTimer(deadlineTimer);
    if (waitTimer >= 0) vertx.cancelTimer(waitTimer);
    deadlineTimer = -1;
    waitTimer = -1;
  }

  /** Gives the body's bytes back to the budget; called once the body is no longer needed. */
  void release() {
    if (bytes > 0) ctx.budget().release(bytes);
    bytes = 0;
    parts.clear();
  }
}
