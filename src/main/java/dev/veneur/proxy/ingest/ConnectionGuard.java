package dev.veneur.proxy.ingest;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * Sits in front of the HTTP decoder of one connection and bounds the time a request may take from
 * its first byte: Vert.x only sees a request once its headers are complete, so a sender that
 * trickles its headers (or opens a connection and sends nothing) would otherwise hold a connection
 * slot forever. When the deadline passes before the request's headers were read, the guard
 * answers {@code 408} itself and closes the connection. Once the headers are in, the request
 * handler takes over the same deadline for the body.
 *
 * <p>Runs on the connection's event loop, the same thread as the request handler, so it needs no
 * locks.
 */
public final class ConnectionGuard extends ChannelInboundHandlerAdapter {
  static final AttributeKey<ConnectionGuard> KEY = AttributeKey.valueOf("veneur.guard");
  private static final String TIMEOUT_BODY =
      "the request headers did not arrive within http_request_timeout; closing\n";
  private static final byte[] TIMEOUT = ("HTTP/1.1 408 Request Timeout\r\n"
      + "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "
      + TIMEOUT_BODY.length() + "\r\n\r\n" + TIMEOUT_BODY).getBytes(StandardCharsets.US_ASCII);

  /** What the guard reports: a request whose headers were too slow. */
  public interface Listener {
    void slowHeaders(boolean anyByte);
  }

  private final long timeoutNanos;
  private final Listener listener;
  private ChannelHandlerContext ctx;
  private ScheduledFuture<?> deadline;
  /** No byte of a new request has arrived since the last one ended. */
  private boolean idle = true;
  /** The request handler has the current request. */
  private boolean inRequest;
  private boolean everByte;
  private long firstByteNanos;

  public ConnectionGuard(long timeoutNanos, Listener listener) {
    this.timeoutNanos = timeoutNanos;
    this.listener = listener;
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
    if (idle && msg instanceof ByteBuf && ((ByteBuf) msg).isReadable()) {
      idle = false;
      everByte = true;
      if (!inRequest) {
        firstByteNanos = System.nanoTime();
        arm(timeoutNanos);
      }
    }
    ctx.fireChannelRead(msg);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    cancel();
    ctx.fireChannelInactive();
  }

  /**
   * The request handler has a request: the guard's part is done; returns the nanoseconds left of
   * the deadline for its body.
   */
  public long requestStarted() {
    inRequest = true;
    cancel();
    return timeoutNanos - (System.nanoTime() - firstByteNanos);
  }

  /** The response is sent and the body read: the connection waits for its next request. */
  public void requestEnded() {
    inRequest = false;
    idle = true;
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
    if (inRequest || !ctx.channel().isActive()) return;
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

  /** Installs a guard in front of the HTTP decoder of a just-accepted connection. */
  public static boolean install(io.vertx.core.http.HttpConnection conn, long timeoutNanos, Listener listener) {
    if (!(conn instanceof io.vertx.core.net.impl.ConnectionBase)) return false;
    io.netty.channel.Channel ch = ((io.vertx.core.net.impl.ConnectionBase) conn).channel();
    ch.pipeline().addFirst("veneur-guard", new ConnectionGuard(timeoutNanos, listener));
    return true;
  }
}
