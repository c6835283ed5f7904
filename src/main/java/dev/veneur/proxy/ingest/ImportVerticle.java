package dev.veneur.proxy.ingest;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Timer;
import dev.veneur.proxy.ProxyContext;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.forward.Dispatch;
import dev.veneur.proxy.ring.HashRing;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP front door: {@code POST /import} and {@code GET /healthcheck}. Decodes each body on its
 * event loop (inflate once, scan once), routes every metric against the latest ring snapshot the
 * ring verticle published, and puts one chunk per destination on the event bus. Answers 202 as
 * soon as the body is decoded; forwarding happens after.
 *
 * <p>Routing against a published snapshot instead of asking the ring per request keeps the ring
 * verticle the only writer while costing the hot path nothing but an array lookup.
 */
public final class ImportVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ImportVerticle.class);

  private final ProxyContext ctx;
  private final ProxyMetrics metrics;
  private BodyDecoder decoder;
  private final ImportScanner scanner = new ImportScanner();
  private final RequestSplitter splitter = new RequestSplitter();
  private HashRing ring = HashRing.empty();
  private HttpServer server;
  private Timer importTimer;
  private Counter requests;
  private long lagTimer = -1;

  public ImportVerticle(ProxyContext ctx) {
    this.ctx = ctx;
    this.metrics = ctx.metrics();
  }

  @Override
  public Future<?> start() {
    ProxyConfig cfg = ctx.config();
    decoder = new BodyDecoder(cfg.maxInflatedBytes);
    importTimer = metrics.timer(ProxyMetrics.IMPORT_DURATION);
    requests = metrics.registry().counter(ProxyMetrics.IMPORT_REQUESTS);
    vertx.eventBus().<HashRing>consumer(Addresses.RING_SNAPSHOT, m -> ring = m.body());
    // How late a 250 ms timer fires on this event loop: the time an arriving request waits
    // behind other work here. Cheap (four samples a second) and the first thing to look at when
    // /import latency grows.
    measureLag(metrics.registry().histogram("event_loop.lag_ms"));

    Router router = Router.router(vertx);
    router.post("/import").handler(this::onImport);
    router.get("/healthcheck").handler(rc -> rc.response()
        .putHeader("Content-Type", "text/plain").end("ok\n"));
    router.get("/debug/state").handler(this::onState);
    router.post("/debug/profile").handler(this::onProfile);

    server = vertx.createHttpServer(new HttpServerOptions()
        .setHost(cfg.httpHost)
        .setPort(cfg.httpPort)
        .setDecompressionSupported(false)
        .setCompressionSupported(false)
        .setIdleTimeout(120)
        .setIdleTimeoutUnit(TimeUnit.SECONDS));
    // A cap on open connections across all HTTP verticles: past it, new ones are closed at once
    // instead of each holding buffers and a slot on an event loop.
    server.connectionHandler(conn -> {
      if (ctx.connections().incrementAndGet() > ctx.config().httpMaxConnections) {
        metrics.counter(ProxyMetrics.IMPORT_ERRORS, "cause", "too_many_connections").inc();
        conn.close();
      }
      conn.closeHandler(v -> ctx.connections().decrementAndGet());
    });
    return vertx.eventBus().<HashRing>request(Addresses.RING_CURRENT, null)
        .onSuccess(m -> {
          if (ring.isEmpty()) ring = m.body();
        })
        .compose(v -> server.requestHandler(router).listen());
  }

  /** One-shot timers re-armed each time, so each sample is the delay of one timer alone. */
  private void measureLag(com.codahale.metrics.Histogram lag) {
    long due = System.nanoTime() + 250_000_000L;
    lagTimer = vertx.setTimer(250, t -> {
      lag.update(Math.max(0, (System.nanoTime() - due) / 1_000_000));
      measureLag(lag);
    });
  }

  private void onImport(RoutingContext rc) {
    HttpServerRequest req = rc.request();
    long started = System.nanoTime();
    requests.inc();
    ProxyConfig cfg = ctx.config();
    if (ctx.stopping()) {
      refuse(req, new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"));
      return;
    }
    if (ctx.budget().full()) {
      refuse(req, new ImportRefusal(503, "overloaded",
          "the proxy's queues are full (max_queued_bytes); retry later"));
      return;
    }
    String cl = req.getHeader("Content-Length");
    long declared = -1;
    if (cl != null) {
      try {
        declared = Long.parseLong(cl.trim());
      } catch (NumberFormatException e) {
        declared = -1;
      }
    }
    long max = cfg.maxBodyBytes;
    if (declared > max) {
      refuse(req, tooLarge(max));
      return;
    }
    BodyAccumulator body = new BodyAccumulator(declared > 0 ? (int) declared : 16 * 1024, max);
    // A sender that trickles its body would hold a buffer and a connection forever.
    long slow = vertx.setTimer(cfg.httpRequestTimeout.toMillis(), t -> {
      if (body.refused) return;
      body.refused = true;
      refuse(req, new ImportRefusal(408, "slow_body",
          "the request body did not arrive within http_request_timeout (" + cfg.httpRequestTimeout + ")"));
    });
    req.handler(buf -> {
      if (body.refused) return;
      if (!body.append(buf)) {
        body.refused = true;
        vertx.cancelTimer(slow);
        refuse(req, tooLarge(max));
      }
    });
    req.exceptionHandler(e -> {
      body.refused = true;
      vertx.cancelTimer(slow);
    });
    req.endHandler(v -> {
      vertx.cancelTimer(slow);
      if (body.refused) return;
      process(req, body.bytes, body.length, started);
    });
    req.resume();
  }

  private void process(HttpServerRequest req, byte[] raw, int rawLength, long started) {
    HashRing routing = ring;
    if (decoder.limit() != ctx.config().maxInflatedBytes) {
      decoder = new BodyDecoder(ctx.config().maxInflatedBytes);
    }
    try {
      decoder.decode(req.getHeader("Content-Encoding"), raw, rawLength);
      byte[] json = decoder.bytes();
      int n = decoder.length();
      if (routing.isEmpty()) {
        throw new ImportRefusal(503, "no_destination", "no global Veneur is available yet; retry later");
      }
      int ways = routing.size();
      splitter.reset(ways);
      ImportScanner.Result result = scanner.scan(json, n,
          (start, end, hash) -> splitter.add(start, end, hash, routing.ownerIndex(hash)));
      for (int d = 0; d < ways; d++) {
        if (splitter.count(d) > 0
            && ctx.budget().wouldOverflow(routing.members().get(d), splitter.metricBytes(d))) {
          throw new ImportRefusal(503, "overloaded", "the queue for " + routing.members().get(d)
              + " is full (max_queued_bytes_per_destination); retry later");
        }
      }
      MetricChunk[] chunks = splitter.build(json);
      decoder.trim();
      req.response().setStatusCode(202).end();
      if (result.invalid > 0) metrics.rejectedOnArrival(result.invalid, "invalid_metric");
      for (int d = 0; d < ways; d++) {
        if (chunks[d] == null) continue;
        metrics.accepted(chunks[d].count, chunks[d].metricBytes());
        Dispatch.toForwarder(vertx.eventBus(), ctx, routing.members().get(d), chunks[d]);
      }
    } catch (ImportRefusal r) {
      decoder.trim();
      refuse(req, r);
    } finally {
      importTimer.update(System.nanoTime() - started, TimeUnit.NANOSECONDS);
    }
  }

  /** Ring members, ejections, queues and counters: everything needed to check the accounting. */
  private void onState(RoutingContext rc) {
    vertx.eventBus().<JsonObject>request(Addresses.RING_STATE, null).onComplete(ar -> {
      JsonObject state = ar.succeeded() ? ar.result().body().copy() : new JsonObject().put("ring", "unavailable");
      ProxyMetrics m = metrics;
      JsonObject dropped = new JsonObject();
      m.droppedByCause().forEach(dropped::put);
      long received = m.received();
      long forwarded = m.forwarded();
      long droppedTotal = m.droppedTotal();
      long queued = m.queued();
      state.put("queued_bytes_by_destination", new JsonObject(new java.util.LinkedHashMap<>(ctx.budget().snapshot())));
      state.put("counters", new JsonObject()
          .put("received", received).put("forwarded", forwarded).put("dropped", dropped)
          .put("dropped_total", droppedTotal).put("queued", queued).put("queued_bytes", m.queuedBytes()));
      state.put("accounting", new JsonObject()
          .put("received", received)
          .put("forwarded_plus_dropped_plus_queued", forwarded + droppedTotal + queued)
          .put("note", "equal once in-flight updates settle"));
      state.put("stopping", ctx.stopping());
      rc.response().putHeader("Content-Type", "application/json").end(state.encodePrettily());
    });
  }

  /** Dumps the JFR recording (enable_profiling) and answers with the file's path. */
  private void onProfile(RoutingContext rc) {
    if (ctx.profiler() == null) {
      rc.response().setStatusCode(404).end("profiling is off; set enable_profiling: true\n");
      return;
    }
    vertx.executeBlocking(() -> ctx.profiler().dump("ondemand").toAbsolutePath().toString())
        .onSuccess(path -> rc.response().putHeader("Content-Type", "text/plain").end(path + "\n"))
        .onFailure(e -> {
          LOG.error("JFR dump failed: {}", e.getMessage());
          rc.response().setStatusCode(500).end("JFR dump failed: " + e.getMessage() + "\n");
        });
  }

  private void refuse(HttpServerRequest req, ImportRefusal r) {
    metrics.counter(ProxyMetrics.IMPORT_ERRORS, "cause", r.cause).inc();
    LOG.warn("refused /import from {}: {} {} ({})", req.remoteAddress(), r.status, r.reason(), r.cause);
    HttpServerResponse resp = req.response();
    if (resp.ended()) return;
    resp.setStatusCode(r.status).putHeader("Content-Type", "text/plain; charset=utf-8");
    if (r.status == 503) resp.putHeader("Retry-After", "1");
    if (!req.isEnded()) {
      // The rest of the body is unread; closing is cheaper than draining it.
      resp.putHeader("Connection", "close");
    }
    resp.end(r.reason() + "\n");
  }

  private static ImportRefusal tooLarge(long max) {
    return new ImportRefusal(413, "too_large", "request body exceeds max_body_bytes (" + max + " bytes)");
  }

  @Override
  public Future<?> stop() {
    if (lagTimer >= 0) vertx.cancelTimer(lagTimer);
    return server == null ? Future.succeededFuture() : server.close();
  }

  /** A request body collected into one array, refusing to grow past the limit. */
  private static final class BodyAccumulator {
    byte[] bytes;
    int length;
    final long max;
    boolean refused;

    BodyAccumulator(int initial, long max) {
      this.bytes = new byte[Math.max(1024, initial)];
      this.max = max;
    }

    boolean append(io.vertx.core.buffer.Buffer buf) {
      int n = buf.length();
      if ((long) length + n > max) return false;
      if (length + n > bytes.length) {
        bytes = Arrays.copyOf(bytes, (int) Math.min(max, Math.max(length + n, (long) bytes.length * 2)));
      }
      buf.getBytes(0, n, bytes, length);
      length += n;
      return true;
    }
  }
}
