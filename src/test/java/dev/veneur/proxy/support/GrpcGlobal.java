package dev.veneur.proxy.support;

import forwardrpc.ForwardOuterClass.MetricList;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import metricpb.MetricOuterClass.Metric;

/**
 * A v14 global's gRPC import on a real socket (h2c): {@code forwardrpc.Forward/SendMetrics}, each
 * MetricList parsed with protobuf's own generated classes and kept, answered with a status the
 * test sets: OK, or another status, or none at all (a hanging global). As a v14 global does, it
 * answers INVALID_ARGUMENT for a list holding a metric it cannot take (here: a name containing
 * {@link #refuseIfNameContains}).
 */
public final class GrpcGlobal {
  public final List<Metric> metrics = new CopyOnWriteArrayList<>();
  public final AtomicInteger calls = new AtomicInteger();
  public final AtomicInteger emptyCalls = new AtomicInteger();
  public final AtomicInteger refusedCalls = new AtomicInteger();
  /** The status answered; null: never answer. */
  public final AtomicReference<GrpcStatus> status = new AtomicReference<>(GrpcStatus.OK);
  public final AtomicReference<String> refuseIfNameContains = new AtomicReference<>();
  private HttpServer server;
  private int port;

  public static GrpcGlobal start(Vertx vertx) {
    return start(vertx, null);
  }

  /** A gRPC global over TLS (ALPN h2) with {@code tls} (certificate and key). */
  public static GrpcGlobal start(Vertx vertx, io.vertx.core.net.KeyCertOptions tls) {
    GrpcGlobal g = new GrpcGlobal();
    // grpc-go's default receive limit, which a v14 global keeps.
    GrpcServer grpc = GrpcServer.server(vertx, new io.vertx.grpc.server.GrpcServerOptions().setMaxMessageSize(4 << 20));
    grpc.callHandler(req -> {
      g.calls.incrementAndGet();
      if (!"forwardrpc.Forward/SendMetrics".equals(req.fullMethodName())) {
        req.response().status(GrpcStatus.UNIMPLEMENTED).end();
        return;
      }
      // As grpc-go answers a message over its limit (Vert.x would otherwise never complete last()).
      req.invalidMessageHandler(e -> req.response().status(GrpcStatus.RESOURCE_EXHAUSTED)
          .statusMessage("grpc: received message larger than max").end());
      req.last().onComplete(ar -> {
        GrpcStatus st = g.status.get();
        if (st == null) return; // hang
        if (ar.failed()) {
          req.response().status(GrpcStatus.INVALID_ARGUMENT).statusMessage(String.valueOf(ar.cause())).end();
          return;
        }
        Buffer b = ar.result();
        MetricList list;
        try {
          list = MetricList.parseFrom(b.getBytes());
        } catch (Exception e) {
          req.response().status(GrpcStatus.INVALID_ARGUMENT).statusMessage("not a MetricList").end();
          return;
        }
        if (st != GrpcStatus.OK) {
          g.refusedCalls.incrementAndGet();
          req.response().status(st).statusMessage("refused by test").end();
          return;
        }
        String poison = g.refuseIfNameContains.get();
        if (poison != null && list.getMetricsList().stream().anyMatch(m -> m.getName().contains(poison))) {
          g.refusedCalls.incrementAndGet();
          req.response().status(GrpcStatus.INVALID_ARGUMENT).statusMessage("a metric this global cannot take").end();
          return;
        }
        if (list.getMetricsCount() == 0) g.emptyCalls.incrementAndGet();
        g.metrics.addAll(list.getMetricsList());
        req.response().end(Buffer.buffer());
      });
    });
    HttpServerOptions o = new HttpServerOptions().setHost("127.0.0.1").setPort(0);
    if (tls != null) {
      o.setSsl(true).setUseAlpn(true).setAlpnVersions(java.util.List.of(io.vertx.core.http.HttpVersion.HTTP_2))
          .setKeyCertOptions(tls);
    } else {
      o.setHttp2ClearTextEnabled(true);
    }
    g.server = vertx.createHttpServer(o).requestHandler(grpc);
    g.server.listen().await();
    g.port = g.server.actualPort();
    return g;
  }

  public int port() {
    return port;
  }

  /** The member name, as v14 writes a gRPC global: host:port. */
  public String member() {
    return "127.0.0.1:" + port;
  }

  public void stop() {
    server.close().await();
  }
}
