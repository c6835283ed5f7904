package dev.veneur.proxy.ingest.http;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.ingest.Refusals;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.PemKeyCertOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Admission of connections to {@code http_address}: each is counted, held to the connection cap in
 * force, and given its {@link ConnectionGuard} (the deadline for its headers, HTTP/2 refused); the
 * {@link AcceptGate} refuses over-cap connections before Vert.x sees them.
 */
final class HttpConnections {
  private static final Logger LOG = LoggerFactory.getLogger(HttpConnections.class);

  /** Longest a start waits for its connection to itself to be gone (it closes at once). */
  private static final long SELF_CLOSE_WAIT_MS = 2_000;
  private final Vertx vertx;
  private final ProxyContext ctx;
  private final Refusals refusals;

  HttpConnections(Vertx vertx, ProxyContext ctx, Refusals refusals) {
    this.vertx = vertx;
    this.ctx = ctx;
    this.refusals = refusals;
  }

  void onConnection(HttpConnection conn) {
    int open = ctx.connections().incrementAndGet();
    if (conn instanceof io.vertx.core.net.impl.ConnectionBase) {
      io.netty.channel.Channel ch = ((io.vertx.core.net.impl.ConnectionBase) conn).channel();
      AcceptGate.taken(ch);
      AcceptGate.install(ch, ctx, r -> refusals.refused(r.cause(),
          "closed a connection from " + r.from() + " at accept: " + r.detail()));
    }
    // Keyed now (a closed connection's addresses are not promised), and only while a start waits.
    long key = OwnConnections.SHARED.followed(conn.localAddress(), conn.remoteAddress());
    conn.closeHandler(v -> {
      ctx.connections().decrementAndGet();
      OwnConnections.SHARED.gone(key);
    });
    // A sender resetting its connection is its business (a request in progress is abandoned
    // and counted there); Vert.x would log each one at ERROR.
    conn.exceptionHandler(e -> LOG.debug("connection from {}: {}", conn.remoteAddress(), e.toString()));
    // The cap in force: http_max_connections, lowered when the descriptor limit cannot afford it
    // beside the connections to the globals (core/Descriptors). The accept gate enforces it (and
    // the per-client cap) before a connection gets here; this catches what it cannot see yet.
    int cap = ctx.descriptors().inboundCap();
    if (open > cap) {
      refusals.refused("too_many_connections", "closed a connection from " + conn.remoteAddress()
          + ": " + (open - 1) + " connections are open (the cap in force is " + cap
          + (cap < ctx.config().httpMaxConnections ? ", http_max_connections lowered for file descriptors" : "")
          + ")");
      conn.close();
      return;
    }
    long timeout = ctx.config().httpRequestTimeout.toNanos();
    ConnectionGuard.install(conn, timeout, ctx.budget(), new ConnectionGuard.Listener() {
      @Override
      public void slowHeaders(boolean anyByte) {
        if (anyByte) {
          refusals.refused("slow_headers", "closed a connection from " + conn.remoteAddress()
              + " whose request headers did not arrive within http_request_timeout (408)");
        } else {
          refusals.count("idle_connection");
        }
      }

      @Override
      public void http2Preface() {
        refusals.refused("http2", "closed a connection from " + conn.remoteAddress()
            + " that spoke HTTP/2 (505: HTTP/1.1 only)");
      }
    });
  }

  /**
   * Vert.x shows the listening channel only through a connection it accepted, and the accept gate
   * is installed from there: so the proxy connects to itself once, right after listening, and a
   * burst arriving before any other connection already meets the gate. The connection closes at
   * once and sends nothing; but it is counted like any other until the listener sees it close, so
   * the future completes then (at most {@link #SELF_CLOSE_WAIT_MS} later, or at once if it could
   * not connect) and the proxy reports itself started with every slot of the cap free. Before,
   * the first senders of a proxy with a small cap could find one slot per HTTP verticle taken.
   */
  Future<Void> installAcceptGate(int port) {
    Promise<Void> gone = OwnConnections.SHARED.expect();
    ProxyConfig cfg = ctx.config();
    String host = cfg.httpHost;
    String self = host.isEmpty() || host.equals("0.0.0.0") ? "127.0.0.1" : host.equals("::") ? "::1" : host;
    NetClientOptions o = new NetClientOptions().setConnectTimeout((int) SELF_CLOSE_WAIT_MS);
    if (cfg.httpTls) {
      // The gate goes in when a connection reaches the verticle, after its handshake: this one
      // presents the listener's own certificate, which a CA that signs both ends accepts. If the
      // listener refuses it, the first client to finish a handshake installs the gate instead.
      o.setSsl(true).setTrustAll(true).setHostnameVerificationAlgorithm("")
          .setKeyCertOptions(new PemKeyCertOptions().setCertPath(cfg.tls.certFile()).setKeyPath(cfg.tls.keyFile()));
    }
    NetClient client = vertx.createNetClient(o);
    client.connect(port, self)
        .onSuccess(sock -> {
          // The listener's end goes when this end closes it, or went already (refused at accept
          // by a flood holding the cap, a TLS handshake rejected after this end's); anything
          // else ends with the wait below.
          OwnConnections.SHARED.connected(OwnConnections.key(sock.remoteAddress(), sock.localAddress()), gone);
          long wait = vertx.setTimer(SELF_CLOSE_WAIT_MS, t -> {
            if (gone.tryComplete()) {
              LOG.info("started without seeing the listener's end of its own connection close within {} ms"
                  + " (it holds one slot of http_max_connections until it does)", SELF_CLOSE_WAIT_MS);
            }
          });
          gone.future().onComplete(ar -> vertx.cancelTimer(wait));
          sock.close();
        })
        .onFailure(e -> {
          LOG.debug("could not connect to the listener to install the accept gate: {}", e.toString());
          gone.tryComplete();
        })
        .onComplete(ar -> client.close());
    return gone.future();
  }
}
