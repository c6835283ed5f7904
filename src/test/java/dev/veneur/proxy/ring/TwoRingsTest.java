package dev.veneur.proxy.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Empty;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.GrpcGlobal;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import forwardrpc.ForwardGrpcClient;
import forwardrpc.ForwardOuterClass.MetricList;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import metricpb.MetricOuterClass.Metric;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Veneur v14.2.0's two rings in one proxy: JSON ({@code /import}) to the HTTP globals of
 * {@code forward_addresses}, gRPC to the gRPC globals of {@code grpc_forward_address}, each placed
 * by its own ring (v2's key on the first, v14's with {@code ignore_tags} on the second), and a
 * gRPC global's share staying on the gRPC ring when it is ejected.
 */
@ExtendWith(VertxExtension.class)
class TwoRingsTest {
  private static final Path V14 = Path.of("src/test/resources/fixtures/veneur-v14.2.0");

  @Test
  void jsonAndGrpcEachGoToTheirOwnRing(Vertx vertx) throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    GrpcGlobal g1 = GrpcGlobal.start(vertx);
    GrpcGlobal g2 = GrpcGlobal.start(vertx);
    int grpcPort = TestProxy.freePort();
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_addresses", new JsonArray().add(a.url()).add(b.url()))
        .put("grpc_forward_address", g1.member() + "," + g2.member())
        .put("grpc_address", "127.0.0.1:" + grpcPort)
        .put("ignore_tags", new JsonArray().add(new JsonObject().put("kind", "prefix").put("value", "az:")))
        .put("forward_timeout", "1s")
        .put("eject_slow_after", "300ms")
        .put("forward_retry_budget", "30s"));
    GrpcClient client = GrpcClient.client(vertx);
    try {
      // JSON: to a and b only, by v2's key.
      JsonArray json = Bodies.generate("tworings", 300, 5);
      assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(json.encode())), "deflate").statusCode());
      Await.until("JSON at the HTTP globals", () -> a.metrics.size() + b.metrics.size() == 300);
      HashRing http = HashRing.of(List.of(a.url(), b.url()));
      for (TestGlobal g : List.of(a, b)) {
        for (JsonObject m : g.metrics) assertEquals(http.owner(HashRing.hashKey(Bodies.key(m))), g.url(), Bodies.key(m));
      }

      // gRPC: to g1 and g2 only, by v14's key without the az: tags.
      MetricList list = MetricList.parseFrom(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
      ForwardGrpcClient local = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(grpcPort, "127.0.0.1"));
      assertEquals(Empty.getDefaultInstance(), local.sendMetrics(list).await());
      Await.until("gRPC at the gRPC globals", () -> g1.metrics.size() + g2.metrics.size() == list.getMetricsCount());
      proxy.awaitSettled();
      assertEquals(300, a.metrics.size() + b.metrics.size(), "nothing of the gRPC call at the HTTP globals");
      HashRing grpc = HashRing.of(List.of(g1.member(), g2.member()));
      for (GrpcGlobal g : List.of(g1, g2)) {
        for (Metric m : g.metrics) {
          String key = m.getName() + m.getType().name().toLowerCase(Locale.ROOT)
              + String.join(",", m.getTagsList().stream().filter(t -> !t.startsWith("az:")).toList());
          assertEquals(grpc.owner(HashRing.hashKey(key)), g.member(), key);
        }
      }
      JsonObject state = new JsonObject(proxy.get("/debug/state").body());
      assertEquals(new JsonArray(List.of(a.url(), b.url())), state.getJsonArray("members"));
      assertEquals(2, state.getJsonObject("grpc_ring").getJsonArray("members").size());

      // A gRPC global that hangs is ejected; its share goes to the other gRPC global, never to an
      // HTTP one.
      for (GrpcGlobal g : List.of(g1, g2)) g.metrics.clear();
      g2.status.set(null);
      assertEquals(Empty.getDefaultInstance(), local.sendMetrics(list).await());
      Await.until("every gRPC metric at g1", Duration.ofSeconds(60), () -> g1.metrics.size() == list.getMetricsCount());
      proxy.awaitSettled();
      assertEquals(300, a.metrics.size() + b.metrics.size(), "nothing rerouted to the HTTP ring");
      assertEquals(0, proxy.metrics().droppedTotal());
      assertTrue(proxy.metrics().registry().counter("forward.ejections#destination:" + g2.member()).getCount() > 0);
    } finally {
      client.close();
      proxy.stop();
    }
  }

  /** A reload that drops the gRPC globals empties their ring: gRPC calls then go to the HTTP globals. */
  @Test
  void aReloadWithoutTheGrpcGlobalsSendsGrpcToTheHttpRing(Vertx vertx) throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    GrpcGlobal g = GrpcGlobal.start(vertx);
    int grpcPort = TestProxy.freePort();
    JsonObject base = new JsonObject()
        .put("forward_address", a.url())
        .put("grpc_address", "127.0.0.1:" + grpcPort);
    TestProxy proxy = TestProxy.start(vertx, base.copy().put("grpc_forward_address", g.member()));
    GrpcClient client = GrpcClient.client(vertx);
    try {
      MetricList list = MetricList.parseFrom(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
      ForwardGrpcClient local = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(grpcPort, "127.0.0.1"));
      assertEquals(Empty.getDefaultInstance(), local.sendMetrics(list).await());
      Await.until("gRPC at the gRPC global", () -> g.metrics.size() == list.getMetricsCount());
      assertEquals(0, a.metrics.size());

      // ignore_tags reloads live: the gRPC ring is rebuilt with the new key rule.
      proxy.app.reconfigure(dev.veneur.proxy.config.ProxyConfig.from(base.copy().put("http_address", "127.0.0.1:" + proxy.port)
          .put("grpc_forward_address", g.member())
          .put("ignore_tags", new JsonArray().add(new JsonObject().put("kind", "prefix").put("value", "service:"))))).await();
      Await.until("the gRPC ring keys without service: tags", () -> vertx.eventBus()
          .<dev.veneur.proxy.routing.RingSet>request(dev.veneur.proxy.bus.Addresses.RING_CURRENT, null).await().body()
          .forGrpc().keyIgnore().ignored("service:api"));

      proxy.app.reconfigure(dev.veneur.proxy.config.ProxyConfig.from(base.copy().put("http_address", "127.0.0.1:" + proxy.port)))
          .await();
      Await.until("the gRPC ring is gone", () -> !new JsonObject(proxy.get("/debug/state").body()).containsKey("grpc_ring"));
      assertEquals(Empty.getDefaultInstance(), local.sendMetrics(list).await());
      Await.until("gRPC now at the HTTP global", () -> a.metrics.size() == list.getMetricsCount());
      proxy.awaitSettled();
      assertEquals(list.getMetricsCount(), g.metrics.size(), "nothing more at the gRPC global");
      assertEquals(0, proxy.metrics().droppedTotal());
    } finally {
      client.close();
      proxy.stop();
    }
  }

  /** ring_for_grpc: http sends gRPC calls to the HTTP globals though gRPC globals are configured. */
  @Test
  void whichRingEachProtocolUsesIsConfiguration(Vertx vertx) throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    GrpcGlobal g = GrpcGlobal.start(vertx);
    int grpcPort = TestProxy.freePort();
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", a.url())
        .put("grpc_forward_address", g.member())
        .put("grpc_address", "127.0.0.1:" + grpcPort)
        .put("ring_for_grpc", "http")
        .put("ring_for_json", "grpc"));
    GrpcClient client = GrpcClient.client(vertx);
    try {
      MetricList list = MetricList.parseFrom(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
      ForwardGrpcClient local = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(grpcPort, "127.0.0.1"));
      assertEquals(Empty.getDefaultInstance(), local.sendMetrics(list).await());
      assertEquals(202, proxy.post(Bodies.deflate(Files.readAllBytes(V14.resolve("json-small.json"))), "deflate").statusCode());
      Await.until("gRPC at the HTTP global, JSON at the gRPC one",
          () -> a.metrics.size() == list.getMetricsCount() && g.metrics.size() == 45);
      proxy.awaitSettled();
      assertEquals(0, proxy.metrics().droppedTotal());
    } finally {
      client.close();
      proxy.stop();
    }
  }
}
