package dev.veneur.proxy.forward;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Empty;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.GrpcGlobal;
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
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import metricpb.MetricOuterClass.Metric;
import metricpb.MetricOuterClass.Scope;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Forwarding to v14 globals over gRPC ({@code grpc_forward_address}): real gRPC globals on real
 * sockets that parse what they get with protobuf's own classes, fed by a real v14.2.0 local's
 * flush, as JSON ({@code /import}) and as gRPC ({@code SendMetrics}).
 */
@ExtendWith(VertxExtension.class)
class GrpcEgressTest {
  private static final Path V14 = Path.of("src/test/resources/fixtures/veneur-v14.2.0");

  private TestProxy proxy;
  private GrpcClient client;

  @AfterEach
  void stop() {
    if (client != null) client.close();
    if (proxy != null) proxy.stop();
  }

  private static MetricList flush() throws Exception {
    return MetricList.parseFrom(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
  }

  private static Map<String, Metric> byName(List<Metric> ms) {
    Map<String, Metric> m = new HashMap<>();
    for (Metric x : ms) assertEquals(null, m.put(x.getName(), x), "delivered once: " + x.getName());
    return m;
  }

  /** v14's ring key: name, lowercase type, tags joined with commas. */
  private static String owner(HashRing ring, Metric m) {
    return ring.owner(HashRing.hashKey(m.getName() + m.getType().name().toLowerCase(Locale.ROOT)
        + String.join(",", m.getTagsList())));
  }

  /**
   * One gRPC global: a valid list goes on as the local's bytes (kept whole), a list with a metric
   * a global refuses goes metric by metric without it; either way the global gets every valid
   * metric exactly as sent, and the counts add up.
   */
  @Test
  void toTheOneGrpcGlobalListsArriveAsSent(Vertx vertx) throws Exception {
    GrpcGlobal g = GrpcGlobal.start(vertx);
    int grpcPort = TestProxy.freePort();
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("grpc_forward_address", g.member())
        .put("grpc_address", "127.0.0.1:" + grpcPort));
    client = GrpcClient.client(vertx);
    ForwardGrpcClient local = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(grpcPort, "127.0.0.1"));
    MetricList whole = flush();
    Metric localScope = Metric.newBuilder().setName("only.local").setType(metricpb.MetricOuterClass.Type.Gauge)
        .setScope(Scope.Local).setGauge(metricpb.MetricOuterClass.GaugeValue.newBuilder().setValue(1)).build();
    MetricList withBad = whole.toBuilder().addMetrics(7, localScope).build();
    java.util.List<Metric> want = new java.util.ArrayList<>();
    for (MetricList l : List.of(whole, withBad, whole)) {
      assertEquals(Empty.getDefaultInstance(), local.sendMetrics(l).await());
      for (Metric m : l.getMetricsList()) if (!m.getName().equals("only.local")) want.add(m);
    }
    Await.until("every valid metric delivered", () -> g.metrics.size() >= want.size());
    proxy.awaitSettled();
    // Batches may overlap on the way, so compared as a multiset: each metric as sent, as often.
    Map<Metric, Long> wantCounts = want.stream().collect(java.util.stream.Collectors.groupingBy(m -> m,
        java.util.stream.Collectors.counting()));
    Map<Metric, Long> gotCounts = g.metrics.stream().collect(java.util.stream.Collectors.groupingBy(m -> m,
        java.util.stream.Collectors.counting()));
    assertEquals(wantCounts, gotCounts, "every valid metric as sent, as often as sent");
    assertEquals(3 * 55 + 1, proxy.metrics().received());
    assertEquals(3 * 55, proxy.metrics().forwarded());
    assertEquals(1, proxy.metrics().dropped("local_scope"));
  }

  @Test
  void aV14FlushByJsonOrByGrpcReachesGrpcGlobalsAsTheLocalWouldHaveSentIt(Vertx vertx) throws Exception {
    GrpcGlobal g1 = GrpcGlobal.start(vertx);
    GrpcGlobal g2 = GrpcGlobal.start(vertx);
    int grpcPort = TestProxy.freePort();
    dev.veneur.proxy.support.StatsdSink stats = dev.veneur.proxy.support.StatsdSink.start(vertx);
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("grpc_forward_address", g1.member() + "," + g2.member())
        .put("grpc_address", "127.0.0.1:" + grpcPort)
        .put("stats_address", stats.address())
        .put("stats_interval", "100ms"));
    HashRing ring = HashRing.of(List.of(g1.member(), g2.member()));
    Map<String, Metric> sent = byName(flush().getMetricsList());

    // 1. The same flush as JSON (what proxy_protocol: json sends): 45 metrics, no global-scope
    // histogram (v14 does not forward those by JSON). Each arrives as the local's gRPC form.
    byte[] json = Files.readAllBytes(V14.resolve("json-small.json"));
    assertEquals(202, proxy.post(Bodies.deflate(json), "deflate").statusCode());
    Await.until("45 delivered", () -> g1.metrics.size() + g2.metrics.size() == 45);
    proxy.awaitSettled();
    for (GrpcGlobal g : List.of(g1, g2)) {
      for (Metric d : g.metrics) {
        assertEquals(sent.get(d.getName()), d, "JSON in, gRPC out: " + d.getName());
        assertEquals(owner(ring, d), g.member(), "placed as v14 places it: " + d.getName());
      }
    }
    g1.metrics.clear();
    g2.metrics.clear();

    // 2. The flush by SendMetrics: all 55, each spliced into its global's MetricList as the local
    // wrote it, so the 10 global-scope histograms and timers keep their scope (JSON cannot say it).
    client = GrpcClient.client(vertx);
    ForwardGrpcClient local = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(grpcPort, "127.0.0.1"));
    assertEquals(Empty.getDefaultInstance(), local.sendMetrics(flush()).await());
    Await.until("55 delivered", () -> g1.metrics.size() + g2.metrics.size() == 55);
    proxy.awaitSettled();
    int global = 0;
    for (GrpcGlobal g : List.of(g1, g2)) {
      for (Metric d : g.metrics) {
        Metric s = sent.get(d.getName());
        if (s.getScope() == Scope.Global && s.getValueCase() == Metric.ValueCase.HISTOGRAM) global++;
        assertEquals(s, d, "gRPC in, gRPC out: " + d.getName());
        assertEquals(owner(ring, d), g.member(), "placed as v14 places it: " + d.getName());
      }
    }
    assertEquals(10, global, "global-scope histograms and timers arrive global");
    assertEquals(0, proxy.metrics().registry().counter("grpc.scope_lost_total").getCount(), "nothing spliced loses its scope");
    assertTrue(g1.metrics.size() > 0 && g2.metrics.size() > 0, "both globals get a share");
    assertEquals(45 + 55, proxy.metrics().forwarded());
    assertEquals(0, proxy.metrics().droppedTotal());
    // The series v14 operators chart, over StatsD (a real UDP socket), beside the v2 ones.
    String p = "veneur_proxy.";
    Await.until("v14 self-metrics", () -> stats.counterSum(p + "proxy.metrics_total", "protocol:http") == 45
        && stats.counterSum(p + "proxy.metrics_total", "protocol:grpc") == 55
        && stats.counterSum(p + "proxy.proxied_metrics_total", "protocol:grpc") == 100
        && !stats.lines(p + "metrics_by_destination", "destination:" + g1.member() + ",protocol:grpc", "g").isEmpty());
    assertEquals(0, stats.counterSum(p + "proxy.proxied_metrics_total", "protocol:http"));
    stats.close();
  }

  @Test
  void whatAGrpcGlobalRefusesIsIsolatedAndWhatHasNoProtobufFormIsCounted(Vertx vertx) {
    GrpcGlobal g = GrpcGlobal.start(vertx);
    g.refuseIfNameContains.set("poison");
    proxy = TestProxy.start(vertx, new JsonObject().put("grpc_forward_address", g.member()));
    // Counters and gauges of 8 bytes translate; Bodies' histograms and timers carry random bytes,
    // not t-digests, and have no protobuf form.
    JsonArray body = new JsonArray();
    for (Object o : Bodies.generate("ok", 40, 7)) {
      JsonObject m = (JsonObject) o;
      String type = m.getString("type");
      if (type.equals("counter") || type.equals("gauge")) body.add(m);
    }
    int good = body.size();
    body.add(((JsonObject) body.getValue(0)).copy().put("name", "poison.1"));
    JsonArray digests = new JsonArray();
    for (Object o : Bodies.generate("digest", 10, 8)) {
      JsonObject m = (JsonObject) o;
      if (m.getString("type").equals("histogram") || m.getString("type").equals("timer")) digests.add(m);
    }
    for (Object o : digests) body.add(o);
    assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(body.encode())), "deflate").statusCode());
    Await.until(good + " delivered", () -> g.metrics.size() == good);
    proxy.awaitSettled();
    assertTrue(g.metrics.stream().noneMatch(m -> m.getName().contains("poison")));
    assertTrue(g.refusedCalls.get() > 0, "the global refused the batch holding the poison");
    assertEquals(good, proxy.metrics().forwarded());
    assertEquals(1, proxy.metrics().dropped("rejected"));
    assertEquals(digests.size(), proxy.metrics().dropped("untranslated_bad_value"));
    assertEquals(good + 1 + digests.size(), proxy.metrics().received());
    var reg = proxy.metrics().registry();
    assertEquals(good, reg.counter("proxy.proxied_metrics_total#protocol:grpc").getCount());
    assertEquals(1, reg.counter("proxy.proxied_metrics_failed#cause:rejected,protocol:grpc").getCount());
    assertEquals(digests.size(), reg.counter("proxy.proxied_metrics_failed#cause:untranslated_bad_value,protocol:grpc").getCount());
  }

  @Test
  void anUnavailableGlobalIsRetriedAndAHangingOneIsLeftForTheOther(Vertx vertx) {
    GrpcGlobal flaky = GrpcGlobal.start(vertx);
    GrpcGlobal hanging = GrpcGlobal.start(vertx);
    flaky.status.set(GrpcStatus.UNAVAILABLE);
    hanging.status.set(null);
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("grpc_forward_address", flaky.member() + "," + hanging.member())
        .put("forward_timeout", "1s")
        .put("eject_slow_after", "300ms")
        .put("eject_after_failures", 2)
        .put("forward_retry_budget", "30s"));
    JsonArray body = new JsonArray();
    for (Object o : Bodies.generate("retry", 200, 9)) {
      JsonObject m = (JsonObject) o;
      if (m.getString("type").equals("counter") || m.getString("type").equals("gauge")) body.add(m);
    }
    int n = body.size();
    assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(body.encode())), "deflate").statusCode());
    Await.until("the flaky global was tried", () -> flaky.refusedCalls.get() > 0);
    flaky.status.set(GrpcStatus.OK);
    // The hanging global is ejected (no answer within eject_slow_after, then its deadline); its
    // share goes to the other, which answers now. Every metric arrives, once.
    Await.until("every metric delivered", java.time.Duration.ofSeconds(60),
        () -> flaky.metrics.size() == n);
    proxy.awaitSettled();
    assertEquals(n, byName(flaky.metrics).size());
    assertEquals(n, proxy.metrics().forwarded());
    assertEquals(0, proxy.metrics().droppedTotal());
    assertTrue(proxy.metrics().registry().counter("forward.ejections#destination:" + hanging.member()).getCount() > 0,
        "the hanging global was ejected");
    assertTrue(proxy.metrics().registry().counter("proxy.forward_errors#protocol:grpc").getCount() > 0);
  }
}
