package dev.veneur.proxy.ingest.grpc;

import dev.veneur.proxy.ingest.*;

import com.codahale.metrics.Counter;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.Owners;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.Http2Settings;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerOptions;
import io.vertx.grpc.server.GrpcServerRequest;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gRPC front door for Veneur v14 locals, one instance per core beside the HTTP ones:
 * {@code forwardrpc.Forward/SendMetrics} (a whole {@code MetricList}: {@code grpc-single}, and v14.0–14.1's
 * {@code forward_use_grpc}) and {@code SendMetricsV2} (a stream of {@code Metric}:
 * {@code grpc-stream}). Each message is read inside the memory budget ({@link GrpcCall}), its
 * metrics checked as a v14 global would and sorted by destination ({@link GrpcTranslator}): a
 * metric for a gRPC global is spliced, its bytes untouched, into that global's protobuf chunk; the
 * others are translated to the JSON {@code /import} carries and take the JSON path, this verticle's
 * {@link Ingester} routing them on the same ring snapshot by {@code name + type + tagstring} (the
 * same key, so a series lands on one global whichever protocol it came by) and deflating one chunk
 * per HTTP global. Chunks go to the forwarders through {@link Handover}. The call is answered once its metrics are counted and queued,
 * as {@code /import} answers 202 — unlike the Go v14 proxy, which answers before forwarding.
 *
 * <p>Refusals are gRPC statuses with a one-line message, counted by cause in
 * {@code import.request_error_total} with {@code protocol:grpc}: UNIMPLEMENTED for another method,
 * RESOURCE_EXHAUSTED for a message over {@code grpc_max_message_bytes} or a budget that stayed full
 * past {@code memory_wait_timeout}, UNAVAILABLE while there is no global or the proxy stops,
 * INVALID_ARGUMENT for a message that does not parse, DEADLINE_EXCEEDED for a call slower than
 * {@code http_request_timeout}.
 */
public final class GrpcIngestVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(GrpcIngestVerticle.class);
  static final String SEND_METRICS = "forwardrpc.Forward/SendMetrics";
  static final String SEND_METRICS_V2 = "forwardrpc.Forward/SendMetricsV2";
  /** A SendMetricsV2 stream is handed on in parts of about this much JSON, not held whole. */
  static final int STREAM_PART_BYTES = 256 * 1024;
  private static final LogThrottle refusals = new LogThrottle(LOG, 10_000);

  private final ProxyContext ctx;
  private final ProxyMetrics metrics;
  private Ingester ingester;
  private dev.veneur.proxy.spill.SpillWriter spillWriter;
  private HashRing ring = HashRing.empty();
  private HttpServer server;
  /** The TLS listener ({@code grpc_tls_address}), or null. */
  private HttpServer tlsServer;
  private dev.veneur.proxy.core.TlsWatch tlsWatch;
  private Counter calls;
  private com.codahale.metrics.Timer proxyTimer;
  private long spillTick = -1;
  private GrpcCall arriving;

  public GrpcIngestVerticle(ProxyContext ctx) {
    this.ctx = ctx;
    this.metrics = ctx.metrics();
  }

  @Override
  public Future<?> start() {
    ProxyConfig cfg = ctx.config();
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
    });
    calls = metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_REQUESTS, "protocol:grpc"));
    proxyTimer = metrics.timer(ProxyMetrics.PROXY_DURATION);
    if (ctx.spill() != null) {
      spillWriter = ctx.spill().writer();
      spillTick = vertx.setPeriodic(250, t -> spillWriter.tick());
    }
    // gRPC routes on the ring of gRPC globals (or the only ring there is), as Veneur v14.2.0.
    vertx.eventBus().<dev.veneur.proxy.routing.RingSet>consumer(Addresses.RING_SNAPSHOT, m -> ring = m.body().forGrpc());
    GrpcServer grpc = GrpcServer.server(vertx, new GrpcServerOptions().setMaxMessageSize(cfg.grpcMaxMessageBytes));
    grpc.callHandler(this::onCall);
    server = listener(grpc, cfg.grpcHost, cfg.grpcPort, false);
    if (cfg.grpcTlsPort >= 0) tlsServer = listener(grpc, cfg.grpcTlsHost, cfg.grpcTlsPort, true);
    return vertx.eventBus().<dev.veneur.proxy.routing.RingSet>request(Addresses.RING_CURRENT, null)
        .onSuccess(m -> {
          if (ring.isEmpty()) ring = m.body().forGrpc();
        })
        .compose(v -> server == null ? Future.succeededFuture() : server.listen().recover(e -> Future.failedFuture(
            new java.io.IOException("grpc_address " + cfg.grpcHost + ":" + cfg.grpcPort + ": " + e.getMessage(), e))))
        .compose(v -> tlsServer == null ? Future.succeededFuture() : tlsServer.listen().recover(e -> Future.failedFuture(
            new java.io.IOException("grpc_tls_address " + cfg.grpcTlsHost + ":" + cfg.grpcTlsPort + ": "
                + e.getMessage(), e))));
  }

  /**
   * A gRPC listener: h2c on grpc_address (as Veneur's locals dial it), or TLS with ALPN h2 on
   * grpc_tls_address (v14's TLS listener, with client verification when {@code tls.ca_file} is set).
   */
  private HttpServer listener(GrpcServer grpc, String host, int port, boolean tls) {
    ProxyConfig cfg = ctx.config();
    if (port < 0) return null;
    HttpServerOptions o = new HttpServerOptions()
        .setHost(host)
        .setPort(port)
        .setInitialSettings(new Http2Settings().setMaxConcurrentStreams(cfg.grpcMaxConcurrentStreams))
        .setIdleTimeout((int) Math.max(1, cfg.httpIdleTimeout.toMillis()))
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS);
    if (tls) {
      TlsListener.secure(o, cfg).setUseAlpn(true).setAlpnVersions(java.util.List.of(io.vertx.core.http.HttpVersion.HTTP_2));
    } else {
      // gRPC is HTTP/2 with prior knowledge (h2c), as Veneur's locals dial it.
      o.setHttp2ClearTextEnabled(true);
    }
    HttpServer s = vertx.createHttpServer(o);
    s.connectionHandler(conn -> {
      int open = ctx.connections().incrementAndGet();
      conn.closeHandler(v -> ctx.connections().decrementAndGet());
      conn.exceptionHandler(e -> LOG.debug("gRPC connection from {}: {}", conn.remoteAddress(), e.toString()));
      if (open > ctx.descriptors().inboundCap()) {
        requestError("too_many_connections");
        refusals.warn("too_many_connections", "closed a gRPC connection from " + conn.remoteAddress()
            + ": the connection cap in force is " + ctx.descriptors().inboundCap());
        conn.close();
      }
    });
    s.requestHandler(req -> {
      // The gRPC server calls the call handler from within handle(): the call's byte counter is
      // passed to it through this field.
      arriving = new GrpcCall(req, vertx, context, ctx.budget(), ctx.config());
      try {
        grpc.handle(arriving);
      } finally {
        arriving = null;
      }
    });
    if (tls) tlsWatch = TlsListener.watch(vertx, s, cfg, metrics, refusals, LOG, "grpc", "grpc_tls_address");
    return s;
  }

  @Override
  public Future<?> stop() {
    if (spillTick >= 0) vertx.cancelTimer(spillTick);
    ingester.close();
    if (tlsWatch != null) tlsWatch.stop();
    return Future.join(server == null ? Future.succeededFuture() : server.close(),
        tlsServer == null ? Future.succeededFuture() : tlsServer.close());
  }

  // ---------------------------------------------------------------- calls

  private void onCall(GrpcServerRequest<Buffer, Buffer> req) {
    calls.inc();
    GrpcCall bytes = arriving;
    arriving = null;
    String method = req.fullMethodName();
    boolean stream = SEND_METRICS_V2.equals(method);
    if (!stream && !SEND_METRICS.equals(method)) {
      refuse(req, bytes, GrpcStatus.UNIMPLEMENTED, "unknown_method",
          "this proxy serves forwardrpc.Forward/SendMetrics and SendMetricsV2, not " + dev.veneur.proxy.config.LogText.escape(method));
      return;
    }
    if (ctx.stopping()) {
      refuse(req, bytes, GrpcStatus.UNAVAILABLE, "shutting_down", "the proxy is shutting down; retry elsewhere");
      return;
    }
    new Call(req, bytes, stream).begin();
  }

  /** One call: its messages become parts (one per unary call; ~256 KiB of JSON each for a stream). */
  private final class Call implements Admission.Listener {
    final GrpcServerRequest<Buffer, Buffer> req;
    final GrpcCall bytes;
    final boolean stream;
    final long started = System.nanoTime();
    final RequestTrace trace = new RequestTrace(proxyTimer);
    GrpcTranslator part;
    int partsOut;
    int chunksOut;
    int messages;
    boolean ended;
    boolean answered;

    Call(GrpcServerRequest<Buffer, Buffer> req, GrpcCall bytes, boolean stream) {
      this.req = req;
      this.bytes = bytes;
      this.stream = stream;
    }

    void begin() {
      bytes.begin(this, ctx.config().httpRequestTimeout.toMillis());
      req.handler(this::onMessage);
      req.endHandler(v -> {
        ended = true;
        if (answered) return;
        if (part != null) submit();
        // A unary call must carry its one message; an empty MetricList is a message (answered OK,
        // as a v14 global answers it), no message at all is not.
        else if (!stream && messages == 0) fail(GrpcStatus.INVALID_ARGUMENT, "empty", "SendMetrics without a MetricList");
        maybeAnswer();
      });
      // A message over grpc_max_message_bytes is never buffered: Vert.x skips its bytes and says so
      // here (what arrived of it was counted in the budget and goes back when the call ends).
      req.invalidMessageHandler(e -> {
        if (e instanceof io.vertx.grpc.common.MessageSizeOverflowException) {
          fail(GrpcStatus.RESOURCE_EXHAUSTED, "too_large", "a message exceeds grpc_max_message_bytes ("
              + ctx.config().grpcMaxMessageBytes + " bytes)");
        } else {
          fail(GrpcStatus.INVALID_ARGUMENT, "malformed", "a message could not be read: " + dev.veneur.proxy.config.LogText.escape(String.valueOf(e.getMessage())));
        }
      });
      req.exceptionHandler(e -> {
        if (!answered) {
          // The client reset the stream or the connection went away: nothing was answered; what
          // was handed on already stays accepted (its metrics are counted and queued).
          answered = true;
          requestError("reset");
          bytes.finish();
        }
      });
    }

    void onMessage(Buffer msg) {
      if (answered) return;
      messages++;
      byte[] b = msg.getBytes();
      if (part == null) part = new GrpcTranslator(stream ? 4096 : b.length * 2, ring, ctx.budget());
      if (stream) {
        part.addMetric(b, 0, b.length);
      } else if (!part.addList(b, 0, b.length)) {
        bytes.consumed(b.length + 5L);
        fail(GrpcStatus.INVALID_ARGUMENT, "malformed", "the MetricList does not parse as protobuf");
        return;
      }
      bytes.consumed(b.length + 5L);
      if (stream && part.size() >= STREAM_PART_BYTES) {
        submit();
        bytes.checkMemory();
      }
    }

    /** Hands the part built so far to the Ingester (it is counted there, answered at the end). */
    void submit() {
      GrpcTranslator t = part;
      part = null;
      for (Map.Entry<String, Integer> d : t.dropped().entrySet()) {
        ctx.accounting().droppedOnArrival(d.getValue(), d.getKey());
      }
      if (t.droppedTotal() > 0) {
        refusals.warn("refused_metric", "dropped " + t.droppedTotal() + " metric(s) from a gRPC call of "
            + req.connection().remoteAddress() + " that a v14 global would refuse (" + t.firstProblem()
            + "); forwarded the other " + t.valid());
      }
      if (t.scopeLost() > 0) metrics.registry().counter("grpc.scope_lost_total").inc(t.scopeLost());
      // Metrics a v14 global would refuse are received too, for v14's proxy.metrics_total.
      if (t.droppedTotal() > 0) {
        metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_METRICS, "protocol:grpc")).inc(t.droppedTotal());
      }
      handSpliced(t);
      if (t.valid() == 0) return;
      byte[] json = t.finish();
      ctx.budget().reserve(json.length);
      partsOut++;
      ingester.submit(new Part(this, json, t.routing()));
    }

    /**
     * Metrics for gRPC globals were spliced into protobuf chunks as they were read: they are
     * handed on here, counted as the Ingester's results are ({@link #partDone}).
     */
    void handSpliced(GrpcTranslator t) {
      MetricChunk[] chunks = t.protoChunks(null);
      if (chunks == null) return;
      if (ctx.stopping()) {
        for (MetricChunk c : chunks) if (c != null) ctx.budget().release(c.bytes());
        ctx.accounting().droppedOnArrival(t.spliced(), "shutdown");
        fail(GrpcStatus.UNAVAILABLE, "shutting_down", "the proxy is shutting down; retry elsewhere");
        return;
      }
      chunksOut += Handover.hand(vertx.eventBus(), ctx, spillWriter, t.routing(), chunks);
      metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_METRICS, "protocol:grpc")).inc(t.spliced());
      metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_METRICS, "protocol:grpc")).inc(t.spliced());
    }

    void partDone(Part p, Ingester.Result r) {
      partsOut--;
      ctx.budget().release(p.json.length);
      if (answered || ctx.stopping()) {
        // Answered already (an error) or stopping: these metrics never reach the queues, and a
        // call not yet answered is told so (a sender that reads OK must find its metrics queued).
        r.release(ctx.budget());
        ctx.accounting().droppedOnArrival(r.valid, answered ? "call_failed" : "shutdown");
        if (!answered) fail(GrpcStatus.UNAVAILABLE, "shutting_down", "the proxy is shutting down; retry elsewhere");
      } else {
        ctx.accounting().droppedOnArrival(r.dropped(), "invalid_metric");
        chunksOut += Handover.hand(vertx.eventBus(), ctx, spillWriter, p.routing, r.chunks);
        metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_METRICS, "protocol:grpc"))
            .inc(r.valid + r.dropped());
        metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_METRICS, "protocol:grpc"))
            .inc(r.valid + r.dropped());
      }
      maybeAnswer();
      bytes.checkMemory();
    }

    void partFailed(Part p, ImportRefusal refusal) {
      partsOut--;
      ctx.budget().release(p.json.length);
      fail(statusOf(refusal), refusal.cause, refusal.reason());
    }

    void maybeAnswer() {
      if (answered || !ended || partsOut > 0) return;
      answered = true;
      bytes.finish();
      trace.accepted(0);
      metrics.timer(ProxyMetrics.withTags(ProxyMetrics.IMPORT_DURATION, "part:request", "protocol:grpc"))
          .update(System.nanoTime() - started, TimeUnit.NANOSECONDS);
      // google.protobuf.Empty: a message of no bytes.
      req.response().end(Buffer.buffer());
    }

    void fail(GrpcStatus status, String cause, String message) {
      if (answered) return;
      answered = true;
      refuse(req, bytes, status, cause, message);
    }

    @Override
    public void overloaded() {
      fail(GrpcStatus.RESOURCE_EXHAUSTED, "overloaded", "the proxy's memory budget is full (memory_budget); retry later");
    }

    @Override
    public void tooSlow() {
      fail(GrpcStatus.DEADLINE_EXCEEDED, "slow_call", "the call did not end within http_request_timeout ("
          + ctx.config().httpRequestTimeout.toMillis() + "ms)");
    }
  }

  /** A part of a call's metrics, as JSON, through this verticle's Ingester. */
  private final class Part implements Ingester.Task {
    final Call call;
    final byte[] json;
    final HashRing routing;

    Part(Call call, byte[] json, HashRing routing) {
      this.call = call;
      this.json = json;
      this.routing = routing;
    }

    @Override
    public void open(BodySource source) {
      if (routing.isEmpty()) {
        throw new ImportRefusal(503, "no_destination", "no global Veneur is available yet; retry later");
      }
      source.open(null, List.of(ByteBuffer.wrap(json)), Long.MAX_VALUE);
    }

    @Override
    public Owners router() {
      return Owners.of(routing);
    }

    @Override
    public RequestTrace trace() {
      return null;
    }

    @Override
    public boolean trusted() {
      // Translated from protobuf here: the JSON sizes are ours, not the sender's.
      return true;
    }

    @Override
    public void done(Ingester.Result result) {
      call.partDone(this, result);
    }

    @Override
    public void failed(ImportRefusal refusal) {
      call.partFailed(this, refusal);
    }
  }

  private static GrpcStatus statusOf(ImportRefusal r) {
    return switch (r.status) {
      case 503 -> GrpcStatus.UNAVAILABLE;
      case 413 -> GrpcStatus.RESOURCE_EXHAUSTED;
      case 408 -> GrpcStatus.DEADLINE_EXCEEDED;
      case 500 -> GrpcStatus.INTERNAL;
      default -> GrpcStatus.INVALID_ARGUMENT;
    };
  }

  private void refuse(GrpcServerRequest<Buffer, Buffer> req, GrpcCall bytes, GrpcStatus status, String cause,
      String message) {
    if (bytes != null) bytes.finish();
    requestError(cause);
    refusals.warn(cause, "refused a gRPC call from " + req.connection().remoteAddress() + ": " + status.name() + " "
        + message + " (" + cause + ")");
    try {
      req.response().status(status).statusMessage(message).end();
    } catch (IllegalStateException alreadyEnded) {
      // The stream was reset or answered meanwhile: nothing to say.
    }
    if (bytes != null) bytes.endStream();
  }

  private void requestError(String cause) {
    metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_ERRORS, "cause:" + cause, "protocol:grpc")).inc();
  }
}
