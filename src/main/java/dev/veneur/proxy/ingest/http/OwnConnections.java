package dev.veneur.proxy.ingest.http;

import io.vertx.core.Promise;
import io.vertx.core.net.SocketAddress;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The proxy's connections to its own HTTP listener (each verticle makes one as it starts, to put
 * the accept gate in), followed until the listener's end is gone and uncounted, so a start can
 * wait for that: until then the connection holds a slot of {@code http_max_connections}.
 *
 * <p>A connection is known by {@link #key}: the listener's port and the client's port. The two
 * ends learn it independently and in either order: the start when its connect completes
 * ({@link #connected}); the listener when its end is gone ({@link #gone}: a verticle's close
 * handler, or the accept gate refusing it or seeing it close before any verticle took it). A
 * connection flood holding the cap gets the proxy's own connection refused at accept, often
 * before the connect completes at the start's end; so what is gone while a start waits is
 * remembered (bounded, emptied when no start waits). Attacked with the real jar (2026-12-07):
 * before that, each start under a flood waited out its full bound.
 *
 * <p>One instance ({@link #SHARED}) for every verticle and proxy in the JVM: Vert.x hands an
 * accepted connection to any of a listener's verticles, not to the one that made it. Thread-safe.
 */
final class OwnConnections {
  static final OwnConnections SHARED = new OwnConnections(16_384);

  private final int goneMax;
  /** Starts waiting, from before their connect to the end of their wait. */
  private final AtomicInteger expecting = new AtomicInteger();
  private final Map<Long, Promise<Void>> waiting = new ConcurrentHashMap<>();
  private final Set<Long> gone = ConcurrentHashMap.newKeySet();

  /** @param goneMax how many connections gone during a wait are remembered at most */
  OwnConnections(int goneMax) {
    this.goneMax = goneMax;
  }

  /** A start begins to wait, before it connects. Completing the promise (anyhow) ends the wait. */
  Promise<Void> expect() {
    expecting.incrementAndGet();
    Promise<Void> done = Promise.promise();
    done.future().onComplete(ar -> {
      if (expecting.decrementAndGet() == 0) gone.clear();
    });
    return done;
  }

  /** The start's connection is {@code key}: {@code done} completes when it is gone (at once if it is already). */
  void connected(long key, Promise<Void> done) {
    // Registered, then checked against what is gone; gone() records, then looks up: whichever
    // runs second sees the other's write.
    waiting.put(key, done);
    done.future().onComplete(ar -> waiting.remove(key, done));
    if (gone.remove(key)) done.tryComplete();
  }

  /**
   * Whether a start waits: only then is a connection's key worth reading (its own connection is
   * accepted after its start began to wait).
   */
  boolean anyWaiting() {
    return expecting.get() > 0;
  }

  /** {@link #key} of a channel the accept gate sees, or -1 (not followed) while no start waits. */
  long followed(io.netty.channel.Channel child) {
    return anyWaiting() ? key(child) : -1;
  }

  /** {@link #key} of a connection a verticle counts, or -1 (not followed) while no start waits. */
  long followed(SocketAddress listener, SocketAddress client) {
    return anyWaiting() ? key(listener, client) : -1;
  }

  /** The listener's end of connection {@code key} is gone and uncounted (-1: not followed). */
  void gone(long key) {
    if (key < 0 || expecting.get() == 0) return;
    if (gone.size() < goneMax) gone.add(key);
    Promise<Void> done = waiting.remove(key);
    if (done != null) done.tryComplete();
  }

  /** Connections gone remembered now (for tests). */
  int remembered() {
    return gone.size();
  }

  /**
   * A connection by the listener's port and the client's port (both ends on this host; another
   * client with the same port going in the same moments would only end a wait early).
   */
  static long key(int listenerPort, int clientPort) {
    return ((long) (listenerPort & 0xFFFF) << 16) | (clientPort & 0xFFFF);
  }

  /** {@link #key} from Vert.x's addresses of either end; -1 if one is unknown. */
  static long key(SocketAddress listener, SocketAddress client) {
    if (listener == null || client == null) return -1;
    return key(listener.port(), client.port());
  }

  /** {@link #key} of a channel the listener accepted (read at accept: a closed channel's addresses are not promised). */
  static long key(io.netty.channel.Channel child) {
    if (child.localAddress() instanceof InetSocketAddress && child.remoteAddress() instanceof InetSocketAddress) {
      return key(((InetSocketAddress) child.localAddress()).getPort(), ((InetSocketAddress) child.remoteAddress()).getPort());
    }
    return -1;
  }
}
