package dev.veneur.proxy.ingest.http;

import dev.veneur.proxy.ingest.*;

import com.codahale.metrics.Counter;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Halves;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.routing.Handoff;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.Owners;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.Message;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP front door, one instance per core: {@code POST /import}, {@code GET /healthcheck},
 * {@code GET /debug/state}. Receives bodies within the memory budget ({@link ImportRequest}),
 * then its {@link Ingester} decodes, scans, routes and deflates them into one compressed chunk per
 * destination, which go to the forwarders over the event bus. Answers 202 once the body is
 * decoded; forwarding happens after.
 *
 * <p>The same instances re-route chunks handed back by forwarders (a global left or was ejected)
 * and split chunks a global refused, since that is the same bytes work.
 *
 * <p>Routing uses the latest ring snapshot the ring verticle published: the ring verticle stays
 * the only writer while the hot path pays an array lookup.
 */
public final class ImportVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ImportVerticle.class);
  private static final boolean TEST_HOOKS = Boolean.getBoolean("veneur.proxy.testHooks");

  private final ProxyContext ctx;
  private final ProxyMetrics metrics;
  /**
   * Refused requests and closed connections are counted one by one, by cause, in
   * import.request_error_total, and logged through one throttle shared by every HTTP verticle of
   * the process: per cause, the first at once, then at most one line per 10 s with how many more
   * there were, not a line per request and verticle.
   */
  private static final LogThrottle refusals = new LogThrottle(LOG, 10_000);
  private Ingester ingester;
  private dev.veneur.proxy.spill.SpillWriter spillWriter;
  private HashRing ring = HashRing.empty();
  private HttpServer server;
  private Counter requests;
  private com.codahale.metrics.Timer proxyTimer;
  /** Per encoding and per sender, looked up once rather than by name on every request. */
  private final Map<String, com.codahale.metrics.Timer> importTimers = new java.util.HashMap<>();
  private final Map<String, Counter> metricsBySender = new java.util.HashMap<>();
  /** Veneur v14's proxy.metrics_total, protocol:http. */
  private Counter v14Metrics;
  private static final int MAX_SENDERS = 10_000;
  private long lagTimer = -1;
  private io.vertx.core.eventbus.MessageConsumer<Handoff> rerouteConsumer;
  private io.vertx.core.eventbus.MessageConsumer<MetricChunk> splitConsumer;

  public ImportVerticle(ProxyContext ctx) {
    this.ctx = ctx;
    this.metrics = ctx.metrics();
  }

  @Override
  public Future<?> start() {
    ProxyConfig cfg = ctx.config();
    v14Metrics = metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_METRICS, "protocol:http"));
    ingester = new Ingester(r -> context.runOnContext(v -> r.run()), ctx.budget(), new Ingester.Limits() {
      @Override
      public int maxStringLength() {
        return ctx.config().maxStringLength;
      }

      @Override
      public int maxMetricBytes() {
        return ctx.config().maxMetricBytes;
      }

      @Override
      public int compressionLevel() {
        return ctx.config().forwardCompressionLevel;
      }
    }, imports);
    requests = metrics.registry().counter(ProxyMetrics.IMPORT_REQUESTS);
    if (ctx.spill() != null) spillWriter = ctx.spill().writer();
    proxyTimer = metrics.timer(ProxyMetrics.PROXY_DURATION);
    // JSON (/import) routes on the ring of HTTP globals (or the only ring there is).
    vertx.eventBus().<dev.veneur.proxy.routing.RingSet>consumer(Addresses.RING_SNAPSHOT, m -> ring = m.body().forJson());
    rerouteConsumer = vertx.eventBus().<Handoff>consumer(Addresses.INGEST_REROUTE, this::onHandoff);
    splitConsumer = vertx.eventBus().<MetricChunk>consumer(Addresses.INGEST_SPLIT, this::onSplit);
    measureLag(metrics.registry().histogram("event_loop.lag_ms"));

    Router router = Router.router(vertx);
    // A message framed two ways (or in a way HTTP/1.1 does not define) is how requests are
    // smuggled past a proxy in front: refuse it and close, as RFC 9112 section 6.1 asks.
    router.route().handler(rc -> {
      HttpServerRequest req = rc.request();
      String framing = badFraming(req);
      if (framing != null) {
        refuse(req, new ImportRefusal(framing.startsWith("unsupported") ? 501 : 400, "framing", framing),
            true, System.nanoTime());
        return;
      }
      rc.next();
    });
    // What a route throws (or a request Vert.x Web cannot route, such as OPTIONS *) gets a
    // one-line answer, counted, instead of an ERROR log line per request.
    router.route().failureHandler(rc -> {
      if (rc.failure() != null) dev.veneur.proxy.core.Fatal.check(rc.failure());
      int status = rc.statusCode() > 0 ? rc.statusCode() : 500;
      if (rc.failure() != null && status == 500) {
        refusals.error("route_failure", "request " + rc.request().method() + " " + rc.request().uri()
            + " failed: " + rc.failure());
      }
      requestError(status == 404 ? "not_found" : status == 500 ? "internal" : "bad_request");
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

    HttpServerOptions serverOptions = new HttpServerOptions();
    if (cfg.httpTls) TlsListener.secure(serverOptions, cfg);
    server = vertx.createHttpServer(serverOptions
        .setHost(cfg.httpHost)
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
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS));
    server.connectionHandler(this::onConnection);
    if (cfg.httpTls) tlsWatch = TlsListener.watch(vertx, server, cfg, ctx.metrics(), refusals, LOG, "http", "http_address");
    // Every request, routed or not, takes over its connection's deadline from the guard (which
    // covered its headers) and gives the connection back to it once answered.
    Router routes = router;
    server.requestHandler(req -> {
      ConnectionGuard guard = ConnectionGuard.of(req.connection());
      if (guard != null) {
        guard.requestStarted();
        req.response().endHandler(v -> guard.answered());
      }
      routes.handle(req);
    });
    return vertx.eventBus().<dev.veneur.proxy.routing.RingSet>request(Addresses.RING_CURRENT, null)
        .onSuccess(m -> {
          if (ring.isEmpty()) ring = m.body().forJson();
        })
        // A failed bind names the address: "Address already in use" alone does not say which of the
        // proxy's listeners (http_address, admin_address) could not be had.
        .compose(v -> server.listen().recover(e -> io.vertx.core.Future.failedFuture(new java.io.IOException(
            "http_address " + cfg.httpHost + ":" + cfg.httpPort + ": " + e.getMessage(), e))))
        .onSuccess(s -> installAcceptGate(s.actualPort()));
  }

  /**
   * Vert.x shows the listening channel only through a connection it accepted, and the accept gate
   * is installed from there: so the proxy connects to itself once, right after listening, and a
   * burst arriving before any other connection already meets the gate. The connection closes at
   * once; it sends nothing and is counted nowhere but in the gate's install.
   */
  private void installAcceptGate(int port) {
    String host = ctx.config().httpHost;
    String self = host.isEmpty() || host.equals("0.0.0.0") ? "127.0.0.1" : host.equals("::") ? "::1" : host;
    io.vertx.core.net.NetClientOptions o = new io.vertx.core.net.NetClientOptions();
    ProxyConfig cfg = ctx.config();
    if (cfg.httpTls) {
      // The gate goes in when a connection reaches the verticle, after its handshake: this one
      // presents the listener's own certificate, which a CA that signs both ends accepts. If the
      // listener refuses it, the first client to finish a handshake installs the gate instead.
      o.setSsl(true).setTrustAll(true).setHostnameVerificationAlgorithm("")
          .setKeyCertOptions(new io.vertx.core.net.PemKeyCertOptions().setCertPath(cfg.tls.certFile())
              .setKeyPath(cfg.tls.keyFile()));
    }
    io.vertx.core.net.NetClient client = vertx.createNetClient(o);
    client.connect(port, self)
        .onSuccess(sock -> sock.close())
        .onFailure(e -> LOG.debug("could not connect to the listener to install the accept gate: {}", e.toString()))
        .onComplete(ar -> client.close());
  }

  static final String TEST_CLOSE_LISTENER = "veneur.test.close-listener";

  private dev.veneur.proxy.core.TlsWatch tlsWatch;

  private void onConnection(HttpConnection conn) {
    int open = ctx.connections().incrementAndGet();
    if (conn instanceof io.vertx.core.net.impl.ConnectionBase) {
      io.netty.channel.Channel ch = ((io.vertx.core.net.impl.ConnectionBase) conn).channel();
      AcceptGate.taken(ch);
      AcceptGate.install(ch, ctx, r -> {
        requestError(r.cause());
        refusals.warn(r.cause(), "closed a connection from " + r.from() + " at accept: " + r.detail());
      });
    }
    conn.closeHandler(v -> ctx.connections().decrementAndGet());
    // A sender resetting its connection is its business (a request in progress is abandoned
    // and counted there); Vert.x would log each one at ERROR.
    conn.exceptionHandler(e -> LOG.debug("connection from {}: {}", conn.remoteAddress(), e.toString()));
    // The cap in force: http_max_connections, lowered when the descriptor limit cannot afford it
    // beside the connections to the globals (core/Descriptors). The accept gate enforces it (and
    // the per-client cap) before a connection gets here; this catches what it cannot see yet.
    int cap = ctx.descriptors().inboundCap();
    if (open > cap) {
      requestError("too_many_connections");
      refusals.warn("too_many_connections", "closed a connection from " + conn.remoteAddress()
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
        requestError(anyByte ? "slow_headers" : "idle_connection");
        if (anyByte) {
          refusals.warn("slow_headers", "closed a connection from " + conn.remoteAddress()
              + " whose request headers did not arrive within http_request_timeout (408)");
        }
      }

      @Override
      public void http2Preface() {
        requestError("http2");
        refusals.warn("http2", "closed a connection from " + conn.remoteAddress()
            + " that spoke HTTP/2 (505: HTTP/1.1 only)");
      }
    });
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

  // ---------------------------------------------------------------- /import

  private void onImport(RoutingContext rc) {
    HttpServerRequest req = rc.request();
    requests.inc();
    ConnectionGuard guard = ConnectionGuard.of(req.connection());
    long left = guard != null ? guard.remainingNanos() : ctx.config().httpRequestTimeout.toNanos();
    if (ctx.stopping()) {
      refuse(req, new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"),
          !req.isEnded(), System.nanoTime());
      return;
    }
    new ImportRequest(vertx, ctx, req, left, sink).begin();
  }

  private final ImportRequest.Sink sink = new ImportRequest.Sink() {
    @Override
    public void received(ImportRequest request) {
      ingester.submit(new ImportTask(request, ring));
    }

    @Override
    public void refused(HttpServerRequest req, ImportRefusal refusal, boolean close) {
      refuse(req, refusal, close, System.nanoTime());
    }
  };

  /**
   * The chunks of one or more bodies the Ingester merged (bodies that were queued together, routed
   * on the same ring): kept on disk (spill_dir), counted, handed to the forwarders, and only then
   * each body answered 202, so a sender that reads its 202 finds its metrics counted.
   */
  private final Ingester.Groups imports = new Ingester.Groups() {
    @Override
    public void done(java.util.List<Ingester.Task> tasks, java.util.List<Ingester.Result> results, MetricChunk[] chunks) {
      if (ctx.stopping()) {
        // Forwarders are draining for the stop: nothing new may enter the queues.
        for (MetricChunk c : chunks) if (c != null) ctx.budget().release(c.bytes());
        for (Ingester.Task t : tasks) {
          ImportTask it = (ImportTask) t;
          refuse(it.request.req, new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"),
              false, it.request.startedNanos);
        }
        return;
      }
      HashRing routing = ((ImportTask) tasks.get(0)).routing;
      RequestTrace trace = null;
      for (MetricChunk c : chunks) if (c != null) trace = c.trace;
      // Counted before handed on: a chunk's trace settles when its forwarder settles it.
      int n = 0;
      for (MetricChunk c : chunks) if (c != null) n++;
      if (trace != null) trace.accepted(n);
      else for (Ingester.Task t : tasks) if (t.trace() != null) t.trace().accepted(0);
      Handover.hand(vertx.eventBus(), ctx, spillWriter, routing, chunks);
      for (int i = 0; i < tasks.size(); i++) ((ImportTask) tasks.get(i)).accepted(results.get(i));
    }

    @Override
    public void abandoned(java.util.List<Ingester.Task> tasks, java.util.List<Ingester.Result> results) {
      for (Ingester.Task t : tasks) {
        ImportTask it = (ImportTask) t;
        refuse(it.request.req, new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"),
            false, it.request.startedNanos);
      }
    }
  };

  /** A received body: decode it, then answer and hand its chunks on. */
  private final class ImportTask implements Ingester.Task {
    final ImportRequest request;
    final HashRing routing;
    /** Built when the task starts; counts its chunks once they exist. */
    final RequestTrace trace;

    ImportTask(ImportRequest request, HashRing routing) {
      this.request = request;
      this.routing = routing;
      this.trace = new RequestTrace(proxyTimer);
    }

    @Override
    public void open(BodySource source) {
      if (routing.isEmpty()) {
        throw new ImportRefusal(503, "no_destination", "no global Veneur is available yet; retry later");
      }
      source.open(request.req.getHeader("Content-Encoding"), request.body(), ctx.config().maxInflatedBytes);
    }

    @Override
    public Owners router() {
      return Owners.of(routing);
    }

    @Override
    public RequestTrace trace() {
      return trace;
    }

    @Override
    public Object mergeKey() {
      return routing;
    }

    @Override
    public void done(Ingester.Result r) {
      if (scanned(r)) imports.done(java.util.List.of(this), java.util.List.of(r), r.chunks);
      else r.release(ctx.budget());
    }

    /** Its body is scanned: answered now if nothing in it is kept; else kept for the 202. */
    @Override
    public boolean scanned(Ingester.Result r) {
      request.release();
      HttpServerRequest req = request.req;
      HttpServerResponse resp = req.response();
      if (r.valid + r.dropped() == 0) {
        refuse(req, new ImportRefusal(400, "empty", "Received empty /import request"), false, request.startedNanos);
        return false;
      }
      if (r.valid + r.refused + r.incomplete == 0) {
        refuse(req, new ImportRefusal(400, "empty_metrics", "Received empty or improperly-formed metrics"),
            false, request.startedNanos);
        return false;
      }
      if (r.valid == 0 && r.refused > 0) {
        // Nothing a global would take: say why, as the Go proxy does for a body it cannot decode.
        refuse(req, new ImportRefusal(400, "json", "no metric a global would accept: " + r.refusal),
            false, request.startedNanos);
        return false;
      }
      if (resp.closed()) {
        // The sender is gone and never saw a 202: it will send again; keep nothing.
        return false;
      }
      if (ctx.stopping()) {
        // Forwarders are draining for the stop: nothing new may enter the queues.
        refuse(req, new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"),
            false, request.startedNanos);
        return false;
      }
      return true;
    }

    /** Answered 202, once its metrics are counted (its chunks are on their way). */
    void accepted(Ingester.Result r) {
      HttpServerRequest req = request.req;
      HttpServerResponse resp = req.response();
      ctx.accounting().droppedOnArrival(r.dropped(), "invalid_metric");
      // Answered once every metric is counted, so a sender that reads the 202 and then the
      // proxy's counters sees its metrics there. A sender that left while the bodies queued
      // behind its own were merged gets its metrics forwarded all the same (it may send them
      // again, as after a 202 lost on the way).
      if (!resp.closed() && !resp.ended()) resp.setStatusCode(202).end();
      // As the Go proxy: timed for accepted requests only, tagged with the body's encoding.
      importTimers.computeIfAbsent(encodingTag(req.getHeader("Content-Encoding")),
              e -> metrics.timer(ProxyMetrics.withTags(ProxyMetrics.IMPORT_DURATION, "part:request", "encoding:" + e)))
          .update(System.nanoTime() - request.startedNanos, TimeUnit.NANOSECONDS);
      String addr = req.remoteAddress() == null ? "unknown" : req.remoteAddress().hostAddress();
      // One series per sender, as the Go proxy; past MAX_SENDERS distinct senders (a fleet whose
      // hosts come and go for weeks) the rest are counted under one tag rather than grow forever.
      if (!metricsBySender.containsKey(addr) && metricsBySender.size() >= MAX_SENDERS) addr = "other";
      metricsBySender.computeIfAbsent(addr, a -> metrics.registry().counter(ProxyMetrics.withTags(
          ProxyMetrics.IMPORT_METRICS, "remote_addr:" + a, "veneurglobalonly"))).inc(r.valid + r.dropped());
      v14Metrics.inc(r.valid + r.dropped());
      if (r.refused > 0) {
        refusals.warn("refused_metric", "dropped " + r.refused + " metric(s) from " + req.remoteAddress()
            + " that a global would refuse (" + r.refusal + "); forwarded the other " + r.valid);
      }
    }

    @Override
    public void failed(ImportRefusal refusal) {
      request.release();
      refuse(request.req, refusal, false, request.startedNanos);
    }
  }

  /** Why a request's framing is refused, or null when it is sound. */
  private static String badFraming(HttpServerRequest req) {
    java.util.List<String> te = req.headers().getAll("Transfer-Encoding");
    ConnectionGuard guard = ConnectionGuard.of(req.connection());
    if ((guard != null && guard.framedTwoWays()) || !te.isEmpty() && req.headers().contains("Content-Length")) {
      return "a request with both Content-Length and Transfer-Encoding is refused";
    }
    if (te.isEmpty()) return null;
    if (te.size() > 1 || !"chunked".equalsIgnoreCase(te.get(0).trim())) {
      return "unsupported Transfer-Encoding '" + String.join(", ", te) + "': only chunked";
    }
    return null;
  }

  private void requestError(String cause) {
    metrics.counter(ProxyMetrics.IMPORT_ERRORS, "cause", cause).inc();
  }

  private void refuse(HttpServerRequest req, ImportRefusal r, boolean close, long started) {
    requestError(r.cause);
    refusals.warn(r.cause, "refused /import from " + req.remoteAddress() + ": " + r.status + " "
        + r.reason() + " (" + r.cause + ")");
    HttpServerResponse resp = req.response();
    if (resp.ended() || resp.closed()) return;
    resp.setStatusCode(r.status).putHeader("Content-Type", "text/plain; charset=utf-8");
    if (r.status == 503) resp.putHeader("Retry-After", "1");
    if (close) resp.putHeader("Connection", "close");
    resp.end(r.reason() + "\n").onComplete(v -> {
      if (close) lingerThenClose(req);
    });
  }

  /**
   * The rest of the body is unread and will not be kept: close the connection. Not at once: a
   * sender still writing its body would get a TCP reset and might lose the answer it has not read
   * yet. So the rest is read and thrown away (nothing is held) for a short while, as HTTP servers
   * do on a "lingering close", and the connection closes when the body ends or the time is up.
   */
  private void lingerThenClose(HttpServerRequest req) {
    HttpConnection conn = req.connection();
    if (req.isEnded()) {
      conn.close();
      return;
    }
    long[] discarded = new long[1];
    long timer = vertx.setTimer(LINGER_MS, t -> conn.close());
    req.handler(b -> {
      discarded[0] += b.length();
      if (discarded[0] > LINGER_BYTES) conn.close();
    });
    req.endHandler(v -> {
      vertx.cancelTimer(timer);
      conn.close();
    });
    req.exceptionHandler(e -> vertx.cancelTimer(timer));
    req.resume();
  }

  /** A lingering close ends after this long or this many discarded bytes, whichever first. */
  private static final long LINGER_MS = 1_000;
  private static final long LINGER_BYTES = 64L << 20;

  private static String encodingTag(String contentEncoding) {
    if (contentEncoding == null || contentEncoding.isBlank()) return "identity";
    return contentEncoding.trim().toLowerCase(java.util.Locale.ROOT);
  }

  // ---------------------------------------------------------------- re-routing and splitting

  /** A chunk handed back by a forwarder: split it by the current ring and send the parts on. */
  private void onHandoff(Message<Handoff> m) {
    Handoff rr = m.body();
    MetricChunk chunk = rr.chunk();
    m.reply(null);
    if (!chunk.land()) return;
    HashRing routing = rr.ring() != null ? rr.ring() : ring;
    if (routing.isEmpty()) {
      ctx.accounting().dropped(chunk, ctx.stopping() ? "shutdown" : "no_destination");
      return;
    }
    if (chunk.proto) {
      try {
        ProtoReroute.route(ctx, ingester, chunk, routing, (parts, to) -> {
          ctx.accounting().replaced(chunk, parts, "no_destination");
          for (int d = 0; d < parts.length; d++) {
            if (parts[d] != null) Dispatch.toForwarder(vertx.eventBus(), ctx, to[d], parts[d], rr.hops());
          }
        });
      } catch (RuntimeException e) {
        // Landed, so ours: a bug must cost this chunk, counted, never its budget or its books.
        LOG.error("could not re-route a protobuf chunk of {} metrics: {}", chunk.count, e.toString());
        ctx.accounting().dropped(chunk, "internal");
      }
      return;
    }
    ingester.submit(new ChunkTask(chunk) {
      @Override
      public Owners router() {
        return Owners.of(routing);
      }

      @Override
      public void done(Ingester.Result r) {
        ctx.accounting().replaced(chunk, r.chunks, "no_destination");
        for (int d = 0; d < r.chunks.length; d++) {
          if (r.chunks[d] != null) {
            Dispatch.toForwarder(vertx.eventBus(), ctx, routing.members().get(d), r.chunks[d], rr.hops());
          }
        }
      }

      @Override
      public void failed(ImportRefusal refusal) {
        LOG.error("could not re-route {} metrics: {}", chunk.count, refusal.reason());
        ctx.accounting().dropped(chunk, ctx.stopping() ? "shutdown" : "no_destination");
      }
    });
  }

  /** A forwarder asks for a chunk in two halves; it keeps owning the original. */
  private void onSplit(Message<MetricChunk> m) {
    MetricChunk chunk = m.body();
    int half = chunk.count / 2;
    if (chunk.proto) {
      MetricChunk[] halves;
      try {
        halves = ProtoSplit.halves(chunk, half, ctx.budget());
      } catch (RuntimeException e) {
        m.fail(500, "could not split a protobuf chunk: " + e);
        return;
      }
      replyHalves(m, halves);
      return;
    }
    ingester.submit(new ChunkTask(chunk) {
      @Override
      public Owners router() {
        return Owners.halves(half);
      }

      @Override
      public void done(Ingester.Result r) {
        replyHalves(m, r.chunks);
      }

      @Override
      public void failed(ImportRefusal refusal) {
        m.fail(500, refusal.reason());
      }
    });
  }

  private void replyHalves(Message<MetricChunk> m, MetricChunk[] halves) {
    MetricChunk first = halves[0];
    MetricChunk second = halves[1];
    // The halves are in transit until the forwarder lands them. If it gave up waiting (its
    // request timed out), nobody will: take them back later and give their bytes back.
    if (first != null) first.depart();
    if (second != null) second.depart();
    m.reply(new Halves(first, second));
    vertx.setTimer(2 * Addresses.SPLIT_TIMEOUT_MS, t -> {
      if (first != null && first.land()) ctx.budget().release(first.bytes());
      if (second != null && second.land()) ctx.budget().release(second.bytes());
    });
  }

  /** Decodes a queued JSON chunk again (already accepted once, so trusted). */
  private abstract static class ChunkTask implements Ingester.Task {
    final MetricChunk chunk;

    ChunkTask(MetricChunk chunk) {
      this.chunk = chunk;
    }

    @Override
    public void open(BodySource source) {
      source.openChunk(chunk.payload, chunk.payload.length);
    }

    @Override
    public RequestTrace trace() {
      return chunk.trace;
    }

    @Override
    public dev.veneur.proxy.bus.SpillMark spill() {
      return chunk.spill;
    }

    @Override
    public boolean trusted() {
      return true;
    }
  }

  // ---------------------------------------------------------------- debug

  /** Ring members, queues, memory and counters: everything needed to check the accounting. */
  private void onState(RoutingContext rc) {
    StateReport.render(vertx, ctx).onComplete(ar -> rc.response()
        .setStatusCode(ar.succeeded() ? 200 : 500)
        .putHeader("Content-Type", ar.succeeded() ? "application/json" : "text/plain; charset=utf-8")
        .end(ar.succeeded() ? ar.result().encodePrettily() : "could not build the state: " + ar.cause() + "\n"));
  }

  /** The profiler is served on the admin listener only: not where any sender can reach it. */
  private void onProfile(RoutingContext rc) {
    requestError("not_found");
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
    Future<Void> unregistered = Future.all(
        rerouteConsumer == null ? Future.succeededFuture() : rerouteConsumer.unregister(),
        splitConsumer == null ? Future.succeededFuture() : splitConsumer.unregister()).mapEmpty();
    return unregistered
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
    io.vertx.core.Promise<Void> p = io.vertx.core.Promise.promise();
    vertx.setTimer(10, t -> drained(deadlineNanos).onComplete(p));
    return p.future();
  }
}
