package dev.veneur.proxy.ingest.http;


import dev.veneur.proxy.memory.MemoryBudget;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * Watches one connection from the socket's side of the HTTP decoder, where Vert.x cannot see.
 *
 * <p><b>Deadlines.</b> Vert.x only hands over a request once its headers are complete, so a sender
 * that trickles its headers (or connects and sends nothing) would otherwise hold a connection slot
 * forever. The guard times each request from its first byte: when {@code http_request_timeout}
 * passes before its headers were read, it answers {@code 408} itself and closes. Once the headers
 * are in, the request handler owns the deadline for the body; if a handler answers before the body
 * ended (a 404, say), the guard takes the deadline back and closes the connection if the rest of
 * the body does not arrive in time. The connection is idle again only when the request was
 * answered and its body read to its end, as a second handler after the decoder tells.
 *
 * <p><b>Memory.</b> Pausing a request does not stop Vert.x reading its socket at once: up to a
 * queue's worth of body arrives before it pauses the channel. While a request waits for memory the
 * guard reserves every byte that still arrives in the budget, so the budget counts it; the request
 * takes those reservations over as the bytes reach it.
 *
 * <p>Runs on the connection's event loop, the same thread as the request handler: no locks.
 */
public final class ConnectionGuard extends ChannelInboundHandlerAdapter {
  static final AttributeKey<ConnectionGuard> KEY = AttributeKey.valueOf("veneur.guard");
  private static final String TIMEOUT_BODY =
      "the request headers did not arrive within http_request_timeout; closing\n";
  private static final byte[] TIMEOUT = ("HTTP/1.1 408 Request Timeout\r\n"
      + "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "
      + TIMEOUT_BODY.length() + "\r\n\r\n" + TIMEOUT_BODY).getBytes(StandardCharsets.US_ASCII);

  private static final String HTTP2_BODY =
      "HTTP/2 is not offered here (HTTP/1.1 only, as the Go proxy): send HTTP/1.1\n";
  private static final byte[] HTTP2_REFUSAL = ("HTTP/1.1 505 HTTP Version Not Supported\r\n"
      + "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "
      + HTTP2_BODY.length() + "\r\n\r\n" + HTTP2_BODY).getBytes(StandardCharsets.US_ASCII);
  /** How an HTTP/2 client with prior knowledge opens: {@code PRI * HTTP/2.0}; no HTTP/1 method is PRI. */
  private static final byte[] HTTP2_PREFACE = "PRI ".getBytes(StandardCharsets.US_ASCII);

  /** What the guard reports: a request whose headers were too slow, a connection that was idle, HTTP/2. */
  public interface Listener {
    void slowHeaders(boolean anyByte);

    /** A connection opened with the HTTP/2 preface: answered 505 and closed. */
    void http2Preface();
  }

  private final long timeoutNanos;
  private final Listener listener;
  private final MemoryBudget budget;
  private ChannelHandlerContext ctx;
  private ScheduledFuture<?> deadline;
  /** No byte of a new request has arrived since the last one was done. */
  private boolean idle = true;
  private boolean everByte;
  /** Opened with the HTTP/2 preface: answered and closing. */
  private boolean spokeHttp2;
  private long firstByteNanos;
  /** Requests handed to the handler, bodies read to their end, answers sent. */
  private long started;
  private long bodiesDone;
  private long answered;
  /** A request of this connection waits for memory; bytes arriving meanwhile are reserved here. */
  private boolean memoryPaused;
  private long pausedBytes;

  public ConnectionGuard(long timeoutNanos, Listener listener, MemoryBudget budget) {
    this.timeoutNanos = timeoutNanos;
    this.listener = listener;
    this.budget = budget;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
    ctx.channel().attr(KEY).set(this);
    // A connection must start its first request within the deadline too.
    firstByteNanos = System.nanoTime();
    arm(timeoutNanos);
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof ByteBuf) {
      ByteBuf buf = (ByteBuf) msg;
      int n = buf.readableBytes();
      if (spokeHttp2) {
        // Answered and closing: what follows the preface (its frames) is nobody's.
        buf.release();
        return;
      }
      if (!everByte && startsWith(buf, HTTP2_PREFACE)) {
        // Left to the HTTP/1 decoder it would get a bare "HTTP/2.0 501" and no count.
        buf.release();
        cancel();
        everByte = true;
        spokeHttp2 = true;
        // Counted before answering: the close can happen within the write, and whoever sees it
        // must find the refusal already counted.
        listener.http2Preface();
        ctx.writeAndFlush(Unpooled.wrappedBuffer(HTTP2_REFUSAL)).addListener(ChannelFutureListener.CLOSE);
        return;
      }
      if (n > 0) {
        if (idle) {
          idle = false;
          everByte = true;
          firstByteNanos = System.nanoTime();
          arm(timeoutNanos);
          headers.reset();
        }
        if (headers.reading) headers.scan(buf);
        if (memoryPaused) {
          budget.reserve(n);
          budget.receiving(n);
          pausedBytes += n;
        }
      }
    }
    ctx.fireChannelRead(msg);
  }

  private static boolean startsWith(ByteBuf buf, byte[] prefix) {
    if (buf.readableBytes() < prefix.length) return false;
    for (int i = 0; i < prefix.length; i++) {
      if (buf.getByte(buf.readerIndex() + i) != prefix[i]) return false;
    }
    return true;
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    cancel();
    releasePaused();
    ctx.fireChannelInactive();
  }

  /**
   * Reads a request's header block as it arrives, for what the decoder hides: Netty drops a
   * Content-Length that comes with Transfer-Encoding (and goes by the chunks), so only here can a
   * request framed both ways, the shape of request smuggling, be seen and refused.
   */
  private final HeaderScan headers = new HeaderScan();

  /** Whether the current request came with both Content-Length and Transfer-Encoding. */
  public boolean framedTwoWays() {
    return headers.contentLength && headers.transferEncoding;
  }

  private static final class HeaderScan {
    private static final byte[] CL = "content-length:".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TE = "transfer-encoding:".getBytes(StandardCharsets.US_ASCII);
    boolean reading;
    boolean contentLength;
    boolean transferEncoding;
    private int col;
    private boolean clMatch;
    private boolean teMatch;
    private int newlines;

    void reset() {
      reading = true;
      contentLength = false;
      transferEncoding = false;
      col = -1; // the request line is not a header
      newlines = 0;
    }

    void scan(ByteBuf buf) {
      for (int i = buf.readerIndex(), end = buf.writerIndex(); i < end && reading; i++) {
        byte b = buf.getByte(i);
        if (b == '\n') {
          if (++newlines == 2) reading = false; // an empty line: the headers are done
          col = 0;
          clMatch = true;
          teMatch = true;
          continue;
        }
        if (b == '\r') continue;
        newlines = 0;
        if (col < 0) continue;
        byte lower = (byte) (b >= 'A' && b <= 'Z' ? b + 32 : b);
        if (clMatch && (col >= CL.length || CL[col] != lower)) clMatch = false;
        if (teMatch && (col >= TE.length || TE[col] != lower)) teMatch = false;
        col++;
        if (clMatch && col == CL.length) contentLength = true;
        if (teMatch && col == TE.length) transferEncoding = true;
        if (!clMatch && !teMatch) col = Integer.MIN_VALUE / 2; // skip the rest of the line
      }
    }
  }

  /** Sits after the HTTP decoder: sees where each request's body ends. */
  private final class BodyEnds extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext c, Object msg) {
      boolean last = msg instanceof LastHttpContent;
      c.fireChannelRead(msg);
      if (last) {
        bodiesDone++;
        if (answered == bodiesDone && answered == started) done();
      }
    }
  }

  /**
   * The request handler has a request: the guard's part is done until it is answered; returns the
   * nanoseconds left of its deadline.
   */
  public long requestStarted() {
    started++;
    cancel();
    return remainingNanos();
  }

  /** What is left of the current request's deadline. */
  public long remainingNanos() {
    return timeoutNanos - (System.nanoTime() - firstByteNanos);
  }

  /** The request's answer is sent. */
  public void answered() {
    answered++;
    if (bodiesDone >= started) {
      if (answered == started) done();
    } else {
      // Answered before its body ended: the rest of the body still has the request's deadline.
      arm(timeoutNanos - (System.nanoTime() - firstByteNanos));
    }
  }

  /** Answered and read to its end: the connection waits for its next request. */
  private void done() {
    cancel();
    idle = true;
    // A pipelined request already read is timed from now, not from the previous one's first byte.
    firstByteNanos = System.nanoTime();
    releasePaused();
  }

  /** A request stops reading for lack of memory: count what still arrives. */
  public void pauseForMemory() {
    memoryPaused = true;
  }

  /** Bytes that arrived while the request was paused, not yet delivered to it. */
  public long pausedBytes() {
    return pausedBytes;
  }

  /** It reads again (or gave up): no more counting here. */
  public void resumeFromMemory() {
    memoryPaused = false;
  }

  /**
   * The request received {@code n} bytes and reserves them itself: give back what the guard
   * reserved for them while it was paused.
   */
  public void delivered(int n) {
    if (pausedBytes == 0) return;
    long back = Math.min(n, pausedBytes);
    pausedBytes -= back;
    budget.receiving(-back);
    budget.release(back);
  }

  private void releasePaused() {
    memoryPaused = false;
    if (pausedBytes > 0) {
      budget.receiving(-pausedBytes);
      budget.release(pausedBytes);
      pausedBytes = 0;
    }
  }

  private void arm(long nanos) {
    cancel();
    deadline = ctx.executor().schedule(this::expired, Math.max(1, nanos), TimeUnit.NANOSECONDS);
  }

  private void cancel() {
    if (deadline != null) {
      deadline.cancel(false);
      deadline = null;
    }
  }

  private void expired() {
    deadline = null;
    if (!ctx.channel().isActive()) return;
    if (started > answered) return; // the request handler owns this request's deadline
    if (bodiesDone < started) {
      // Answered, but the body it did not want still trickles in: enough.
      ctx.close();
      return;
    }
    listener.slowHeaders(everByte);
    if (everByte) {
      ctx.writeAndFlush(Unpooled.wrappedBuffer(TIMEOUT)).addListener(ChannelFutureListener.CLOSE);
    } else {
      ctx.close();
    }
  }

  /** The guard of the connection behind a Vert.x connection object, or null. */
  public static ConnectionGuard of(io.vertx.core.http.HttpConnection conn) {
    if (conn instanceof io.vertx.core.net.impl.ConnectionBase) {
      return ((io.vertx.core.net.impl.ConnectionBase) conn).channel().attr(KEY).get();
    }
    return null;
  }

  /** Installs a guard around the HTTP decoder of a just-accepted connection. */
  public static boolean install(io.vertx.core.http.HttpConnection conn, long timeoutNanos, MemoryBudget budget,
      Listener listener) {
    if (!(conn instanceof io.vertx.core.net.impl.ConnectionBase)) return false;
    io.netty.channel.Channel ch = ((io.vertx.core.net.impl.ConnectionBase) conn).channel();
    ConnectionGuard guard = new ConnectionGuard(timeoutNanos, listener, budget);
    ch.pipeline().addFirst("veneur-guard", guard);
    if (ch.pipeline().get("httpDecoder") != null) {
      ch.pipeline().addAfter("httpDecoder", "veneur-guard-body-ends", guard.new BodyEnds());
    }
    return true;
  }
}
