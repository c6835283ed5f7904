package dev.veneur.proxy.ingest.grpc;

import com.codahale.metrics.Counter;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.ingest.Ingester;
import dev.veneur.proxy.ingest.Refusals;
import dev.veneur.proxy.ingest.TlsListener;
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
  /** One throttle for every gRPC verticle of the process (see {@link Refusals}). */
  private static final LogThrottle LOG_THROTTLE = new LogThrottle(LOG, 10_000);

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
  private Refusals refusals;
  private CallIntake intake;
  private long spillTick = -1;
  private GrpcCall arriving;

  public GrpcIngestVerticle(ProxyContext ctx) {
    this.ctx = ctx;
    this.metrics = ctx.metrics();
  }

  @Override
  public Future<?> start() {
    ProxyConfig cfg = ctx.config();
    ingester = new Ingester(r -> context.runOnContext(v -> r.run()), ctx.budget(), Ingester.Limits.of(ctx::config));
    refusals = new Refusals(metrics, "grpc", LOG_THROTTLE);
    calls = metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_REQUESTS, "protocol:grpc"));
    if (ctx.spill() != null) {
      spillWriter = ctx.spill().writer();
      spillTick = vertx.setPeriodic(250, t -> spillWriter.tick());
    }
    intake = new CallIntake(vertx, ctx, ingester, spillWriter, refusals, () -> ring);
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
        refusals.refused("too_many_connections", "closed a gRPC connection from " + conn.remoteAddress()
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
    if (tls) tlsWatch = TlsListener.watch(vertx, s, cfg, metrics, LOG_THROTTLE, LOG, "grpc", "grpc_tls_address");
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

  private void onCall(GrpcServerRequest<Buffer, Buffer> req) {
    calls.inc();
    GrpcCall bytes = arriving;
    arriving = null;
    String method = req.fullMethodName();
    boolean stream = SEND_METRICS_V2.equals(method);
    if (!stream && !SEND_METRICS.equals(method)) {
      intake.refuse(req, bytes, GrpcStatus.UNIMPLEMENTED, "unknown_method",
          "this proxy serves forwardrpc.Forward/SendMetrics and SendMetricsV2, not " + dev.veneur.proxy.config.LogText.escape(method));
      return;
    }
    if (ctx.stopping()) {
      intake.refuse(req, bytes, GrpcStatus.UNAVAILABLE, "shutting_down", "the proxy is shutting down; retry elsewhere");
      return;
    }
    intake.new Call(req, bytes, stream).begin();
  }

}
