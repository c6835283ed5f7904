package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kill -9} with a backlog the global has not confirmed: with {@code spill_dir}, the next
 * start sends it again, so every metric answered 202 reaches the global at least once.
 */
@ExtendWith(VertxExtension.class)
class CrashSpillIT {
  private static final int BODIES = 20;
  private static final int PER_BODY = 1000;

  @Test
  void killMinus9LosesNothingThatWasAnswered202(Vertx vertx, @TempDir Path dir) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    global.delayMs.set(3000); // slow: the proxy holds a backlog of unconfirmed batches
    int port = TestProxy.freePort();
    Path spill = dir.resolve("spill");
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "forward_address: \"" + global.url() + "\"",
        "spill_dir: \"" + spill + "\"",
        "batch_max_metrics: 1000",
        "batch_linger: \"10ms\"", ""));
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    Set<String> sent = new HashSet<>();
    ProxyProcess first = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    try {
      Await.until("first proxy up", Duration.ofSeconds(60), () -> get(http, port, "/healthcheck") != null);
      for (int i = 0; i < BODIES; i++) {
        JsonArray body = Bodies.generate("crash" + i, PER_BODY, i);
        for (Object o : body) sent.add(((JsonObject) o).getString("name"));
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/import"))
            .header("Content-Encoding", "deflate")
            .POST(HttpRequest.BodyPublishers.ofByteArray(Bodies.deflate(Bodies.utf8(body.encode())))).build(),
            HttpResponse.BodyHandlers.ofString());
        assertEquals(202, r.statusCode());
      }
      Await.until("some batches at the global, unconfirmed", () -> global.postsSeen.get() >= 2);
    } finally {
      first.kill();
      first.process.waitFor();
    }
    long confirmedBefore = 0; // the global answers after 3 s: nothing was confirmed before the kill
    assertTrue(spillFiles(spill) > 0, "the crash left spill files");
    global.delayMs.set(0);

    ProxyProcess second = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    try {
      Await.until("second proxy up", Duration.ofSeconds(60), () -> get(http, port, "/healthcheck") != null);
      Await.until("every metric answered 202 delivered", Duration.ofSeconds(60), () -> allSeen(sent, global));
      Map<String, Integer> deliveries = new HashMap<>();
      for (JsonObject m : global.metrics) deliveries.merge(m.getString("name"), 1, Integer::sum);
      long twice = deliveries.values().stream().filter(n -> n > 1).count();
      Await.until("the replay settled", () -> nothingQueued(port));
      JsonObject counters = DebugState.get(port).getJsonObject("counters");
      long received = counters.getLong("received");
      assertTrue(received > 0 && received <= (long) BODIES * PER_BODY - confirmedBefore,
          "the second run received only the replayed backlog: " + counters);
      assertEquals(received, counters.getLong("forwarded"), "all of it forwarded: " + counters);
      Await.until("settled spill files deleted", () -> spillFiles(spill) == 0);
      System.out.printf("kill -9 with spill_dir: %d metrics answered 202, %d replayed by the next start, "
          + "all delivered; %d delivered twice (in flight at the kill)%n", sent.size(), received, twice);
      assertEquals(0, second.terminate(), second.log());
    } finally {
      second.kill();
    }
  }

  /**
   * {@code kill -9} while a global is out of the ring for a full queue and keeps its backlog
   * (draining it where it is, see Ejection): that backlog lives in the proxy's memory and in
   * {@code spill_dir}, and the next start must deliver it, to the global itself (back in health)
   * or to another, with everything else answered 202.
   */
  @Test
  void killMinus9WhileAGlobalIsOutForAFullQueueLosesNothing(Vertx vertx, @TempDir Path dir) throws Exception {
    TestGlobal h1 = TestGlobal.start(vertx);
    TestGlobal h2 = TestGlobal.start(vertx);
    TestGlobal f = TestGlobal.start(vertx);
    f.delayMs.set(2500); // answers, but far slower than its share arrives: its queue fills
    int port = TestProxy.freePort();
    Path spill = dir.resolve("spill");
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "forward_addresses:",
        "  - \"" + h1.url() + "\"",
        "  - \"" + h2.url() + "\"",
        "  - \"" + f.url() + "\"",
        "spill_dir: \"" + spill + "\"",
        "batch_max_metrics: 1000",
        "batch_linger: \"10ms\"",
        // Only the saturation rule may take F out (not its slowness), with a cap it reaches quickly.
        "eject_slow_after: \"0s\"",
        "max_queued_bytes_per_destination: \"256KiB\"",
        "forward_timeout: \"10s\"", ""));
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    Set<String> sent = java.util.concurrent.ConcurrentHashMap.newKeySet();
    java.util.concurrent.atomic.AtomicInteger bodies = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
    long heldByF;
    ProxyProcess first = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    java.util.concurrent.ExecutorService senders = java.util.concurrent.Executors.newFixedThreadPool(4);
    try {
      Await.until("first proxy up", Duration.ofSeconds(60), () -> get(http, port, "/healthcheck") != null);
      for (int t = 0; t < 4; t++) {
        senders.submit(() -> {
          while (!stop.get()) {
            int b = bodies.getAndIncrement();
            if (b >= 150) return null;
            JsonArray body = Bodies.generate("sat" + b, PER_BODY, b);
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/import"))
                .header("Content-Encoding", "deflate")
                .POST(HttpRequest.BodyPublishers.ofByteArray(Bodies.deflate(Bodies.utf8(body.encode())))).build(),
                HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() == 202) {
              for (Object o : body) sent.add(((JsonObject) o).getString("name"));
            }
          }
          return null;
        });
      }
      long[] held = {0};
      Await.until("F out of the ring for its full queue, holding a backlog", Duration.ofSeconds(60), () -> {
        JsonObject s = DebugState.get(port);
        if (s == null || !s.getJsonArray("ejected", new JsonArray()).contains(f.url())) return false;
        held[0] = s.getJsonObject("destinations").getJsonObject(f.url()).getLong("queued_metrics");
        return held[0] > 0;
      });
      heldByF = held[0];
      assertTrue(first.logged("asking the ring to eject it"), "F went out for its queue:\n" + first.log());
    } finally {
      // kill -9 with the senders still posting: what was answered 202 is in sent.
      first.kill();
      first.process.waitFor();
      stop.set(true);
      senders.shutdown();
      senders.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS);
    }
    assertTrue(spillFiles(spill) > 0, "the crash left spill files");
    f.delayMs.set(0);

    ProxyProcess second = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    try {
      Await.until("second proxy up", Duration.ofSeconds(60), () -> get(http, port, "/healthcheck") != null);
      Await.until("every metric answered 202 delivered", Duration.ofSeconds(90), () -> allSeen(sent, h1, h2, f));
      Await.until("the replay settled", Duration.ofSeconds(60), () -> nothingQueued(port));
      JsonObject counters = DebugState.get(port).getJsonObject("counters");
      assertEquals(counters.getLong("received"), counters.getLong("forwarded"), "all of the replay forwarded: " + counters);
      assertTrue(counters.getLong("received") >= heldByF, "the replay holds at least what F held: " + counters);
      Await.until("settled spill files deleted", () -> spillFiles(spill) == 0);
      System.out.printf("kill -9 with F out for a full queue (holding %d metrics): %d metrics answered 202 in %d bodies, "
          + "%d replayed by the next start, all delivered%n", heldByF, sent.size(), sent.size() / PER_BODY,
          counters.getLong("received"));
      assertEquals(0, second.terminate(), second.log());
    } finally {
      second.kill();
    }
  }

  @Test
  void whatAStopCouldNotDeliverIsSentByTheNextStart(Vertx vertx, @TempDir Path dir) {
    TestGlobal hung = TestGlobal.start(vertx);
    hung.status.set(0); // accepts, never answers
    String spill = dir.resolve("spill").toString();
    TestProxy first = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", hung.url())
        .put("spill_dir", spill)
        .put("shutdown_timeout", "300ms")
        .put("forward_timeout", "500ms"));
    JsonArray body = Bodies.generate("kept", 500, 1);
    assertEquals(202, first.post(Bodies.utf8(body.encode()), null).statusCode());
    first.stop();
    assertEquals(500, first.metrics().dropped("shutdown"), "the stop could not deliver them");

    TestGlobal good = TestGlobal.start(vertx);
    TestProxy second = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", good.url())
        .put("spill_dir", spill));
    try {
      Await.until("the next start delivered them", () -> good.metrics.size() == 500);
      second.awaitSettled();
      assertEquals(500, second.metrics().registry().counter("metrics.replayed_total").getCount());
    } finally {
      second.stop();
    }
  }

  /**
   * gRPC metrics bound for a gRPC global are kept as protobuf chunks; the next start replays them
   * on the ring of gRPC globals, untouched, not on the ring of HTTP globals beside it.
   */
  @Test
  void grpcMetricsAStopCouldNotDeliverGoToTheGrpcRingNextStart(Vertx vertx, @TempDir Path dir) throws Exception {
    dev.veneur.proxy.support.GrpcGlobal hung = dev.veneur.proxy.support.GrpcGlobal.start(vertx);
    hung.status.set(null); // takes the call, never answers
    TestGlobal http = TestGlobal.start(vertx);
    String spill = dir.resolve("spill").toString();
    int grpcPort = TestProxy.freePort();
    TestProxy first = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", http.url())
        .put("grpc_forward_address", hung.member())
        .put("grpc_address", "127.0.0.1:" + grpcPort)
        .put("spill_dir", spill)
        .put("shutdown_timeout", "300ms")
        .put("forward_timeout", "500ms"));
    forwardrpc.ForwardOuterClass.MetricList.Builder list = forwardrpc.ForwardOuterClass.MetricList.newBuilder();
    for (int i = 0; i < 300; i++) {
      list.addMetrics(metricpb.MetricOuterClass.Metric.newBuilder().setName("kept.grpc." + i)
          .setType(metricpb.MetricOuterClass.Type.Histogram).setScope(metricpb.MetricOuterClass.Scope.Global)
          .setHistogram(metricpb.MetricOuterClass.HistogramValue.newBuilder().setTDigest(
              tdigest.Tdigest.MergingDigestData.newBuilder().setCompression(100).setMin(i).setMax(i)
                  .addMainCentroids(tdigest.Tdigest.Centroid.newBuilder().setMean(i).setWeight(1)))));
    }
    io.vertx.grpc.client.GrpcClient client = io.vertx.grpc.client.GrpcClient.client(vertx);
    try {
      forwardrpc.ForwardGrpcClient.create(client, io.vertx.core.net.SocketAddress.inetSocketAddress(grpcPort, "127.0.0.1"))
          .sendMetrics(list.build()).await();
    } finally {
      client.close();
    }
    first.stop();
    assertEquals(300, first.metrics().dropped("shutdown"), "the stop could not deliver them");
    hung.stop();

    dev.veneur.proxy.support.GrpcGlobal good = dev.veneur.proxy.support.GrpcGlobal.start(vertx);
    TestProxy second = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", http.url())
        .put("grpc_forward_address", good.member())
        .put("grpc_address", "127.0.0.1:" + TestProxy.freePort())
        .put("spill_dir", spill));
    try {
      Await.until("the next start delivered them to the gRPC global", () -> good.metrics.size() == 300);
      second.awaitSettled();
      assertEquals(300, second.metrics().registry().counter("metrics.replayed_total").getCount());
      assertEquals(0, http.metrics.size(), "none went to the HTTP ring");
      for (int i = 0; i < 300; i++) assertEquals(list.getMetrics(i), good.metrics.get(i), "as sent, scope and all");
    } finally {
      second.stop();
      good.stop();
    }
  }

  /** The {@code .spill} files in {@code dir} (-1 if it cannot be listed). */
  private static long spillFiles(Path dir) {
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(p -> p.toString().endsWith(".spill")).count();
    } catch (java.io.IOException e) {
      return -1;
    }
  }

  /** Whether every name in {@code sent} reached one of {@code globals} at least once. */
  private static boolean allSeen(Set<String> sent, TestGlobal... globals) {
    Set<String> seen = new HashSet<>();
    for (TestGlobal g : globals) for (JsonObject m : g.metrics) seen.add(m.getString("name"));
    return seen.containsAll(sent);
  }

  private static boolean nothingQueued(int port) {
    JsonObject s = DebugState.get(port);
    return s != null && s.getJsonObject("counters").getLong("queued") == 0;
  }

  private static HttpResponse<String> get(HttpClient http, int port, String path) {
    try {
      return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(),
          HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      return null;
    }
  }
}
