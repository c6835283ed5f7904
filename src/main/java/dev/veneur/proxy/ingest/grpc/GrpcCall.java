package dev.veneur.proxy.ingest.grpc;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.Timers;
import dev.veneur.proxy.ingest.Admission;
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
 * wrapper sits between the HTTP/2 stream and that deframer and admits every frame through {@link
 * Admission}, as {@code /import} bodies are (reserved as it arrives, sized by what arrived, never by
 * the length a message declares; the stream paused when the budget is full, so HTTP/2 flow control
 * holds the client back: its stream and connection windows are not credited while paused). The
 * bytes of a whole message are given back once it is translated ({@link #consumed}); what is left at
 * the call's end (a message cut short, or one skipped for its size) is given back then ({@link
 * #finish}).
 */
final class GrpcCall extends HttpServerRequestWrapper {
  /**
   * What a received byte may cost on the heap until its message is whole: its frames are held
   * until the message's last byte (small pieces copied into staging buffers no larger than what is
   * held), then copied into one buffer of its size ({@link MessageGather}), so a message occupies
   * about twice its bytes at most. (Before, Vert.x's deframer grew one buffer by doubling, with the
   * same bound.) Counted at one, 2,000 stalled streams of 256 KiB each filled
   * the 102 MiB budget with ~200 MiB of heap and a -Xmx256m process died (GrpcAttackIT, on a loaded
   * machine); counted at two, the budget bounds the heap they take.
   */
  static final long GROWTH = 2;

  private final Admission admission;
  private final MessageGather gather;
  private boolean pausedByReader;

  GrpcCall(HttpServerRequest req, Vertx vertx, Context context, MemoryBudget budget, ProxyConfig cfg) {
    super((HttpServerRequestInternal) req);
    // grpc-web-text bodies are base64: only binary gRPC framing is gathered.
    this.gather = new MessageGather(cfg.grpcMaxMessageBytes, MessageGather.binaryGrpc(req.getHeader("content-type")));
    this.admission = new Admission(budget, Timers.of(vertx), r -> context.runOnContext(v -> r.run()),
        cfg.memoryWaitTimeout.toNanos(), GROWTH, new Admission.Source() {
          @Override
          public void pause() {
            GrpcCall.super.pause();
          }

          @Override
          public void resume() {
            // Not over the deframer's own pause (its queue is full): it resumes when it drains.
            if (!pausedByReader) GrpcCall.super.resume();
          }
        });
  }

  /** Starts the call's deadline; {@code listener} hears of overload and slowness. */
  void begin(Admission.Listener l, long deadlineMs) {
    admission.begin(l, deadlineMs);
  }

  @Override
  public HttpServerRequest handler(Handler<Buffer> handler) {
    if (handler == null) return super.handler(null);
    return super.handler(buf -> {
      // Answered already: what the client still sends is dropped here, never handed to the
      // deframer, where it would pile up uncounted for as long as the client keeps the stream open.
      if (admission.finished()) return;
      admission.arrived(buf.length());
      gather.accept(buf, handler);
      admission.checkMemory();
    });
  }

  @Override
  public HttpServerRequest endHandler(Handler<Void> handler) {
    if (handler == null) return super.endHandler(null);
    return super.endHandler(v -> {
      // A message cut short by the stream's end is let go: the deframer would drop it too.
      gather.close();
      handler.handle(v);
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
    if (admission.paused()) return this;
    return super.resume();
  }

  @Override
  public HttpServerRequest fetch(long amount) {
    if (admission.paused()) return this;
    return super.fetch(amount);
  }

  /** A whole message of {@code bytes} (payload plus its 5-byte prefix) is translated: its bytes go back. */
  void consumed(long bytes) {
    admission.consumed(bytes);
  }

  /** After more was handed on (a part of a stream): wait here if that filled the budget. */
  void checkMemory() {
    admission.checkMemory();
  }

  /** The call ended (answered, reset or failed): what it still holds goes back. */
  void finish() {
    gather.close();
    admission.finish();
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
}
