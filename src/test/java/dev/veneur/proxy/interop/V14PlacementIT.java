package dev.veneur.proxy.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.ConsulDouble;
import dev.veneur.proxy.support.ConsulDouble.Instance;
import dev.veneur.proxy.support.GrpcGlobal;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.support.VeneurProcess;
import forwardrpc.ForwardGrpcClient;
import forwardrpc.ForwardOuterClass.MetricList;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.junit5.VertxExtension;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import metricpb.MetricOuterClass.CounterValue;
import metricpb.MetricOuterClass.Metric;
import metricpb.MetricOuterClass.Scope;
import metricpb.MetricOuterClass.Type;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Placement against the real thing: the real Veneur v14.2.0 proxy and this one, each discovering
 * four gRPC globals from the same Consul service ({@code consul_forward_grpc_service_name}, members
 * {@code <Node.Address>:<Service.Port>}) and each with the same {@code ignore_tags}, are sent the
 * same SendMetrics; every series must reach the same global from both. Skipped, with the reason,
 * where the binary is absent.
 */
@ExtendWith(VertxExtension.class)
class V14PlacementIT {
  private static final Path GO_PROXY = VeneurProcess.ROOT.resolve("v14.2.0").resolve("veneur-proxy");
  private static final String SVC = "veneur-global-grpc";

  /** 480 counters: 60 names x 4 hosts x 2 pods, with service and env tags in between. */
  private static MetricList traffic(String tag) {
    MetricList.Builder b = MetricList.newBuilder();
    for (int n = 0; n < 60; n++) {
      for (int h = 0; h < 4; h++) {
        for (int p = 0; p < 2; p++) {
          b.addMetrics(Metric.newBuilder().setName(tag + ".m" + n).setType(Type.Counter).setScope(Scope.Global)
              .addTags("env:prod").addTags("host:i-" + h).addTags("pod-" + p).addTags("service:s" + (n % 7))
              .setCounter(CounterValue.newBuilder().setValue(1)));
        }
      }
    }
    return b.build();
  }

  private static String seriesOf(Metric m) {
    return m.getName() + "|" + String.join(",", m.getTagsList());
  }

  /** Where each series went: series to the global's index. */
  private static Map<String, Integer> placement(List<GrpcGlobal> globals) {
    Map<String, Integer> at = new HashMap<>();
    for (int i = 0; i < globals.size(); i++) {
      for (Metric m : globals.get(i).metrics) {
        if (m.getName().startsWith("placement.")) assertEquals(null, at.put(seriesOf(m), i), "once: " + seriesOf(m));
      }
    }
    return at;
  }

  /** Metrics of the traffic delivered (late probes, sent while the Go proxy's ring filled, not counted). */
  private static int delivered(List<GrpcGlobal> globals) {
    return (int) globals.stream().flatMap(g -> g.metrics.stream()).filter(m -> m.getName().startsWith("placement.")).count();
  }

  @Test
  void grpcSeriesLandWhereTheV14ProxyPutsThemWithIgnoreTags(Vertx vertx, @TempDir Path dir) throws Exception {
    Assumptions.assumeTrue(Files.isExecutable(GO_PROXY),
        "real Veneur v14.2.0 proxy not found at " + GO_PROXY.toAbsolutePath().normalize() + ": placement interop skipped");
    List<GrpcGlobal> globals = new ArrayList<>();
    for (int i = 0; i < 4; i++) globals.add(GrpcGlobal.start(vertx));
    ConsulDouble consul = ConsulDouble.start(vertx, SVC);
    List<Instance> instances = new ArrayList<>();
    for (int i = 0; i < globals.size(); i++) instances.add(Instance.passing("node-" + i, "127.0.0.1", globals.get(i).port()));
    consul.setInstances(instances);
    GrpcClient client = GrpcClient.client(vertx);
    MetricList list = traffic("placement");

    // 1. The Go v14.2.0 proxy.
    int goGrpc = TestProxy.freePort();
    Path yaml = dir.resolve("v14-proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + TestProxy.freePort() + "\"",
        "grpc_address: \"127.0.0.1:" + goGrpc + "\"",
        "consul_forward_grpc_service_name: \"" + SVC + "\"",
        "consul_refresh_interval: \"1s\"",
        "forward_timeout: \"10s\"",
        "ignore_tags:",
        "  - kind: prefix",
        "    value: \"host:\"",
        "  - kind: regex",
        "    value: \"^pod-[0-9]+$\"") + "\n");
    ProcessBuilder pb = new ProcessBuilder(GO_PROXY.toString(), "-f", yaml.toString()).redirectErrorStream(true)
        .redirectOutput(dir.resolve("v14-proxy.log").toFile());
    pb.environment().put("CONSUL_HTTP_ADDR", consul.address());
    Process go = pb.start();
    Map<String, Integer> goPlacement;
    try {
      ForwardGrpcClient toGo = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(goGrpc, "127.0.0.1"));
      // It answers before forwarding, and its ring fills from Consul after it listens: probe until
      // a probe series arrives somewhere, then send the traffic.
      MetricList probe = MetricList.newBuilder().addMetrics(traffic("probe").getMetrics(0)).build();
      Await.until("the Go proxy forwards", Duration.ofSeconds(60), Duration.ofMillis(200), () -> {
        if (!go.isAlive()) throw new AssertionError("the Go v14.2.0 proxy exited:\n" + log(dir));
        try {
          toGo.sendMetrics(probe).await(5, TimeUnit.SECONDS);
        } catch (Exception notYet) { // refused or timed out: not listening yet
          return false;
        }
        return globals.stream().anyMatch(g -> !g.metrics.isEmpty());
      });
      for (GrpcGlobal g : globals) g.metrics.clear();
      toGo.sendMetrics(list).await(10, TimeUnit.SECONDS);
      Await.until("every series through the Go proxy", Duration.ofSeconds(30), () -> {
        if (delivered(globals) > list.getMetricsCount()) throw new AssertionError("delivered twice:\n" + log(dir));
        return delivered(globals) == list.getMetricsCount();
      });
      goPlacement = placement(globals);
    } finally {
      go.destroy();
      go.waitFor(10, TimeUnit.SECONDS);
      go.destroyForcibly();
    }

    // 2. This proxy, with the same keys.
    for (GrpcGlobal g : globals) g.metrics.clear();
    int grpc = TestProxy.freePort();
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("grpc_address", "127.0.0.1:" + grpc)
        .put("consul_forward_grpc_service_name", SVC)
        .put("consul_address", consul.address())
        .put("ignore_tags", new JsonArray()
            .add(new JsonObject().put("kind", "prefix").put("value", "host:"))
            .add(new JsonObject().put("kind", "regex").put("value", "^pod-[0-9]+$"))));
    try {
      ForwardGrpcClient toUs = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(grpc, "127.0.0.1"));
      toUs.sendMetrics(list).await(10, TimeUnit.SECONDS);
      Await.until("every series through this proxy", Duration.ofSeconds(30), () -> delivered(globals) == list.getMetricsCount());
      proxy.awaitSettled();
      Map<String, Integer> ours = placement(globals);
      int moved = 0;
      for (Map.Entry<String, Integer> e : goPlacement.entrySet()) if (!e.getValue().equals(ours.get(e.getKey()))) moved++;
      assertEquals(0, moved, "series placed elsewhere than the v14.2.0 proxy places them, of " + goPlacement.size());
      assertEquals(goPlacement, ours);
      // ignore_tags did its job: a name's series (differing only in host and pod) share a global.
      Map<String, Integer> byName = new HashMap<>();
      for (Map.Entry<String, Integer> e : ours.entrySet()) {
        String name = e.getKey().substring(0, e.getKey().indexOf('|'));
        Integer prev = byName.put(name, e.getValue());
        assertTrue(prev == null || prev.equals(e.getValue()), "series of " + name + " split across globals");
      }
      assertTrue(new java.util.HashSet<>(ours.values()).size() > 1, "the traffic spread over several globals");
    } finally {
      proxy.stop();
      client.close();
      for (GrpcGlobal g : globals) g.stop();
    }
  }

  /**
   * The HTTP ring of a v14 file: JSON {@code /import} to globals from {@code consul_forward_service_name},
   * which v14.2.0 names {@code <Node.Address>:<Service.Port>} (v2: {@code http://...}).
   */
  @Test
  void jsonSeriesLandWhereTheV14ProxyPutsThemOnItsConsulHttpRing(Vertx vertx, @TempDir Path dir) throws Exception {
    Assumptions.assumeTrue(Files.isExecutable(GO_PROXY),
        "real Veneur v14.2.0 proxy not found at " + GO_PROXY.toAbsolutePath().normalize() + ": placement interop skipped");
    List<dev.veneur.proxy.support.TestGlobal> globals = new ArrayList<>();
    for (int i = 0; i < 4; i++) globals.add(dev.veneur.proxy.support.TestGlobal.start(vertx));
    ConsulDouble consul = ConsulDouble.start(vertx, "veneur-global");
    List<Instance> instances = new ArrayList<>();
    for (int i = 0; i < globals.size(); i++) instances.add(Instance.passing("node-" + i, "127.0.0.1", globals.get(i).port()));
    consul.setInstances(instances);
    JsonArray body = dev.veneur.proxy.support.Bodies.generate("placement", 400, 14);
    byte[] deflated = dev.veneur.proxy.support.Bodies.deflate(dev.veneur.proxy.support.Bodies.utf8(body.encode()));
    java.util.function.Supplier<Integer> delivered = () -> (int) globals.stream().flatMap(g -> g.metrics.stream())
        .filter(m -> m.getString("name").startsWith("placement.")).count();

    int goHttp = TestProxy.freePort();
    Path yaml = dir.resolve("v14-proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + goHttp + "\"",
        "consul_forward_service_name: \"veneur-global\"",
        "consul_refresh_interval: \"1s\"",
        "forward_timeout: \"10s\"",
        "idle_connection_timeout: \"90s\"") + "\n");
    ProcessBuilder pb = new ProcessBuilder(GO_PROXY.toString(), "-f", yaml.toString()).redirectErrorStream(true)
        .redirectOutput(dir.resolve("v14-proxy.log").toFile());
    pb.environment().put("CONSUL_HTTP_ADDR", consul.address());
    Process go = pb.start();
    java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
    Map<String, Integer> goPlacement = new HashMap<>();
    try {
      byte[] probe = dev.veneur.proxy.support.Bodies.deflate(dev.veneur.proxy.support.Bodies.utf8(
          dev.veneur.proxy.support.Bodies.generate("probe", 1, 1).encode()));
      Await.until("the Go proxy forwards", Duration.ofSeconds(60), Duration.ofMillis(200), () -> {
        if (!go.isAlive()) throw new AssertionError("the Go v14.2.0 proxy exited:\n" + log(dir));
        post(http, goHttp, probe);
        return globals.stream().anyMatch(g -> !g.metrics.isEmpty());
      });
      post(http, goHttp, deflated);
      Await.until("every series through the Go proxy", Duration.ofSeconds(30), () -> delivered.get() == body.size());
      for (int i = 0; i < globals.size(); i++) {
        for (JsonObject m : globals.get(i).metrics) {
          if (m.getString("name").startsWith("placement.")) goPlacement.put(m.getString("name") + "|" + m.getString("tagstring"), i);
        }
      }
    } finally {
      go.destroy();
      go.waitFor(10, TimeUnit.SECONDS);
      go.destroyForcibly();
    }
    for (dev.veneur.proxy.support.TestGlobal g : globals) g.metrics.clear();
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("consul_forward_service_name", "veneur-global")
        .put("consul_address", consul.address())
        .put("idle_connection_timeout", "90s"));
    try {
      assertEquals(202, proxy.post(deflated, "deflate").statusCode());
      Await.until("every series through this proxy", Duration.ofSeconds(30), () -> delivered.get() == body.size());
      proxy.awaitSettled();
      Map<String, Integer> ours = new HashMap<>();
      for (int i = 0; i < globals.size(); i++) {
        for (JsonObject m : globals.get(i).metrics) ours.put(m.getString("name") + "|" + m.getString("tagstring"), i);
      }
      assertEquals(goPlacement, ours, "placement on the v14.2.0 proxy's Consul HTTP ring");
      assertTrue(new java.util.HashSet<>(ours.values()).size() > 1, "the traffic spread over several globals");
    } finally {
      proxy.stop();
    }
  }

  /**
   * Both rings at once, as a v14 fleet runs them: JSON to the Consul service of HTTP globals, gRPC
   * (with ignore_tags) to the Consul service of gRPC globals; each protocol's series land where the
   * real v14.2.0 proxy puts them, and never on the other ring.
   */
  @Test
  void bothRingsPlaceAsTheV14ProxyDoes(Vertx vertx, @TempDir Path dir) throws Exception {
    Assumptions.assumeTrue(Files.isExecutable(GO_PROXY),
        "real Veneur v14.2.0 proxy not found at " + GO_PROXY.toAbsolutePath().normalize() + ": placement interop skipped");
    List<dev.veneur.proxy.support.TestGlobal> http = new ArrayList<>();
    List<GrpcGlobal> grpc = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      http.add(dev.veneur.proxy.support.TestGlobal.start(vertx));
      grpc.add(GrpcGlobal.start(vertx));
    }
    ConsulDouble consul = ConsulDouble.start(vertx, "veneur-global");
    List<Instance> hi = new ArrayList<>();
    List<Instance> gi = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      hi.add(Instance.passing("node-h" + i, "127.0.0.1", http.get(i).port()));
      gi.add(Instance.passing("node-g" + i, "127.0.0.1", grpc.get(i).port()));
    }
    consul.setInstances(hi);
    consul.setInstances(SVC, gi);
    JsonArray body = dev.veneur.proxy.support.Bodies.generate("placement", 300, 21);
    byte[] deflated = dev.veneur.proxy.support.Bodies.deflate(dev.veneur.proxy.support.Bodies.utf8(body.encode()));
    MetricList list = traffic("placement");
    java.util.function.Supplier<Integer> jsonAt = () -> (int) http.stream().flatMap(g -> g.metrics.stream())
        .filter(m -> m.getString("name").startsWith("placement.")).count();
    GrpcClient client = GrpcClient.client(vertx);
    java.net.http.HttpClient httpClient = java.net.http.HttpClient.newHttpClient();
    List<String> ignore = List.of("ignore_tags:", "  - kind: prefix", "    value: \"host:\"", "  - kind: regex",
        "    value: \"^pod-[0-9]+$\"");

    int goHttp = TestProxy.freePort();
    int goGrpc = TestProxy.freePort();
    Path yaml = dir.resolve("v14-proxy.yaml");
    List<String> y = new ArrayList<>(List.of("http_address: \"127.0.0.1:" + goHttp + "\"",
        "grpc_address: \"127.0.0.1:" + goGrpc + "\"", "consul_forward_service_name: \"veneur-global\"",
        "consul_forward_grpc_service_name: \"" + SVC + "\"", "consul_refresh_interval: \"1s\"",
        "forward_timeout: \"10s\""));
    y.addAll(ignore);
    Files.writeString(yaml, String.join("\n", y) + "\n");
    ProcessBuilder pb = new ProcessBuilder(GO_PROXY.toString(), "-f", yaml.toString()).redirectErrorStream(true)
        .redirectOutput(dir.resolve("v14-proxy.log").toFile());
    pb.environment().put("CONSUL_HTTP_ADDR", consul.address());
    Process go = pb.start();
    Map<String, String> goAt = new HashMap<>();
    try {
      ForwardGrpcClient toGo = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(goGrpc, "127.0.0.1"));
      MetricList probe = MetricList.newBuilder().addMetrics(traffic("probe").getMetrics(0)).build();
      byte[] jsonProbe = dev.veneur.proxy.support.Bodies.deflate(dev.veneur.proxy.support.Bodies.utf8(
          dev.veneur.proxy.support.Bodies.generate("probe", 1, 1).encode()));
      Await.until("the Go proxy forwards on both rings", Duration.ofSeconds(60), Duration.ofMillis(200), () -> {
        if (!go.isAlive()) throw new AssertionError("the Go v14.2.0 proxy exited:\n" + log(dir));
        try {
          toGo.sendMetrics(probe).await(5, TimeUnit.SECONDS);
        } catch (Exception notYet) {
          return false;
        }
        post(httpClient, goHttp, jsonProbe);
        return grpc.stream().anyMatch(g -> !g.metrics.isEmpty()) && http.stream().anyMatch(g -> !g.metrics.isEmpty());
      });
      toGo.sendMetrics(list).await(10, TimeUnit.SECONDS);
      post(httpClient, goHttp, deflated);
      Await.until("every series through the Go proxy", Duration.ofSeconds(30),
          () -> delivered(grpc) == list.getMetricsCount() && jsonAt.get() == body.size());
      goAt.putAll(where(http, grpc));
    } finally {
      go.destroy();
      go.waitFor(10, TimeUnit.SECONDS);
      go.destroyForcibly();
    }
    for (var g : http) g.metrics.clear();
    for (var g : grpc) g.metrics.clear();
    int grpcPort = TestProxy.freePort();
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("grpc_address", "127.0.0.1:" + grpcPort)
        .put("consul_forward_service_name", "veneur-global")
        .put("consul_forward_grpc_service_name", SVC)
        .put("consul_address", consul.address())
        .put("ignore_tags", new JsonArray()
            .add(new JsonObject().put("kind", "prefix").put("value", "host:"))
            .add(new JsonObject().put("kind", "regex").put("value", "^pod-[0-9]+$"))));
    try {
      ForwardGrpcClient toUs = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(grpcPort, "127.0.0.1"));
      toUs.sendMetrics(list).await(10, TimeUnit.SECONDS);
      assertEquals(202, proxy.post(deflated, "deflate").statusCode());
      Await.until("every series through this proxy", Duration.ofSeconds(30),
          () -> delivered(grpc) == list.getMetricsCount() && jsonAt.get() == body.size());
      proxy.awaitSettled();
      Map<String, String> ours = where(http, grpc);
      assertEquals(goAt.size(), ours.size());
      int moved = 0;
      for (Map.Entry<String, String> e : goAt.entrySet()) if (!e.getValue().equals(ours.get(e.getKey()))) moved++;
      assertEquals(0, moved, "series placed elsewhere than the v14.2.0 proxy places them, of " + goAt.size());
    } finally {
      proxy.stop();
      client.close();
    }
  }

  /** Series to "http-i" or "grpc-i": which ring and which global of it. */
  private static Map<String, String> where(List<dev.veneur.proxy.support.TestGlobal> http, List<GrpcGlobal> grpc) {
    Map<String, String> at = new HashMap<>();
    for (int i = 0; i < http.size(); i++) {
      for (JsonObject m : http.get(i).metrics) {
        if (m.getString("name").startsWith("placement.")) {
          assertEquals(null, at.put("json|" + m.getString("name") + "|" + m.getString("tagstring"), "http-" + i));
        }
      }
    }
    for (int i = 0; i < grpc.size(); i++) {
      for (Metric m : grpc.get(i).metrics) {
        if (m.getName().startsWith("placement.")) assertEquals(null, at.put("grpc|" + seriesOf(m), "grpc-" + i));
      }
    }
    return at;
  }

  private static void post(java.net.http.HttpClient http, int port, byte[] deflated) {
    try {
      http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/import"))
          .header("Content-Encoding", "deflate").header("Content-Type", "application/json")
          .timeout(Duration.ofSeconds(5))
          .POST(java.net.http.HttpRequest.BodyPublishers.ofByteArray(deflated)).build(),
          java.net.http.HttpResponse.BodyHandlers.discarding());
    } catch (IOException e) {
      // not listening yet
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static String log(Path dir) {
    try {
      return Files.readString(dir.resolve("v14-proxy.log"));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }
}
