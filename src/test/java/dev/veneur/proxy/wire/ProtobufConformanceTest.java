package dev.veneur.proxy.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Empty;
import forwardrpc.ForwardGrpcClient;
import forwardrpc.ForwardOuterClass.MetricList;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.junit5.VertxExtension;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import metricpb.MetricOuterClass.CounterValue;
import metricpb.MetricOuterClass.GaugeValue;
import metricpb.MetricOuterClass.HistogramValue;
import metricpb.MetricOuterClass.Metric;
import metricpb.MetricOuterClass.Scope;
import metricpb.MetricOuterClass.SetValue;
import metricpb.MetricOuterClass.Type;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import tdigest.Tdigest.Centroid;
import tdigest.Tdigest.MergingDigestData;

/**
 * The wire package against protobuf's own Java runtime, generated from the v14 protos at build
 * time: what protobuf writes, MetricPb reads the same; what MetricPb and the bridge write,
 * protobuf parses the same; and the v14 service names carry raw bytes between a generated Vert.x
 * gRPC client and a raw Vert.x gRPC server over a real socket.
 */
@ExtendWith(VertxExtension.class)
class ProtobufConformanceTest {

  private static Metric random(Random r, int i) {
    Metric.Builder m = Metric.newBuilder().setName("m." + i + (r.nextBoolean() ? "é\u2028" : ""));
    for (int t = r.nextInt(4); t > 0; t--) m.addTags("k" + t + ":" + r.nextInt(100));
    Type type = Type.forNumber(r.nextInt(5));
    m.setType(type);
    m.setScope(r.nextBoolean() ? Scope.Global : Scope.Mixed);
    switch (type) {
      case Counter -> m.setCounter(CounterValue.newBuilder().setValue(r.nextLong()));
      case Gauge -> m.setGauge(GaugeValue.newBuilder().setValue(r.nextGaussian() * 1e6));
      case Set -> {
        byte[] hll = new byte[1 + r.nextInt(40)];
        r.nextBytes(hll);
        m.setSet(SetValue.newBuilder().setHyperLogLog(com.google.protobuf.ByteString.copyFrom(hll)));
      }
      default -> {
        MergingDigestData.Builder d = MergingDigestData.newBuilder().setCompression(100).setMin(-5).setMax(1e9)
            .setReciprocalSum(r.nextDouble());
        for (int c = 1 + r.nextInt(6); c > 0; c--) {
          Centroid.Builder cb = Centroid.newBuilder().setMean(r.nextGaussian()).setWeight(1 + r.nextInt(9));
          if (r.nextInt(3) == 0) cb.addSamples(r.nextDouble()).addSamples(r.nextDouble());
          d.addMainCentroids(cb);
        }
        m.setHistogram(HistogramValue.newBuilder().setTDigest(d));
      }
    }
    return m.build();
  }

  @Test
  void whatProtobufWritesMetricPbReadsAndWhatMetricPbWritesProtobufReads() throws Exception {
    Random r = new Random(3);
    MetricPb.Fields f = new MetricPb.Fields();
    for (int i = 0; i < 2000; i++) {
      Metric want = random(r, i);
      byte[] b = want.toByteArray();
      assertTrue(MetricPb.scan(b, 0, b.length, f), want + " " + f.problem + " " + f.detail);
      assertEquals(want.getName(), f.name(b));
      assertEquals(want.getTagsCount(), f.tags);
      for (int t = 0; t < f.tags; t++) assertEquals(want.getTags(t), f.tag(b, t));
      assertEquals(want.getTypeValue(), f.type);
      assertEquals(want.getScopeValue(), f.scope);
      byte[] value = java.util.Arrays.copyOfRange(b, f.valueOff, f.valueOff + f.valueLen);
      byte[] again = MetricPb.metric(f.name(b), want.getTagsList(), f.type, f.scope, f.valueField, value);
      assertEquals(want, Metric.parseFrom(again));
      if (f.valueField == MetricPb.F_HISTOGRAM) {
        GobDigest.Digest d = MetricPb.readHistogram(b, f.valueOff, f.valueLen);
        // Through the JSON form and back: the same digest, by protobuf's reading.
        byte[] viaJson = Bridge.toProto(f.name(b), MetricPb.typeName(f.type), want.getTagsList(),
            GobDigest.encode(d, true));
        Metric back = Metric.parseFrom(viaJson);
        assertEquals(want.getHistogram(), back.getHistogram());
      }
    }
  }

  @Test
  void theBridgesJsonToProtoParsesAsProtobufForEveryRealJsonMetric() throws Exception {
    var json = new io.vertx.core.json.JsonArray(Files.readString(Path.of("src/test/resources/fixtures/veneur-v14.2.0/json-small.json")));
    for (Object o : json) {
      var m = (io.vertx.core.json.JsonObject) o;
      List<String> tags = new ArrayList<>();
      for (Object t : m.getJsonArray("tags")) tags.add((String) t);
      Metric p = Metric.parseFrom(Bridge.toProto(m.getString("name"), m.getString("type"), tags,
          java.util.Base64.getDecoder().decode(m.getString("value"))));
      assertEquals(m.getString("name"), p.getName());
      assertEquals(tags, p.getTagsList());
      assertEquals(m.getString("type"), p.getType().name().toLowerCase(java.util.Locale.ROOT));
    }
  }

  @Test
  void aGeneratedV14ClientsSendMetricsReachesARawServerAsTheSameBytes(Vertx vertx) throws Exception {
    byte[] list = Files.readAllBytes(Path.of("src/test/resources/fixtures/veneur-v14.2.0/grpc-single-small.pb"));
    List<byte[]> received = new CopyOnWriteArrayList<>();
    List<String> methods = new CopyOnWriteArrayList<>();
    GrpcServer grpc = GrpcServer.server(vertx);
    // The proxy's way: no generated classes, the service and method by name, messages as bytes.
    grpc.callHandler(req -> {
      methods.add(req.fullMethodName());
      req.handler(msg -> received.add(msg.getBytes()));
      req.endHandler(v -> req.response().end(Buffer.buffer()));
    });
    HttpServer server = vertx.createHttpServer(new HttpServerOptions().setHost("127.0.0.1").setPort(0))
        .requestHandler(grpc).listen().await();
    GrpcClient client = GrpcClient.client(vertx);
    try {
      ForwardGrpcClient forward = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(server.actualPort(), "127.0.0.1"));
      MetricList ml = MetricList.parseFrom(list);
      Empty e = forward.sendMetrics(ml).await();
      assertEquals(Empty.getDefaultInstance(), e);
      assertEquals(List.of("forwardrpc.Forward/SendMetrics"), methods);
      assertArrayEquals(list, received.get(0), "the MetricList's bytes, as the local serialised them");
      // SendMetricsV2: a stream of Metric messages, one per gRPC message.
      received.clear();
      Promise<Void> sent = Promise.promise();
      forward.sendMetricsV2((io.vertx.core.Completable<io.vertx.core.streams.WriteStream<Metric>>) (stream, err) -> {
        for (Metric m : ml.getMetricsList()) stream.write(m);
        stream.end().onComplete(sent);
      }).await();
      assertEquals("forwardrpc.Forward/SendMetricsV2", methods.get(1));
      assertEquals(ml.getMetricsCount(), received.size());
      MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
      int i = 0;
      while (r.next()) {
        assertArrayEquals(java.util.Arrays.copyOfRange(list, r.metricOff, r.metricOff + r.metricLen), received.get(i++));
      }
    } finally {
      client.close();
      server.close();
    }
  }
}
