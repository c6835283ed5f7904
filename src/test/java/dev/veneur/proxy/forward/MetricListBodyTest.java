package dev.veneur.proxy.forward;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.veneur.proxy.bus.MetricChunk;
import forwardrpc.ForwardOuterClass.MetricList;
import java.util.List;
import java.util.Map;
import metricpb.MetricOuterClass.Metric;
import metricpb.MetricOuterClass.Scope;
import metricpb.MetricOuterClass.Type;
import org.junit.jupiter.api.Test;

/** Compressed JSON chunks into one MetricList, read back with protobuf's own parser. */
class MetricListBodyTest {
  private static MetricChunk chunk(String commaJoined, int count) {
    return BatchBodyTest.chunk(commaJoined, count, 1);
  }

  @Test
  void chunksBecomeOneListAndWhatHasNoProtobufFormIsLeftOutAlone() throws Exception {
    // counter 5 (8 bytes LE), gauge 1.5, a set's bytes; then a histogram whose value is no t-digest,
    // a counter of 4 bytes, and one without a value.
    String first = "{\"name\":\"c\",\"type\":\"counter\",\"tagstring\":\"a:b,c:d\",\"tags\":[\"a:b\",\"c:d\"],\"value\":\"BQAAAAAAAAA=\"},"
        + "{\"name\":\"g\",\"type\":\"gauge\",\"tagstring\":\"\",\"tags\":[],\"value\":\"AAAAAAAA+D8=\"}";
    String second = "{\"name\":\"s\",\"type\":\"set\",\"tags\":[\"x\"],\"value\":\"AQID\"},"
        + "{\"name\":\"h\",\"type\":\"histogram\",\"tags\":[],\"value\":\"AQID\"},"
        + "{\"name\":\"short\",\"type\":\"counter\",\"tags\":[],\"value\":\"AQIDBA==\"},"
        + "{\"name\":\"novalue\",\"type\":\"counter\",\"tags\":[]}";
    MetricListBody.Built b = MetricListBody.of(List.of(chunk(first, 2), chunk(second, 4)));
    MetricList list = MetricList.parseFrom(b.body().getBytes());
    assertEquals(3, b.metrics());
    assertEquals(Map.of("bad_value", 3), b.untranslated());
    assertEquals(3, b.left());
    List<Metric> ms = list.getMetricsList();
    assertEquals(List.of("c", "g", "s"), ms.stream().map(Metric::getName).toList());
    assertEquals(Metric.newBuilder().setName("c").addTags("a:b").addTags("c:d").setType(Type.Counter)
        .setScope(Scope.Global).setCounter(metricpb.MetricOuterClass.CounterValue.newBuilder().setValue(5)).build(), ms.get(0));
    assertEquals(1.5, ms.get(1).getGauge().getValue());
    assertEquals(Scope.Global, ms.get(1).getScope());
    assertEquals(com.google.protobuf.ByteString.copyFrom(new byte[] {1, 2, 3}), ms.get(2).getSet().getHyperLogLog());
    assertEquals(Scope.Mixed, ms.get(2).getScope());
  }

  /** A whole chunk (a body kept as its local sent it) reaching a gRPC global after a ring change. */
  @Test
  void aWholeChunkIsTranslatedFromItsJson() throws Exception {
    String a = "{\"name\":\"c\",\"type\":\"counter\",\"tagstring\":\"\",\"tags\":[],\"value\":\"BQAAAAAAAAA=\"}";
    String g = "{\"name\":\"g\",\"type\":\"gauge\",\"tagstring\":\"\",\"tags\":[],\"value\":\"AAAAAAAA+D8=\"}";
    MetricListBody.Built b = MetricListBody.of(List.of(chunk(a, 1), BatchBodyTest.whole("[" + g + ",\n" + a + "]", 2)));
    MetricList list = MetricList.parseFrom(b.body().getBytes());
    assertEquals(3, b.metrics());
    assertEquals(List.of("c", "g", "c"), list.getMetricsList().stream().map(Metric::getName).toList());
    assertEquals(1.5, list.getMetrics(1).getGauge().getValue());
  }

  /** Protobuf chunks are copied as they are, between translated JSON ones, in order. */
  @Test
  void protobufChunksAreCopiedAsTheyAre() throws Exception {
    Metric a = Metric.newBuilder().setName("a").setType(Type.Histogram).setScope(Scope.Global)
        .setHistogram(metricpb.MetricOuterClass.HistogramValue.newBuilder().setTDigest(
            tdigest.Tdigest.MergingDigestData.newBuilder().setCompression(100).setMin(1).setMax(2)
                .addMainCentroids(tdigest.Tdigest.Centroid.newBuilder().setMean(1.5).setWeight(2))))
        .build();
    Metric b = Metric.newBuilder().setName("b").addTags("x:y").setType(Type.Counter).setScope(Scope.Global)
        .setCounter(metricpb.MetricOuterClass.CounterValue.newBuilder().setValue(7)).build();
    byte[] framed = MetricList.newBuilder().addMetrics(a).addMetrics(b).build().toByteArray();
    String json = "{\"name\":\"c\",\"type\":\"counter\",\"tagstring\":\"\",\"tags\":[],\"value\":\"BQAAAAAAAAA=\"}";
    MetricListBody.Built built = MetricListBody.of(List.of(MetricChunk.protobuf(framed, 2, null), chunk(json, 1),
        MetricChunk.protobuf(framed, 2, null)));
    byte[] body = built.body().getBytes();
    assertEquals(5, built.metrics());
    assertEquals(0, built.left());
    List<Metric> ms = MetricList.parseFrom(body).getMetricsList();
    assertEquals(List.of("a", "b", "c", "a", "b"), ms.stream().map(Metric::getName).toList());
    assertEquals(a, ms.get(0), "a global-scope histogram keeps its scope");
    assertEquals(b, ms.get(4));
    // Byte for byte: the first chunk's bytes open the body.
    assertEquals(java.util.Arrays.toString(framed), java.util.Arrays.toString(java.util.Arrays.copyOf(body, framed.length)));
  }

  /**
   * A batch of protobuf chunks only (gRPC in and out) is the chunks' bytes one after another,
   * wrapped, not copied: the body reads through to the chunks' own arrays, and the chunks are
   * left as they were.
   */
  @Test
  void protobufChunksOnlyAreJoinedWithoutACopy() throws Exception {
    Metric a = Metric.newBuilder().setName("a").setType(Type.Counter).setScope(Scope.Mixed)
        .setCounter(metricpb.MetricOuterClass.CounterValue.newBuilder().setValue(1)).build();
    Metric b = Metric.newBuilder().setName("b").addTags("x:y").setType(Type.Counter).setScope(Scope.Global)
        .setCounter(metricpb.MetricOuterClass.CounterValue.newBuilder().setValue(7)).build();
    byte[] first = MetricList.newBuilder().addMetrics(a).build().toByteArray();
    byte[] second = MetricList.newBuilder().addMetrics(b).addMetrics(a).build().toByteArray();
    byte[] firstBefore = first.clone();
    MetricListBody.Built built = MetricListBody.of(List.of(MetricChunk.protobuf(first, 1, null),
        MetricChunk.protobuf(second, 2, null), MetricChunk.protobuf(first, 1, null)));
    assertEquals(3 + 1, built.metrics());
    assertEquals(0, built.left());
    assertEquals(2 * first.length + second.length, built.body().length());
    List<Metric> ms = MetricList.parseFrom(built.body().getBytes()).getMetricsList();
    assertEquals(List.of(a, b, a, a), ms);
    io.netty.buffer.ByteBuf buf = ((io.vertx.core.internal.buffer.BufferInternal) built.body()).getByteBuf();
    // Written through the chunk's array, seen in the body: shared, not copied.
    first[first.length - 1] ^= 1;
    assertEquals(first[first.length - 1], buf.getByte(first.length - 1));
    first[first.length - 1] ^= 1;
    assertEquals(java.util.Arrays.toString(firstBefore), java.util.Arrays.toString(first), "the chunk is untouched");
  }

  @Test
  void anEmptyBatchIsAnEmptyList() throws Exception {
    MetricListBody.Built b = MetricListBody.of(List.of());
    assertEquals(0, b.body().length());
    assertEquals(0, MetricList.parseFrom(b.body().getBytes()).getMetricsCount());
  }
}
