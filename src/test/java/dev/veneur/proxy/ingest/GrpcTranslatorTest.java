package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.wire.MetricPb;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class GrpcTranslatorTest {
  private static final Path V14 = Path.of("src/test/resources/fixtures/veneur-v14.2.0");

  private static byte[] list(byte[]... metrics) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] m : metrics) MetricPb.listEntry(out, m, 0, m.length);
    return out.toByteArray();
  }

  /** A translator for a ring of one member, a gRPC global. */
  private static GrpcTranslator toOneGrpcGlobal(int bytes, dev.veneur.proxy.memory.MemoryBudget budget) {
    return new GrpcTranslator(bytes, dev.veneur.proxy.routing.HashRing.of(List.of("127.0.0.1:9001")), budget);
  }

  @Test
  void aRealFlushBecomesOneJsonArrayOfEveryMetric() throws Exception {
    byte[] pb = Files.readAllBytes(V14.resolve("grpc-single-small.pb"));
    GrpcTranslator t = new GrpcTranslator(pb.length);
    assertTrue(t.addList(pb, 0, pb.length));
    JsonArray json = new JsonArray(new String(t.finish(), StandardCharsets.UTF_8));
    assertEquals(55, json.size());
    assertEquals(55, t.valid());
    assertEquals(10, t.scopeLost(), "global-scope histograms and timers");
    assertEquals(0, t.droppedTotal());
    JsonObject first = json.getJsonObject(0);
    assertEquals(List.of("name", "type", "tagstring", "tags", "value"), List.copyOf(first.fieldNames()));
  }

  @Test
  void badMetricsAreLeftOutAloneByCauseAndBrokenFramingRefusesTheWhole() {
    byte[] good = MetricPb.metric("ok", List.of("a:b"), MetricPb.COUNTER, MetricPb.GLOBAL, MetricPb.F_COUNTER,
        MetricPb.counterValue(3));
    byte[] mismatch = MetricPb.metric("bad", List.of(), MetricPb.COUNTER, MetricPb.MIXED, MetricPb.F_GAUGE,
        MetricPb.gaugeValue(1.5));
    byte[] local = MetricPb.metric("local", List.of(), MetricPb.GAUGE, MetricPb.LOCAL, MetricPb.F_GAUGE,
        MetricPb.gaugeValue(1.5));
    byte[] l = list(good, mismatch, local, good);
    GrpcTranslator t = new GrpcTranslator(64);
    assertTrue(t.addList(l, 0, l.length));
    assertEquals(2, t.valid());
    assertEquals(Map.of("type_mismatch", 1, "local_scope", 1), t.dropped());
    assertTrue(t.firstProblem().startsWith("type_mismatch"), t.firstProblem());
    assertEquals(2, new JsonArray(new String(t.finish(), StandardCharsets.UTF_8)).size());

    // A list entry declared longer than what follows: nothing of that list is added.
    byte[] cut = java.util.Arrays.copyOf(l, l.length - 3);
    GrpcTranslator u = new GrpcTranslator(64);
    assertFalse(u.addList(cut, 0, cut.length));
    assertEquals(0, u.valid());
    assertEquals("[]", new String(u.finish(), StandardCharsets.UTF_8));
  }

  @Test
  void streamedMetricsJoinOneArray() {
    GrpcTranslator t = new GrpcTranslator(16);
    for (int i = 0; i < 3; i++) {
      byte[] m = MetricPb.metric("s" + i, List.of(), MetricPb.GAUGE, MetricPb.GLOBAL, MetricPb.F_GAUGE,
          MetricPb.gaugeValue(i));
      t.addMetric(m, 0, m.length);
    }
    JsonArray json = new JsonArray(new String(t.finish(), StandardCharsets.UTF_8));
    assertEquals(List.of("s0", "s1", "s2"), json.stream().map(o -> ((JsonObject) o).getString("name")).toList());
  }

  /**
   * With gRPC globals on the ring, a metric they own is spliced byte for byte into its owner's
   * protobuf chunk, placed by v14's key; a metric an HTTP global owns is translated to JSON as before.
   * Only the translated ones can lose their scope.
   */
  @Test
  void metricsForGrpcGlobalsAreSplicedByteForByteAndTheRestTranslated() throws Exception {
    byte[] pb = Files.readAllBytes(V14.resolve("grpc-single-small.pb"));
    dev.veneur.proxy.routing.HashRing ring = dev.veneur.proxy.routing.HashRing.of(
        List.of("127.0.0.1:9001", "http://127.0.0.1:9002", "127.0.0.1:9003"));
    dev.veneur.proxy.memory.MemoryBudget budget = new dev.veneur.proxy.memory.MemoryBudget(() -> 1L << 30);
    GrpcTranslator t = new GrpcTranslator(pb.length, ring, budget);
    assertTrue(t.addList(pb, 0, pb.length));

    // What each metric's owner is, and its bytes, read independently of the translator.
    java.util.Map<String, Integer> ownerOf = new java.util.HashMap<>();
    java.util.Map<String, String> bytesOf = new java.util.HashMap<>();
    java.util.Set<String> globalScope = new java.util.HashSet<>();
    MetricPb.ListReader r = new MetricPb.ListReader(pb, 0, pb.length);
    MetricPb.Fields f = new MetricPb.Fields();
    while (r.next()) {
      assertTrue(MetricPb.scan(pb, r.metricOff, r.metricLen, f));
      List<String> tags = new java.util.ArrayList<>();
      for (int i = 0; i < f.tags; i++) tags.add(f.tag(pb, i));
      String key = f.name(pb) + MetricPb.typeName(f.type) + String.join(",", tags);
      ownerOf.put(f.name(pb), ring.ownerIndex(dev.veneur.proxy.routing.HashRing.hashKey(key)));
      bytesOf.put(f.name(pb), java.util.Arrays.toString(java.util.Arrays.copyOfRange(pb, r.metricOff, r.metricOff + r.metricLen)));
      if (f.scope == MetricPb.GLOBAL && f.valueField == MetricPb.F_HISTOGRAM) globalScope.add(f.name(pb));
    }
    assertEquals(55, ownerOf.size());

    dev.veneur.proxy.bus.MetricChunk[] chunks = t.protoChunks(null);
    assertEquals(3, chunks.length);
    assertEquals(null, chunks[1], "nothing spliced for the HTTP global");
    long reserved = 0;
    int spliced = 0;
    for (int d : new int[] {0, 2}) {
      assertTrue(chunks[d].proto);
      reserved += chunks[d].bytes();
      MetricPb.ListReader c = new MetricPb.ListReader(chunks[d].payload, 0, chunks[d].payload.length);
      int n = 0;
      while (c.next()) {
        assertTrue(MetricPb.scan(chunks[d].payload, c.metricOff, c.metricLen, f));
        String name = f.name(chunks[d].payload);
        assertEquals(ownerOf.get(name), d, "placed on its v14 owner: " + name);
        assertEquals(bytesOf.get(name), java.util.Arrays.toString(
            java.util.Arrays.copyOfRange(chunks[d].payload, c.metricOff, c.metricOff + c.metricLen)), name);
        n++;
      }
      assertEquals(chunks[d].count, n);
      spliced += n;
    }
    assertEquals(reserved, budget.used(), "the chunks are reserved in the budget");
    assertEquals(spliced, t.spliced());

    JsonArray json = new JsonArray(new String(t.finish(), StandardCharsets.UTF_8));
    assertEquals(55 - spliced, json.size());
    assertEquals(json.size(), t.valid());
    int lost = 0;
    for (Object o : json) {
      String name = ((JsonObject) o).getString("name");
      assertEquals(1, ownerOf.get(name), "translated only for the HTTP global: " + name);
      if (globalScope.contains(name)) lost++;
    }
    assertEquals(lost, t.scopeLost());
    assertTrue(spliced > 0 && json.size() > 0, "both kinds of global get some: " + spliced + "/" + json.size());
  }

  /**
   * One member, a gRPC global: a list whose every metric goes is kept as it came, the same array
   * (nothing copied, no key hashed), reserved in the budget.
   */
  @Test
  void withOneGrpcGlobalAWholeValidListIsKeptAsItCame() throws Exception {
    byte[] pb = Files.readAllBytes(V14.resolve("grpc-single-small.pb"));
    dev.veneur.proxy.memory.MemoryBudget budget = new dev.veneur.proxy.memory.MemoryBudget(() -> 1L << 30);
    GrpcTranslator t = toOneGrpcGlobal(pb.length, budget);
    assertTrue(t.addList(pb, 0, pb.length));
    assertEquals(55, t.spliced());
    assertEquals(0, t.valid());
    assertEquals(1 + pb.length, t.size(), "the JSON side's [ and the list");
    dev.veneur.proxy.bus.MetricChunk[] chunks = t.protoChunks(null);
    assertEquals(1, chunks.length);
    assertTrue(chunks[0].proto);
    assertTrue(chunks[0].payload == pb, "the message's own bytes");
    assertEquals(55, chunks[0].count);
    assertEquals(pb.length, budget.used());
    assertEquals("[]", new String(t.finish(), StandardCharsets.UTF_8));
  }

  /** A unary call that carries two lists (a client may send them): both reach the one chunk. */
  @Test
  void withOneGrpcGlobalASecondListJoinsTheFirst() throws Exception {
    byte[] pb = Files.readAllBytes(V14.resolve("grpc-single-small.pb"));
    byte[] local = MetricPb.metric("local", List.of(), MetricPb.GAUGE, MetricPb.LOCAL, MetricPb.F_GAUGE,
        MetricPb.gaugeValue(1.5));
    // The second list: the real one with a metric a global refuses after it.
    byte[] tail = list(local);
    byte[] second = java.util.Arrays.copyOf(pb, pb.length + tail.length);
    System.arraycopy(tail, 0, second, pb.length, tail.length);
    dev.veneur.proxy.memory.MemoryBudget budget = new dev.veneur.proxy.memory.MemoryBudget(() -> 1L << 30);
    GrpcTranslator t = toOneGrpcGlobal(pb.length, budget);
    assertTrue(t.addList(pb, 0, pb.length));
    assertTrue(t.addList(second, 0, second.length));
    assertEquals(110, t.spliced());
    dev.veneur.proxy.bus.MetricChunk c = t.protoChunks(null)[0];
    assertEquals(110, c.count);
    byte[] both = java.util.Arrays.copyOf(pb, 2 * pb.length);
    System.arraycopy(pb, 0, both, pb.length, pb.length);
    assertEquals(java.util.Arrays.toString(both), java.util.Arrays.toString(c.payload));
    assertEquals(both.length, budget.used(), "reserved once, whole");
    assertEquals(Map.of("local_scope", 1), t.dropped());
  }

  /**
   * The same one gRPC global, lists that are not kept whole: a metric a global would refuse, a
   * field other than the metrics, a length written longer than it needs. Each goes metric by
   * metric, and what the global gets is exactly the valid metrics, framed the shortest way.
   */
  @Test
  void withOneGrpcGlobalAListWithAnythingElseGoesMetricByMetric() {
    byte[] a = MetricPb.metric("a", List.of("x:1"), MetricPb.COUNTER, MetricPb.MIXED, MetricPb.F_COUNTER,
        MetricPb.counterValue(3));
    byte[] b = MetricPb.metric("b", List.of(), MetricPb.GAUGE, MetricPb.GLOBAL, MetricPb.F_GAUGE,
        MetricPb.gaugeValue(2.5));
    byte[] local = MetricPb.metric("local", List.of(), MetricPb.GAUGE, MetricPb.LOCAL, MetricPb.F_GAUGE,
        MetricPb.gaugeValue(1.5));
    byte[] expected = list(a, b);

    byte[] withBad = list(a, local, b);
    // Field 2 (a string) after the metrics: a Go server skips an unknown field, so may this proxy.
    byte[] withField = java.util.Arrays.copyOf(expected, expected.length + 3);
    withField[expected.length] = 0x12;
    withField[expected.length + 1] = 1;
    withField[expected.length + 2] = 'z';
    // Metric a's length as a two-byte varint (0x80 | len, 0x00): legal protobuf, not our framing.
    byte[] longVarint = new byte[expected.length + 1];
    longVarint[0] = 0x0a;
    longVarint[1] = (byte) (0x80 | a.length);
    longVarint[2] = 0;
    System.arraycopy(a, 0, longVarint, 3, a.length);
    System.arraycopy(expected, 2 + a.length, longVarint, 3 + a.length, expected.length - 2 - a.length);

    for (byte[] l : new byte[][] {withBad, withField, longVarint}) {
      dev.veneur.proxy.memory.MemoryBudget budget = new dev.veneur.proxy.memory.MemoryBudget(() -> 1L << 30);
      GrpcTranslator t = toOneGrpcGlobal(l.length, budget);
      assertTrue(t.addList(l, 0, l.length));
      assertEquals(2, t.spliced());
      dev.veneur.proxy.bus.MetricChunk c = t.protoChunks(null)[0];
      assertFalse(c.payload == l, "not the message's bytes");
      assertEquals(java.util.Arrays.toString(expected), java.util.Arrays.toString(c.payload));
      assertEquals(l == withBad ? Map.of("local_scope", 1) : Map.of(), t.dropped());
    }
  }

  /** A protobuf chunk in two by position: two ranges of its bytes, the spill record shared. */
  @Test
  void aProtobufChunkSplitsIntoTwoRangesOfItsBytes() {
    java.io.ByteArrayOutputStream framed = new java.io.ByteArrayOutputStream();
    for (int i = 0; i < 5; i++) {
      byte[] m = MetricPb.metric("m" + i, List.of(), MetricPb.GAUGE, MetricPb.GLOBAL, MetricPb.F_GAUGE, MetricPb.gaugeValue(i));
      MetricPb.listEntry(framed, m, 0, m.length);
    }
    byte[] all = framed.toByteArray();
    dev.veneur.proxy.memory.MemoryBudget budget = new dev.veneur.proxy.memory.MemoryBudget(() -> 1L << 30);
    dev.veneur.proxy.bus.MetricChunk whole = dev.veneur.proxy.bus.MetricChunk.protobuf(all, 5, null);
    dev.veneur.proxy.bus.MetricChunk[] h = ProtoSplit.halves(whole, 2, budget);
    assertEquals(2, h[0].count);
    assertEquals(3, h[1].count);
    assertTrue(h[0].proto && h[1].proto);
    byte[] joined = new byte[all.length];
    System.arraycopy(h[0].payload, 0, joined, 0, h[0].payload.length);
    System.arraycopy(h[1].payload, 0, joined, h[0].payload.length, h[1].payload.length);
    assertEquals(java.util.Arrays.toString(all), java.util.Arrays.toString(joined));
    assertEquals(all.length, budget.used());
    dev.veneur.proxy.bus.MetricChunk[] one = ProtoSplit.halves(dev.veneur.proxy.bus.MetricChunk.protobuf(h[0].payload, 2, null), 1, budget);
    assertEquals(List.of("m0"), names(one[0]));
    assertEquals(List.of("m1"), names(one[1]));
  }

  private static List<String> names(dev.veneur.proxy.bus.MetricChunk c) {
    List<String> out = new java.util.ArrayList<>();
    MetricPb.ListReader r = new MetricPb.ListReader(c.payload, 0, c.payload.length);
    MetricPb.Fields f = new MetricPb.Fields();
    while (r.next()) {
      assertTrue(MetricPb.scan(c.payload, r.metricOff, r.metricLen, f));
      out.add(f.name(c.payload));
    }
    return out;
  }
}
