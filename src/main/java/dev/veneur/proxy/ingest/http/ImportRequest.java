package dev.veneur.proxy.ingest.http;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.core.Timers;
import dev.veneur.proxy.ingest.Admission;
import dev.veneur.proxy.ingest.ImportRefusal;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.internal.buffer.BufferInternal;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Receives one {@code POST /import} body within the memory budget, through {@link Admission}: every
 * network read is reserved as it arrives, the socket is paused while the budget is full (TCP pushes
 * back on the sender), and a wait past {@code memory_wait_timeout} is refused with 503. A request
 * has {@code http_request_timeout} from its first byte to its last, whatever happens: past it, a
 * sender that was too slow gets 408, and one the proxy held back for memory gets 503. Any refusal
 * before the body was read whole closes the connection, so nothing the sender still pushes is
 * kept, and no connection outlives its deadline.
 */
final class ImportRequest implements Admission.Listener {
  /** What the request hands on once its body is complete. */
  interface Sink {
    void received(ImportRequest request);

    void refused(HttpServerRequest req, ImportRefusal refusal, boolean close);
  }

  final HttpServerRequest req;
  final long startedNanos;
  private final ProxyContext ctx;
  private final Sink sink;
  private final ProxyConfig cfg;
  private final List<Buffer> parts = new ArrayList<>();
  /** The body's bytes in the budget: received, then kept until decoded. */
  private long bytes;
  /** Time left of http_request_timeout when the request handler got the request. */
  private final long deadlineLeftNanos;
  private final ConnectionGuard guard;
  private final Admission admission;

  ImportRequest(Vertx vertx, ProxyContext ctx, HttpServerRequest req, long deadlineLeftNanos, Sink sink) {
    this.ctx = ctx;
    this.req = req;
    this.guard = ConnectionGuard.of(req.connection());
    this.sink = sink;
    this.cfg = ctx.config();
    this.startedNanos = System.nanoTime();
    this.deadlineLeftNanos = deadlineLeftNanos;
    io.vertx.core.Context loop = vertx.getOrCreateContext();
    this.admission = new Admission(ctx.budget(), Timers.of(vertx), r -> loop.runOnContext(v -> r.run()),
        cfg.memoryWaitTimeout.toNanos(), 1, new Admission.Source() {
          @Override
          public void pause() {
            req.pause();
            if (guard != null) guard.pauseForMemory();
          }

          @Override
          public void resume() {
            if (guard != null) guard.resumeFromMemory();
            req.resume();
          }

          @Override
          public long pausedBytes() {
            return guard == null ? 0 : guard.pausedBytes();
          }
        });
  }

  /** The body as the network delivered it, read in place. */
  List<ByteBuffer> body() {
    List<ByteBuffer> out = new ArrayList<>(parts.size());
    for (Buffer b : parts) out.add(((BufferInternal) b).getByteBuf().nioBuffer());
    return out;
  }

  /** The body in one array (a copy), for a whole chunk. */
  byte[] bodyCopy() {
    byte[] out = new byte[Math.toIntExact(bytes)];
    int at = 0;
    for (Buffer b : parts) {
      b.getBytes(0, b.length(), out, at);
      at += b.length();
    }
    if (at != out.length) throw new IllegalStateException("body of " + bytes + " bytes held " + at);
    return out;
  }

  /**
   * Whether the body starts with a zlib header (RFC 1950: deflate, a window of at most 32 KiB, no
   * preset dictionary, its check bits right): what a whole chunk must be to go on as it came.
   */
  boolean startsAsZlib() {
    int cmf = byteAt(0);
    int flg = byteAt(1);
    if (cmf < 0 || flg < 0) return false;
    return (cmf & 0x0F) == 8 && (cmf >>> 4) <= 7 && (flg & 0x20) == 0 && ((cmf << 8) | flg) % 31 == 0;
  }

  /** Byte {@code k} of the body, or -1 past its end. */
  private int byteAt(int k) {
    for (Buffer b : parts) {
      if (k < b.length()) return b.getUnsignedByte(k);
      k -= b.length();
    }
    return -1;
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
      tooSlow();
      return;
    }
    admission.begin(this, Math.max(1, deadlineLeftNanos / 1_000_000));
    // The router hands the request over paused: it reads on unless the budget holds it back.
    admission.checkMemory();
    if (!admission.paused()) req.resume();
  }

  private void onData(Buffer buf) {
    if (admission.finished()) return;
    int n = buf.length();
    admission.arrived(n);
    if (guard != null) guard.delivered(n);
    parts.add(buf);
    bytes += n;
    if (bytes > cfg.maxBodyBytes) {
      refuse(tooLarge());
      return;
    }
    admission.checkMemory();
  }

  private void onEnd() {
    if (admission.finished()) return;
    admission.complete(); // complete: it frees itself once decoded
    sink.received(this);
  }

  @Override
  public void overloaded() {
    refuse(new ImportRefusal(503, "overloaded",
        "the proxy's memory budget is full (memory_budget); retry later"));
  }

  @Override
  public void tooSlow() {
    refuse(new ImportRefusal(408, "slow_body",
        "the request body did not arrive within http_request_timeout (" + cfg.httpRequestTimeout.toMillis() + "ms)"));
  }

  private ImportRefusal tooLarge() {
    return new ImportRefusal(413, "too_large",
        "request body exceeds max_body_bytes (" + cfg.maxBodyBytes + " bytes)");
  }

  /** Refuses before the body was read whole: the connection closes and the bytes are let go. */
  private void refuse(ImportRefusal r) {
    if (admission.finished()) return;
    letGo();
    sink.refused(req, r, true);
  }

  /** The connection went away mid-body. */
  private void abandon() {
    if (admission.finished()) return;
    letGo();
  }

  private void letGo() {
    admission.finish();
    bytes = 0;
    parts.clear();
    if (guard != null) guard.resumeFromMemory();
  }

  /** Gives the body's bytes back to the budget; called once the body is no longer needed. */
  void release() {
    if (bytes > 0) ctx.budget().release(bytes);
    bytes = 0;
    parts.clear();
  }
}
