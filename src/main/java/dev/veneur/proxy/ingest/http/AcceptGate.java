package dev.veneur.proxy.ingest.http;


import dev.veneur.proxy.core.Descriptors;
import dev.veneur.proxy.core.ProxyContext;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.AttributeKey;
import java.net.InetSocketAddress;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * Enforces the connection cap where connections are accepted, on the listening socket's own
 * thread. The HTTP verticles count a connection only once their event loop gets to it; in a flood
 * the acceptor outruns them, and every connection accepted meanwhile holds a file descriptor (a
 * burst of 950 against a cap of 656 had ~950 open at once): the descriptors kept for connections
 * to the globals would be taken after all. Here a connection past the cap, counting those accepted
 * and not yet handed to a verticle, is closed before it is registered anywhere; so is one past the
 * per-client cap ({@code http_max_connections_per_client}), counted by remote IP from accept to
 * close.
 *
 * <p>Installed in the listener's pipeline by the first connection it accepts (Vert.x exposes the
 * listening channel no earlier), which is one the proxy makes to itself right after listening;
 * connections accepted before it are checked by the verticles against the total only.
 */
@ChannelHandler.Sharable
final class AcceptGate extends ChannelInboundHandlerAdapter {
  static final String NAME = "veneur-accept-gate";
  /** Set on a connection this gate let through until a verticle takes it (or it closes first). */
  private static final AttributeKey<AcceptGate> PENDING = AttributeKey.valueOf("veneur.accept-pending");

  private final ProxyContext ctx;
  private final Consumer<Refusal> refused;
  /** Accepted here, not yet counted by a verticle. */
  private final AtomicInteger pending = new AtomicInteger();
  /**
   * Set once the listener's own thread has run {@link #handlerAdded}: Netty passes connections by
   * a handler added from another thread until then (it is installed from an event loop).
   */
  private volatile boolean inForce;

  private AcceptGate(ProxyContext ctx, Consumer<Refusal> refused) {
    this.ctx = ctx;
    this.refused = refused;
  }

  /** Puts a gate in front of the listener {@code child} came from, once per listener. */
  static void install(Channel child, ProxyContext ctx, Consumer<Refusal> refused) {
    Channel listener = child.parent();
    if (listener == null || listener.pipeline().get(NAME) != null) return;
    try {
      listener.pipeline().addFirst(NAME, new AcceptGate(ctx, refused));
    } catch (IllegalArgumentException e) {
      // another event loop installed it first
    }
  }

  /** Whether a gate is in front of {@code listener} and already sees the connections it accepts. */
  static boolean inForce(Channel listener) {
    ChannelHandler h = listener.pipeline().get(NAME);
    return h instanceof AcceptGate && ((AcceptGate) h).inForce;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext c) {
    inForce = true;
  }

  /**
   * A verticle counts {@code child} now (or it closed): it is no longer pending here. Returns
   * whether it was (false once a verticle took it).
   */
  static boolean taken(Channel child) {
    AcceptGate g = child.attr(PENDING).getAndSet(null);
    if (g == null) return false;
    g.pending.decrementAndGet();
    return true;
  }

  @Override
  public void channelRead(ChannelHandlerContext c, Object msg) {
    if (msg instanceof Channel) {
      Channel child = (Channel) msg;
      Object from = child.remoteAddress();
      long self = OwnConnections.SHARED.followed(child);
      String ip = from instanceof InetSocketAddress
          ? ((InetSocketAddress) from).getAddress().getHostAddress() : String.valueOf(from);
      // One client (one remote IP) may not take every slot: the others and the health checks keep
      // theirs. Counted here, at accept and close, so that a client reconnecting as fast as it is
      // refused never holds more than its share, even for a moment.
      int fromClient = ctx.clientOpened(ip);
      int perClient = ctx.perClientCap();
      if (perClient > 0 && fromClient > perClient) {
        refuse(child, ip, self, new Refusal("too_many_connections_per_client", from,
            "that client has " + (fromClient - 1) + " connections open (http_max_connections_per_client "
                + perClient + ")"));
        return;
      }
      Descriptors plan = ctx.descriptors();
      int open = plan.tight() ? Descriptors.openRecently() : -1;
      if (!plan.acceptsAt(open)) {
        refuse(child, ip, self, new Refusal("too_many_connections", from, open + " of " + plan.nofile()
            + " file descriptors are open: the last " + Descriptors.ACCEPT_HEADROOM
            + " are kept for connections to globals"));
        return;
      }
      int cap = plan.inboundCap();
      if (ctx.connections().get() + pending.get() >= cap) {
        refuse(child, ip, self, new Refusal("too_many_connections", from, "the cap in force (" + cap + ") is reached"
            + (cap < ctx.config().httpMaxConnections ? ", http_max_connections lowered for file descriptors" : "")));
        return;
      }
      pending.incrementAndGet();
      Descriptors.accepted();
      child.attr(PENDING).set(this);
      child.closeFuture().addListener(f -> {
        // Closed before a verticle counted it: uncounted now. (One a verticle took is uncounted
        // by the verticle's close handler, which may run after this.)
        if (taken(child)) OwnConnections.SHARED.gone(self);
        ctx.clientClosed(ip);
      });
    }
    c.fireChannelRead(msg);
  }

  /** Closes {@code child} at accept, its refusal counted before the close: whoever sees the close finds it counted. */
  private void refuse(Channel child, String ip, long self, Refusal r) {
    ctx.clientClosed(ip);
    try {
      refused.accept(r);
    } finally {
      // Whatever counting does, the connection it refused must not stay open.
      child.unsafe().closeForcibly();
      // The proxy's own connection, refused here (its cap reached, say), holds no slot: a start
      // waiting for it to be gone need not wait longer.
      OwnConnections.SHARED.gone(self);
    }
  }

  /** A connection closed at accept: why (the cause counted), from where, and the detail for the log. */
  record Refusal(String cause, Object from, String detail) {}
}
