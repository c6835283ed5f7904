package dev.veneur.proxy.ingest;

import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.telemetry.Profiler;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin listener ({@code admin_address}, loopback by default): {@code GET /healthcheck},
 * {@code GET /debug/state} and {@code POST /debug/profile}, on a port of their own, so that
 * <ul>
 *   <li>a probe is answered even when {@code /import} senders hold every connection slot of
 *   {@code http_address} (this listener has its own {@link ProxyContext#ADMIN_MAX_CONNECTIONS},
 *   counted in the descriptor reserve), and</li>
 *   <li>the profiler, which writes files and costs CPU, is not reachable by whoever can send
 *   metrics.</li>
 * </ul>
 * {@code /healthcheck} and {@code /debug/state} stay on {@code http_address} as well (the Go proxy
 * answered its health checks there, and load balancers are configured so).
 *
 * <p>One instance. Its requests are small and answered at once; a connection idle for
 * {@code http_request_timeout} is closed, so idle sockets cannot keep its few slots.
 */
public final class AdminVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(AdminVerticle.class);

  private final ProxyContext ctx;
  private final AtomicInteger open = new AtomicInteger();
  private HttpServer server;

  public AdminVerticle(ProxyContext ctx) {
    this.ctx = ctx;
  }

  private dev.veneur.proxy.routing.HashRing ring = dev.veneur.proxy.routing.HashRing.empty();

  @Override
  public Future<?> start() {
    var cfg = ctx.config();
    Router router = Router.router(vertx);
    // The ring as the import listeners see it, for /healthcheck (503 while it has no member).
    vertx.eventBus().<dev.veneur.proxy.routing.RingSet>consumer(dev.veneur.proxy.bus.Addresses.RING_SNAPSHOT,
        m -> ring = m.body().forJson());
    Future<?> ringKnown = vertx.eventBus().<dev.veneur.proxy.routing.RingSet>request(
            dev.veneur.proxy.bus.Addresses.RING_CURRENT, null)
        .onSuccess(m -> ring = m.body().forJson()).otherwiseEmpty();
    router.get("/healthcheck").handler(rc -> Health.answer(rc, ctx, ring));
    router.get("/debug/state").handler(rc -> StateReport.render(vertx, ctx).onComplete(ar -> rc.response()
        .setStatusCode(ar.succeeded() ? 200 : 500)
        .putHeader("Content-Type", ar.succeeded() ? "application/json" : "text/plain; charset=utf-8")
        .end(ar.succeeded() ? ar.result().encodePrettily() : "could not build the state: " + ar.cause() + "\n")));
    router.post("/debug/profile").handler(this::onProfile);
    server = vertx.createHttpServer(new HttpServerOptions()
        .setHost(cfg.adminHost)
        .setPort(cfg.adminPort)
        .setHttp2ClearTextEnabled(false)
        .setIdleTimeout((int) Math.max(1, cfg.httpRequestTimeout.toMillis()))
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS));
    server.connectionHandler(this::onConnection);
    server.requestHandler(router);
    return ringKnown.compose(v -> server.listen()).onSuccess(s -> {
      String where = cfg.adminHost + ":" + s.actualPort();
      ctx.adminAddress(where);
      LOG.info("admin listener on http://{}: /healthcheck, /debug/state, /debug/profile", where);
      if (!isLoopback(cfg.adminHost)) {
        LOG.warn("admin_address {} is not a loopback address: /debug/profile and /debug/state are reachable"
            + " from the network", where);
      }
    });
  }

  private void onConnection(HttpConnection conn) {
    int n = open.incrementAndGet();
    conn.closeHandler(v -> open.decrementAndGet());
    conn.exceptionHandler(e -> LOG.debug("admin connection from {}: {}", conn.remoteAddress(), e.toString()));
    if (n > ProxyContext.ADMIN_MAX_CONNECTIONS) conn.close();
  }

  /** Dumps the JFR recording (enable_profiling) and answers with the file's path. */
  private void onProfile(RoutingContext rc) {
    Profiler profiler = ctx.profiler();
    if (profiler == null) {
      rc.response().setStatusCode(404).end("profiling is off; set enable_profiling: true\n");
      return;
    }
    var minInterval = ctx.config().profilingMinInterval;
    vertx.executeBlocking(() -> profiler.dumpOnDemand(minInterval).toAbsolutePath().toString(), false)
        .onSuccess(path -> rc.response().putHeader("Content-Type", "text/plain").end(path + "\n"))
        .onFailure(e -> {
          if (e instanceof Profiler.Refused) {
            rc.response().setStatusCode(429).putHeader("Content-Type", "text/plain; charset=utf-8")
                .putHeader("Retry-After", Long.toString(((Profiler.Refused) e).retryAfterSeconds))
                .end(e.getMessage() + "\n");
            return;
          }
          LOG.error("JFR dump failed: {}", e.getMessage());
          rc.response().setStatusCode(500).end("JFR dump failed: " + e.getMessage() + "\n");
        });
  }

  /** By its text (no name lookup on an event loop): localhost, 127/8 or ::1. */
  private static boolean isLoopback(String host) {
    String h = host.replace("[", "").replace("]", "");
    return h.equals("localhost") || h.startsWith("127.") || h.equals("::1");
  }

  @Override
  public Future<?> stop() {
    return server == null ? Future.succeededFuture() : server.close();
  }
}
