package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.GrpcGlobal;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.TestProxy;
import forwardrpc.ForwardOuterClass.MetricList;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import metricpb.MetricOuterClass.Metric;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The one-gRPC-global path (a list kept whole as it came, issue 19) against a real {@code -Xmx256m}
 * proxy process, under four concurrent senders of lists built to miss it in every way: a metric
 * a global refuses last, a length written long, a field that is not a metric, two lists in one
 * unary call, a list of 5,000 tiny metrics, a list cut short. Every call gets its status; the
 * global gets every valid metric of every call answered OK exactly as sent and as often; what was
 * left out is counted by cause; received = forwarded + dropped once idle.
 */
@ExtendWith(VertxExtension.class)
class GrpcPassThroughIT {
  private static final int SENDERS = Integer.getInteger("it.senders", 4);
  private static final int ROUNDS = 60;

  @TempDir Path dir;

  private static Buffer framed(byte[]... messages) {
    Buffer b = Buffer.buffer();
    for (byte[] m : messages) b.appendByte((byte) 0).appendInt(m.length).appendBytes(m);
    return b;
  }

  private static byte[] entry(byte[] metric) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    dev.veneur.proxy.wire.MetricPb.listEntry(out, metric, 0, metric.length);
    return out.toByteArray();
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) out.writeBytes(p);
    return out.toByteArray();
  }

  @Test
  void hostileListsToTheOneGrpcGlobalKeepTheBooks(Vertx vertx) throws Exception {
    GrpcGlobal g = GrpcGlobal.start(vertx);
    int port = TestProxy.freePort();
    int grpc = TestProxy.freePort();
    int admin = TestProxy.freePort();
    Path file = dir.resolve("proxy.yaml");
    Files.writeString(file, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "grpc_address: \"127.0.0.1:" + grpc + "\"",
        "admin_address: \"127.0.0.1:" + admin + "\"",
        "grpc_forward_address: \"" + g.member() + "\"") + "\n");
    MetricList real = MetricList.parseFrom(
        Files.readAllBytes(Path.of("src/test/resources/fixtures/veneur-v14.2.0/grpc-single-small.pb")));
    Metric refused = Metric.newBuilder().setName("refused.local").setType(metricpb.MetricOuterClass.Type.Gauge)
        .setScope(metricpb.MetricOuterClass.Scope.Local)
        .setGauge(metricpb.MetricOuterClass.GaugeValue.newBuilder().setValue(1)).build();

    Map<Metric, Long> want = new ConcurrentHashMap<>();
    AtomicLong wantRefused = new AtomicLong();
    Map<String, AtomicLong> statuses = new ConcurrentHashMap<>();
    ProxyProcess p = ProxyProcess.start(file, Map.of(), "-Xmx256m");
    HttpClient h2 = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
        .setHttp2ClearTextUpgrade(false));
    try {
      p.awaitServing(port, admin);
      List<Thread> senders = new ArrayList<>();
      List<Throwable> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
      for (int s = 0; s < SENDERS; s++) {
        int sender = s;
        Thread t = new Thread(() -> {
          try {
            for (int r = 0; r < ROUNDS; r++) {
              String prefix = "s" + sender + ".r" + r + ".";
              MetricList.Builder lb = MetricList.newBuilder();
              for (Metric m : real.getMetricsList()) lb.addMetrics(m.toBuilder().setName(prefix + m.getName()));
              MetricList list = lb.build();
              byte[] bytes = list.toByteArray();
              List<Metric> valid = new ArrayList<>(list.getMetricsList());
              byte[][] messages;
              boolean malformed = false;
              int refusedHere = 0;
              switch (r % 7) {
                case 0 -> messages = new byte[][] {bytes};
                case 1 -> {
                  messages = new byte[][] {concat(bytes, entry(refused.toByteArray()))};
                  refusedHere = 1;
                }
                case 2 -> {
                  // The first metric's length as a three-byte varint: legal, never the shortest form here.
                  byte[] first = list.getMetrics(0).toByteArray();
                  byte[] rest = java.util.Arrays.copyOfRange(bytes, entry(first).length, bytes.length);
                  assertTrue(first.length < 128 * 128);
                  byte[] longLen = concat(new byte[] {0x0a, (byte) (0x80 | (first.length & 0x7f)),
                      (byte) (0x80 | (first.length >>> 7)), 0}, first, rest);
                  messages = new byte[][] {longLen};
                }
                case 3 -> messages = new byte[][] {concat(bytes, new byte[] {0x12, 3, 'x', 'y', 'z'})};
                case 4 -> {
                  MetricList.Builder second = MetricList.newBuilder();
                  for (Metric m : real.getMetricsList()) second.addMetrics(m.toBuilder().setName(prefix + "second." + m.getName()));
                  valid.addAll(second.getMetricsList());
                  messages = new byte[][] {bytes, second.build().toByteArray()};
                }
                case 5 -> {
                  MetricList.Builder tiny = MetricList.newBuilder();
                  for (int i = 0; i < 5_000; i++) {
                    tiny.addMetrics(Metric.newBuilder().setName(prefix + "t" + i)
                        .setCounter(metricpb.MetricOuterClass.CounterValue.newBuilder().setValue(i)));
                  }
                  valid = new ArrayList<>(tiny.getMetricsList());
                  messages = new byte[][] {tiny.build().toByteArray()};
                }
                default -> {
                  messages = new byte[][] {java.util.Arrays.copyOf(bytes, bytes.length - 7)};
                  malformed = true;
                }
              }
              Buffer body = framed(messages);
              // The body is read in the same chain as the answer: read later, from this thread, an
              // answer already ended would never complete.
              String status = h2.request(new RequestOptions().setMethod(HttpMethod.POST)
                      .setHost("127.0.0.1").setPort(grpc).setURI("/forwardrpc.Forward/SendMetrics")
                      .putHeader("content-type", "application/grpc").putHeader("te", "trailers"))
                  .compose(req -> req.send(body).compose(resp -> resp.body().map(v -> {
                    String st = resp.getTrailer("grpc-status");
                    return st != null ? st : resp.getHeader("grpc-status");
                  }))).timeout(30, java.util.concurrent.TimeUnit.SECONDS).await();
              statuses.computeIfAbsent((r % 7) + ":" + status, k -> new AtomicLong()).incrementAndGet();
              if (malformed) {
                assertEquals("3", status, "a list cut short is refused INVALID_ARGUMENT");
              } else {
                assertEquals("0", status, "round " + r + " (kind " + (r % 7) + ") answered OK");
                for (Metric m : valid) want.merge(m, 1L, Long::sum);
                wantRefused.addAndGet(refusedHere);
              }
            }
          } catch (Throwable e) {
            failures.add(new AssertionError("sender " + sender + ": " + e, e));
          }
        }, "pass-through-sender-" + s);
        t.start();
        senders.add(t);
      }
      long deadline = System.nanoTime() + Duration.ofSeconds(180).toNanos();
      for (Thread t : senders) t.join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
      assertTrue(senders.stream().noneMatch(Thread::isAlive), "senders still running after 180 s: " + statuses);
      assertEquals(List.of(), failures, "senders: " + statuses + "\n" + p.log());
      long wanted = want.values().stream().mapToLong(Long::longValue).sum();
      Await.until("every valid metric at the global", Duration.ofSeconds(60), () -> g.metrics.size() >= wanted);
      assertTrue(DebugState.awaitIdle(p, port, Duration.ofSeconds(30)), "the proxy settled");
      JsonObject state = DebugState.get(port);
      assertNull(DebugState.accountingProblem(state, true));
      Map<Metric, Long> got = new java.util.HashMap<>();
      for (Metric m : g.metrics) got.merge(m, 1L, Long::sum);
      assertEquals(want.size(), got.size(), "distinct metrics");
      assertEquals(want, got, "every valid metric as sent, as often as sent");
      JsonObject c = state.getJsonObject("counters");
      assertEquals(wanted, c.getLong("forwarded"));
      assertEquals(wantRefused.get(), c.getLong("dropped_total"), c.encode());
      assertEquals(wantRefused.get(), c.getJsonObject("dropped").getLong("local_scope", 0L), c.encode());
      assertTrue(!p.logged("OutOfMemoryError") && !p.logged("uncaught exception"), p.log());
      long rssMib = p.rssKib() / 1024;
      System.out.printf("one gRPC global, %d senders x %d hostile rounds: %s; %d metrics forwarded, %d left out "
          + "(local_scope), as sent; RSS %d MiB%n", SENDERS, ROUNDS, new java.util.TreeMap<>(statuses), wanted,
          wantRefused.get(), rssMib);
      assertEquals(0, p.terminate(), p.log());
    } finally {
      h2.close();
      p.kill();
      g.stop();
    }
  }
}
