package dev.veneur.proxy.ingest.http;

import com.codahale.metrics.Counter;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.Fatal;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.core.Timers;
import dev.veneur.proxy.core.TlsWatch;
import dev.veneur.proxy.ingest.ChunkService;
import dev.veneur.proxy.ingest.Health;
import dev.veneur.proxy.ingest.ImportRefusal;
import dev.veneur.proxy.ingest.Ingester;
import dev.veneur.proxy.ingest.Refusals;
import dev.veneur.proxy.ingest.StateReport;
import dev.veneur.proxy.ingest.TlsListener;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.RingSet;
import dev.veneur.proxy.spill.SpillWriter;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP front door, one instance per core: {@code POST /import}, {@code GET /healthcheck},
 * {@code GET /debug/state}. The wiring of its parts: {@link HttpConnections} admits connections,
 * {@link ImportRequest} receives a body within the memory budget, {@link ImportIntake} has the
 * verticle's {@link Ingester} decode, scan, route and deflate it into one compressed chunk per
 * destination and answers 202 once they are handed to the forwarders, {@link HttpAnswers} refuses.
 * Forwarding happens after.
 *
 * <p>The same instances serve the forwarders' re-routing and splitting ({@link ChunkService}),
 * since that is the same bytes work on the same Ingester.
 *
 * <p>Routing uses the latest ring snapshot the ring verticle published: the ring verticle stays
 * the only writer while the hot path pays an array lookup.
 */
public final class ImportVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ImportVerticle.class);
  private static final boolean TEST_HOOKS = Boolean.getBoolean("veneur.proxy.testHooks");
  static final String TEST_CLOSE_LISTENER = "veneur.test.close-listener";
  /** One throttle for every HTTP verticle of the process (see {@link Refusals}). */
  private static final LogThrottle LOG_THROTTLE = new LogThrottle(LOG, 10_000);

  private final ProxyContext ctx;
  private Refusals refusals;
  private HttpAnswers answers;
  private Ingester ingester;
  private ChunkService chunks;
  private SpillWriter spillWriter;
  private HashRing ring = HashRing.empty();
  private HttpServer server;
  private TlsWatch tlsWatch;
  private Counter requests;
  private ImportRequest.Sink sink;
  private long lagTimer = -1;

  public ImportVerticle(ProxyContext ctx) {
    this.ctx = ctx;
  }

  @Override
  public Future<?> start() {
    ProxyConfig cfg = ctx.config();
    ProxyMetrics metrics = ctx.metrics();
    refusals = new Refusals(metrics, null, LOG_THROTTLE);
    answers = new HttpAnswers(Timers.of(vertx), refusals);
    requests = metrics.registry().counter(ProxyMetrics.IMPORT_REQUESTS);
    if (ctx.spill() != null) spillWriter = ctx.spill().writer();
    ImportIntake intake = new ImportIntake(vertx, ctx, answers, refusals, () -> ring, spillWriter);
    ingester = new Ingester(r -> context.runOnContext(v -> r.run()), ctx.budget(), Ingester.Limits.of(ctx::config),
        intake.groups);
    intake.ingester(ingester);
    sink = intake.sink;
    // JSON (/import) routes on the ring of HTTP globals (or the only ring there is).
    vertx.eventBus().<RingSet>consumer(Addresses.RING_SNAPSHOT, m -> ring = m.body().forJson());
    chunks = new ChunkService(vertx, ctx, ingester, () -> ring);
    chunks.start();
    measureLag(metrics.registry().histogram("event_loop.lag_ms"));

    HttpConnections connections = new HttpConnections(vertx, ctx, refusals);
    server = vertx.createHttpServer(serverOptions(cfg));
    server.connectionHandler(connections::onConnection);
    if (cfg.httpTls) tlsWatch = TlsListener.watch(vertx, server, cfg, metrics, LOG_THROTTLE, LOG, "http", "http_address");
    // Every request, routed or not, takes over its connection's deadline from the guard (which
    // covered its headers) and gives the connection back to it once answered.
    Router routes = router();
    server.requestHandler(req -> {
      ConnectionGuard guard = ConnectionGuard.of(req.connection());
      if (guard != null) {
        guard.requestStarted();
        req.response().endHandler(v -> guard.answered());
      }
      routes.handle(req);
    });
    return vertx.eventBus().<RingSet>request(Addresses.RING_CURRENT, null)
        .onSuccess(m -> {
          if (ring.isEmpty()) ring = m.body().forJson();
        })
        // A failed bind names the address: "Address already in use" alone does not say which of the
        // proxy's listeners (http_address, admin_address) could not be had.
        .compose(v -> server.listen().recover(e -> Future.failedFuture(new IOException(
            "http_address " + cfg.httpHost + ":" + cfg.httpPort + ": " + e.getMessage(), e))))
        .compose(s -> connections.installAcceptGate(s.actualPort()));
  }

  private static HttpServerOptions serverOptions(ProxyConfig cfg) {
    HttpServerOptions o = new HttpServerOptions();
    if (cfg.httpTls) TlsListener.secure(o, cfg);
    return o.setHost(cfg.httpHost)
        .setPort(cfg.httpPort)
        // HTTP/1.1 only, as the Go proxy: h2c would let one connection open many streams past
        // the connection cap, and its preface detection delays the connection handler until the
        // first byte, which is when the cap and the header deadline must already apply.
        .setHttp2ClearTextEnabled(false)
        // As Go's net/http: a sender that asks first (curl does for big bodies) is told to go on.
        .setHandle100ContinueAutomatically(true)
        .setDecompressionSupported(false)
        .setCompressionSupported(false)
        .setIdleTimeout((int) Math.max(1, cfg.httpIdleTimeout.toMillis()))
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS);
  }

  private Router router() {
    Router router = Router.router(vertx);
    router.route().handler(rc -> {
      HttpServerRequest req = rc.request();
      ConnectionGuard guard = ConnectionGuard.of(req.connection());
      String framing = HttpAnswers.badFraming(req, guard != null && guard.framedTwoWays());
      if (framing != null) {
        answers.refuse(req, new ImportRefusal(framing.startsWith("unsupported") ? 501 : 400, "framing", framing), true);
        return;
      }
      rc.next();
    });
    // What a route throws (or a request Vert.x Web cannot route, such as OPTIONS *) gets a
    // one-line answer, counted, instead of an ERROR log line per request.
    router.route().failureHandler(rc -> {
      if (rc.failure() != null) Fatal.check(rc.failure());
      int status = rc.statusCode() > 0 ? rc.statusCode() : 500;
      if (rc.failure() != null && status == 500) {
        refusals.error("route_failure", "request " + rc.request().method() + " " + rc.request().uri()
            + " failed: " + rc.failure());
      }
      refusals.count(status == 404 ? "not_found" : status == 500 ? "internal" : "bad_request");
      if (!rc.response().ended() && !rc.response().closed()) {
        rc.response().setStatusCode(status).putHeader("Content-Type", "text/plain; charset=utf-8")
            .end(status == 404 ? "not found\n" : status == 500 ? "internal error\n" : "bad request\n");
      }
    });
    router.post("/import").handler(this::onImport);
    router.get("/healthcheck").handler(rc -> Health.answer(rc, ctx, ring));
    router.get("/debug/state").handler(this::onState);
    router.post("/debug/profile").handler(this::onProfile);
    if (TEST_HOOKS) {
      router.post("/debug/test/oom").handler(rc -> {
        throw new OutOfMemoryError("test hook: simulated OutOfMemoryError on an event loop");
      });
      router.post("/debug/test/close-listener").handler(rc -> {
        rc.response().end("closing the listener behind the app's back\n");
        vertx.setTimer(50, t -> vertx.eventBus().publish(TEST_CLOSE_LISTENER, null));
      });
      vertx.eventBus().consumer(TEST_CLOSE_LISTENER, m -> server.close());
    }
    return router;
  }

  /** One-shot timers re-armed each time, so each sample is the delay of one timer alone. */
  private void measureLag(com.codahale.metrics.Histogram lag) {
    long due = System.nanoTime() + 250_000_000L;
    lagTimer = vertx.setTimer(250, t -> {
      lag.update(Math.max(0, (System.nanoTime() - due) / 1_000_000));
      // The same timer ages out this loop's spill segment when no chunk comes to rotate it.
      if (spillWriter != null) spillWriter.tick();
      measureLag(lag);
    });
  }

  private void onImport(RoutingContext rc) {
    HttpServerRequest req = rc.request();
    requests.inc();
    ConnectionGuard guard = ConnectionGuard.of(req.connection());
    long left = guard != null ? guard.remainingNanos() : ctx.config().httpRequestTimeout.toNanos();
    if (ctx.stopping()) {
      answers.refuse(req, new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"),
          !req.isEnded());
      return;
    }
    new ImportRequest(vertx, ctx, req, left, sink).begin();
  }

  /** Ring members, queues, memory and counters: everything needed to check the accounting. */
  private void onState(RoutingContext rc) {
    StateReport.render(vertx, ctx).onComplete(ar -> rc.response()
        .setStatusCode(ar.succeeded() ? 200 : 500)
        .putHeader("Content-Type", ar.succeeded() ? "application/json" : "text/plain; charset=utf-8")
        .end(ar.succeeded() ? ar.result().encodePrettily() : "could not build the state: " + ar.cause() + "\n"));
  }

  /** The profiler is served on the admin listener only: not where any sender can reach it. */
  private void onProfile(RoutingContext rc) {
    refusals.count("not_found");
    String admin = ctx.adminAddress();
    rc.response().setStatusCode(404).putHeader("Content-Type", "text/plain; charset=utf-8")
        .end("POST /debug/profile is served on admin_address" + (admin == null ? " (off)" : " (" + admin + ")")
            + ", not on http_address\n");
  }

  /**
   * Retired (a reload moved the listener, or the proxy stops): no new re-routing work comes here;
   * the listener closes gracefully, letting requests in progress finish; what the Ingester holds
   * (bodies being decoded, chunks being re-routed) is worked off; only then its native memory goes.
   */
  @Override
  public Future<?> stop() {
    if (lagTimer >= 0) vertx.cancelTimer(lagTimer);
    if (tlsWatch != null) tlsWatch.stop();
    long grace = ctx.config().httpRequestTimeout.toMillis();
    return (chunks == null ? Future.<Void>succeededFuture() : chunks.stop())
        .compose(v -> server == null ? Future.<Void>succeededFuture()
            : server.shutdown(grace, TimeUnit.MILLISECONDS).recover(e -> Future.succeededFuture()))
        .compose(v -> drained(System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(grace)))
        .onComplete(v -> {
          if (ingester != null) ingester.close();
          if (spillWriter != null) spillWriter.close();
        });
  }

  private Future<Void> drained(long deadlineNanos) {
    if (ingester == null || ingester.backlog() == 0 || System.nanoTime() > deadlineNanos) {
      return Future.succeededFuture();
    }
    Promise<Void> p = Promise.promise();
    vertx.setTimer(10, t -> drained(deadlineNanos).onComplete(p));
    return p.future();
  }
}
