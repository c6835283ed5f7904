package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Empty;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import forwardrpc.ForwardGrpcClient;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
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
import java.util.Map;
import metricpb.MetricOuterClass.Metric;
import forwardrpc.ForwardOuterClass.MetricList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A v14 local's gRPC forwarding ({@code SendMetrics}, {@code SendMetricsV2}) through the proxy's
 * gRPC listener to JSON globals, over real sockets, with a generated gRPC client as the local and
 * the real v14.2.0 local's flush as the input.
 */
@ExtendWith(VertxExtension.class)
class GrpcIngestTest {
  private static final Path V14 = Path.of("src/test/resources/fixtures/veneur-v14.2.0");

  private TestGlobal a;
  private TestGlobal b;
  private TestProxy proxy;
  private int grpcPort;
  private GrpcClient client;
  private ForwardGrpcClient forward;

  @BeforeEach
  void start(Vertx vertx) {
    a = TestGlobal.start(vertx);
    b = TestGlobal.start(vertx);
    grpcPort = TestProxy.freePort();
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_addresses", new JsonArray().add(a.url()).add(b.url()))
        .put("grpc_address", "127.0.0.1:" + grpcPort)
        .put("grpc_max_message_bytes", "64KiB"));
    client = GrpcClient.client(vertx);
    forward = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(grpcPort, "127.0.0.1"));
  }

  @AfterEach
  void stop() {
    client.close();
    proxy.stop();
  }

  /** The JSON objects the local sent for the same flush, by name. */
  private static Map<String, JsonObject> jsonForm() throws Exception {
    Map<String, JsonObject> json = new HashMap<>();
    for (Object o : new JsonArray(Files.readString(V14.resolve("json-small.json")))) {
      json.put(((JsonObject) o).getString("name"), (JsonObject) o);
    }
    return json;
  }

  private Map<String, JsonObject> delivered() {
    Map<String, JsonObject> got = new HashMap<>();
    for (TestGlobal g : List.of(a, b)) for (JsonObject m : g.metrics) assertEquals(null, got.put(m.getString("name"), m));
    return got;
  }

  /**
   * Every metric arrives once, at the global the ring gives its JSON key, as exactly what the
   * local sends by JSON; the global-scope histograms and timers (JSON cannot say their scope)
   * arrive as mixed ones and are counted.
   */
  private void assertDeliveredAsTheLocalsJson(MetricList sent) throws Exception {
    Await.until("every metric delivered", () -> a.metrics.size() + b.metrics.size() >= sent.getMetricsCount());
    proxy.awaitSettled();
    Map<String, JsonObject> want = jsonForm();
    Map<String, JsonObject> got = delivered();
    assertEquals(sent.getMetricsCount(), got.size());
    int compared = 0;
    int scopeLost = 0;
    for (Metric m : sent.getMetricsList()) {
      JsonObject g = got.get(m.getName());
      JsonObject w = want.get(m.getName());
      if (w == null) {
        assertEquals(Metric.ValueCase.HISTOGRAM, m.getValueCase(), m.getName());
        assertEquals(m.getType().name().toLowerCase(java.util.Locale.ROOT), g.getString("type"));
        scopeLost++;
      } else {
        assertEquals(w, g, m.getName());
        compared++;
      }
      String owner = proxy.route(g.getString("name"), g.getString("type"), g.getString("tagstring"));
      TestGlobal at = a.metrics.contains(g) ? a : b;
      assertEquals(owner, at.url(), "placed by its JSON key: " + m.getName());
    }
    assertEquals(45, compared);
    assertEquals(10, scopeLost);
    assertEquals(10, proxy.metrics().registry().counter("grpc.scope_lost_total").getCount());
    assertEquals(sent.getMetricsCount(), proxy.metrics().received());
    assertEquals(0, proxy.metrics().droppedTotal());
  }

  @Test
  void sendMetricsCarriesAV14LocalsFlushToJsonGlobals() throws Exception {
    MetricList list = MetricList.parseFrom(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
    assertEquals(Empty.getDefaultInstance(), forward.sendMetrics(list).await());
    assertDeliveredAsTheLocalsJson(list);
  }

  @Test
  void sendMetricsV2StreamCarriesTheSameFlush() throws Exception {
    MetricList list = MetricList.parseFrom(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
    Empty e = forward.sendMetricsV2((io.vertx.core.Completable<io.vertx.core.streams.WriteStream<Metric>>) (stream, err) -> {
      for (Metric m : list.getMetricsList()) stream.write(m);
      stream.end();
    }).await();
    assertEquals(Empty.getDefaultInstance(), e);
    assertDeliveredAsTheLocalsJson(list);
  }

  @Test
  void aMetricAV14GlobalWouldRefuseIsDroppedAloneAndCounted() throws Exception {
    MetricList fixture = MetricList.parseFrom(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
    Metric good = fixture.getMetrics(0);
    // A counter carrying a gauge's value: a v14 global panics on it.
    Metric mismatch = good.toBuilder().setName("bad.mismatch").setGauge(metricpb.MetricOuterClass.GaugeValue.newBuilder().setValue(1)).build();
    Metric local = good.toBuilder().setName("bad.local").setScope(metricpb.MetricOuterClass.Scope.Local).build();
    MetricList list = MetricList.newBuilder().addMetrics(good).addMetrics(mismatch).addMetrics(local).build();
    assertEquals(Empty.getDefaultInstance(), forward.sendMetrics(list).await());
    Await.until("the good one delivered", () -> a.metrics.size() + b.metrics.size() == 1);
    proxy.awaitSettled();
    assertEquals(good.getName(), delivered().keySet().iterator().next());
    assertEquals(3, proxy.metrics().received());
    assertEquals(1, proxy.metrics().dropped("type_mismatch"));
    assertEquals(1, proxy.metrics().dropped("local_scope"));
  }

  /**
   * A raw gRPC call over HTTP/2 (prior knowledge, as a Go client dials): the method and one
   * message's bytes; returns {@code grpc-status: grpc-message} as the proxy answered them.
   */
  private String call(Vertx vertx, String method, byte[] message) throws Exception {
    io.vertx.core.http.HttpClient http = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
        .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
    try {
      Buffer framed = Buffer.buffer().appendByte((byte) 0).appendInt(message.length).appendBytes(message);
      var resp = http.request(io.vertx.core.http.HttpMethod.POST, grpcPort, "127.0.0.1", "/forwardrpc.Forward/" + method)
          .compose(req -> req.putHeader("content-type", "application/grpc").putHeader("te", "trailers").send(framed))
          // The body (and the trailers after it) read on the event loop as they come.
          .compose(r -> r.body().map(b -> r))
          .await(20, java.util.concurrent.TimeUnit.SECONDS);
      String status = resp.getHeader("grpc-status") != null ? resp.getHeader("grpc-status") : resp.getTrailer("grpc-status");
      String msg = resp.getHeader("grpc-message") != null ? resp.getHeader("grpc-message") : resp.getTrailer("grpc-message");
      return GrpcStatus.valueOf(Integer.parseInt(status)) + ": " + java.net.URLDecoder.decode(String.valueOf(msg),
          java.nio.charset.StandardCharsets.UTF_8);
    } finally {
      http.close();
    }
  }

  @Test
  void refusalsAreGrpcStatusesWithAReasonAndTheProxyKeepsServing(Vertx vertx) throws Exception {
    long before = proxy.metrics().registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_ERRORS,
        "cause:unknown_method", "protocol:grpc")).getCount();
    String unknown = call(vertx, "SendTraces", new byte[0]);
    assertTrue(unknown.startsWith(GrpcStatus.UNIMPLEMENTED + ": "), unknown);
    assertEquals(before + 1, proxy.metrics().registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_ERRORS,
        "cause:unknown_method", "protocol:grpc")).getCount());
    // Over grpc_max_message_bytes (64 KiB here).
    String big = call(vertx, "SendMetrics", new byte[200_000]);
    assertTrue(big.startsWith(GrpcStatus.RESOURCE_EXHAUSTED + ": a message exceeds grpc_max_message_bytes"), big);
    assertEquals(1, proxy.metrics().registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_ERRORS,
        "cause:too_large", "protocol:grpc")).getCount());
    // Not protobuf: field 1 declared 100 bytes long with 3 there.
    String bad = call(vertx, "SendMetrics", new byte[] {0x0a, 100, 1, 2, 3});
    assertTrue(bad.startsWith(GrpcStatus.INVALID_ARGUMENT + ": the MetricList does not parse"), bad);
    assertEquals(1, proxy.metrics().registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_ERRORS,
        "cause:malformed", "protocol:grpc")).getCount());
    // Nothing of the refused calls is left in the memory budget.
    Await.until("the budget empty again", () -> proxy.app.context().budget().used() == 0);
    // An empty MetricList is a message: answered OK, as a v14 global answers it.
    assertEquals(GrpcStatus.OK + ": null", call(vertx, "SendMetrics", new byte[0]));
    // And still serving.
    MetricList list = MetricList.parseFrom(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
    assertEquals(Empty.getDefaultInstance(), forward.sendMetrics(list).await());
    Await.until("delivered after the refusals", () -> a.metrics.size() + b.metrics.size() == list.getMetricsCount());
    proxy.awaitSettled();
    assertEquals(0, proxy.metrics().droppedTotal());
  }

  /** A local with a large flush: one MetricList near the default 4 MiB cap goes through whole. */
  @Test
  void aLargeFlushNearTheMessageCapGoesThrough() throws Exception {
    // Its own Vert.x: two proxies in one would share event-bus addresses, and one's chunks could
    // reach the other's forwarders (which then count them as theirs).
    Vertx own = Vertx.vertx();
    TestProxy big = TestProxy.start(own, new JsonObject()
        .put("forward_addresses", new JsonArray().add(a.url()).add(b.url()))
        .put("grpc_address", "127.0.0.1:" + TestProxy.freePort()));
    try {
      MetricList fixture = MetricList.parseFrom(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
      MetricList.Builder lb = MetricList.newBuilder();
      int n = 0;
      while (lb.build().getSerializedSize() < 3_500_000) {
        for (Metric m : fixture.getMetricsList()) lb.addMetrics(m.toBuilder().setName(m.getName() + ".x" + n++));
      }
      MetricList list = lb.build();
      int port = big.app.context().config().grpcPort;
      ForwardGrpcClient c = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(port, "127.0.0.1"));
      assertEquals(Empty.getDefaultInstance(), c.sendMetrics(list).await(30, java.util.concurrent.TimeUnit.SECONDS));
      Await.until("every metric delivered", () -> a.metrics.size() + b.metrics.size() >= list.getMetricsCount());
      big.awaitSettled();
      assertEquals(list.getMetricsCount(), big.metrics().received());
      assertEquals(list.getMetricsCount(), big.metrics().forwarded());
      assertEquals(list.getMetricsCount(), delivered().size(), "each metric once");
      assertEquals(0, big.app.context().budget().used(), "the budget is whole again");
    } finally {
      big.stop();
      own.close().await();
    }
  }

  /**
   * CallIntake keeps a message's bytes as the queued chunk (one gRPC global): Vert.x's
   * Buffer.getBytes must give a new array, for a slice of a larger buffer too (how vertx-grpc's
   * deframer hands a message on), never the buffer's own.
   */
  @Test
  void aMessagesBytesAreACopyNotVertxsBuffer() {
    Buffer frames = Buffer.buffer(new byte[] {0, 0, 0, 0, 3, 10, 1, 65, 9, 9});
    Buffer message = frames.slice(5, 8);
    byte[] b = message.getBytes();
    assertTrue(b != message.getBytes(), "a new array each time");
    b[2] = 66;
    assertEquals(65, message.getByte(2));
    assertEquals(65, frames.getByte(7));
    frames.setByte(7, (byte) 67);
    assertEquals(66, b[2], "a later write to the buffer does not reach the copy");
  }
}
