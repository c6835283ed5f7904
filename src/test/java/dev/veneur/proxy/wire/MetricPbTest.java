package dev.veneur.proxy.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The protobuf wire format of v14's metrics, against what a real v14.2.0 local sent by grpc-single. */
class MetricPbTest {
  private static final Path V14 = Path.of("src/test/resources/fixtures/veneur-v14.2.0");
  private static final Map<String, Integer> TYPES = Map.of("Counter", 0, "Gauge", 1, "Histogram", 2, "Set", 3, "Timer", 4);
  private static final Map<String, Integer> SCOPES = Map.of("Mixed", 0, "Local", 1, "Global", 2);

  private static List<int[]> spans(byte[] list) {
    MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
    List<int[]> out = new ArrayList<>();
    while (r.next()) out.add(new int[] {r.metricOff, r.metricLen});
    assertFalse(r.malformed);
    return out;
  }

  @Test
  void everyMetricOfARealGrpcSingleListIsReadAsItsDecodedForm() throws Exception {
    byte[] list = Files.readAllBytes(V14.resolve("grpc-single-small.pb"));
    List<String> decoded = Files.readAllLines(V14.resolve("grpc-single-small.decoded.jsonl"));
    List<int[]> spans = spans(list);
    assertEquals(decoded.size(), spans.size());
    MetricPb.Fields f = new MetricPb.Fields();
    for (int i = 0; i < spans.size(); i++) {
      JsonObject want = new JsonObject(decoded.get(i));
      assertTrue(MetricPb.scan(list, spans.get(i)[0], spans.get(i)[1], f), want + ": " + f.problem + " " + f.detail);
      assertEquals(want.getString("name"), f.name(list));
      JsonArray tags = want.getJsonArray("tags");
      assertEquals(tags.size(), f.tags);
      for (int t = 0; t < f.tags; t++) assertEquals(tags.getString(t), f.tag(list, t));
      assertEquals((int) TYPES.get(want.getString("type")), f.type);
      assertEquals((int) SCOPES.get(want.getString("scope")), f.scope);
      switch (f.valueField) {
        case MetricPb.F_COUNTER -> assertEquals(want.getLong("counter"), MetricPb.readCounter(list, f.valueOff, f.valueLen));
        case MetricPb.F_GAUGE -> assertEquals(want.getDouble("gauge"), MetricPb.readGauge(list, f.valueOff, f.valueLen));
        case MetricPb.F_SET -> assertEquals(want.getInteger("set_hll_bytes"), MetricPb.readSet(list, f.valueOff, f.valueLen).length);
        case MetricPb.F_HISTOGRAM -> {
          JsonObject h = want.getJsonObject("histogram");
          GobDigest.Digest d = MetricPb.readHistogram(list, f.valueOff, f.valueLen);
          assertEquals(h.getInteger("centroids"), d.size());
          double weight = 0;
          for (double w : d.weights()) weight += w;
          assertEquals(h.getDouble("weight"), weight, 1e-9);
          assertEquals(h.getDouble("min"), d.min());
          assertEquals(h.getDouble("max"), d.max());
          assertEquals(h.getDouble("compression"), d.compression());
          assertEquals(h.getDouble("reciprocal_sum"), d.reciprocalSum(), 1e-12);
          // Written back from its parts, the digest is the bytes the local wrote.
          byte[] again = MetricPb.histogramValue(d);
          assertArrayEquals(java.util.Arrays.copyOfRange(list, f.valueOff, f.valueOff + f.valueLen), again,
              want.getString("name"));
        }
        default -> throw new AssertionError("value field " + f.valueField);
      }
      // And the whole metric, written from its parts, is the local's bytes.
      List<String> tagList = new ArrayList<>();
      for (int t = 0; t < f.tags; t++) tagList.add(f.tag(list, t));
      byte[] value = java.util.Arrays.copyOfRange(list, f.valueOff, f.valueOff + f.valueLen);
      assertArrayEquals(java.util.Arrays.copyOfRange(list, spans.get(i)[0], spans.get(i)[0] + spans.get(i)[1]),
          MetricPb.metric(f.name(list), tagList, f.type, f.scope, f.valueField, value), want.getString("name"));
    }
  }

  @Test
  void theLargeListHasEveryMetricValid() throws Exception {
    byte[] list = Files.readAllBytes(Path.of("../shared/fixtures/veneur-v14.2.0/grpc-single-large.pb").toFile().exists()
        ? Path.of("../shared/fixtures/veneur-v14.2.0/grpc-single-large.pb") : V14.resolve("grpc-single-small.pb"));
    MetricPb.Fields f = new MetricPb.Fields();
    int n = 0;
    for (int[] s : spans(list)) {
      assertTrue(MetricPb.scan(list, s[0], s[1], f), f.problem + " " + f.detail);
      n++;
    }
    assertTrue(n >= 55, "metrics: " + n);
  }

  private static MetricPb.Fields scanned(byte[] m) {
    MetricPb.Fields f = new MetricPb.Fields();
    MetricPb.scan(m, 0, m.length, f);
    return f;
  }

  @Test
  void aMetricAV14GlobalWouldRefuseIsRefusedWithItsCause() {
    byte[] counter = MetricPb.counterValue(3);
    assertEquals(null, scanned(MetricPb.metric("c", List.of("a:b"), MetricPb.COUNTER, MetricPb.GLOBAL, 5, counter)).problem);
    assertEquals(MetricPb.Problem.TYPE_MISMATCH,
        scanned(MetricPb.metric("c", List.of(), MetricPb.GAUGE, 0, MetricPb.F_COUNTER, counter)).problem);
    assertEquals(MetricPb.Problem.LOCAL_SCOPE,
        scanned(MetricPb.metric("c", List.of(), MetricPb.COUNTER, MetricPb.LOCAL, MetricPb.F_COUNTER, counter)).problem);
    assertEquals(MetricPb.Problem.UNKNOWN_TYPE,
        scanned(MetricPb.metric("c", List.of(), 7, 0, MetricPb.F_COUNTER, counter)).problem);
    ByteArrayOutputStream noValue = new ByteArrayOutputStream();
    MetricPb.bytesField(noValue, 1, "c".getBytes());
    assertEquals(MetricPb.Problem.NO_VALUE, scanned(noValue.toByteArray()).problem);
    GobDigest.Digest nan = new GobDigest.Digest(new double[] {Double.NaN}, new double[] {1}, null, 100, 0, 1, 0, true);
    assertEquals(MetricPb.Problem.BAD_DIGEST, scanned(MetricPb.metric("h", List.of(), MetricPb.HISTOGRAM, 0,
        MetricPb.F_HISTOGRAM, MetricPb.histogramValue(nan))).problem);
    GobDigest.Digest zeroWeight = new GobDigest.Digest(new double[] {1}, new double[] {0}, null, 100, 0, 1, 0, true);
    assertEquals(MetricPb.Problem.BAD_DIGEST, scanned(MetricPb.metric("h", List.of(), MetricPb.TIMER, 0,
        MetricPb.F_HISTOGRAM, MetricPb.histogramValue(zeroWeight))).problem);
    byte[] badUtf8 = MetricPb.metric("x", List.of(), 0, 0, MetricPb.F_COUNTER, counter);
    badUtf8[2] = (byte) 0xff;
    assertEquals(MetricPb.Problem.INVALID_UTF8, scanned(badUtf8).problem);
  }

  @Test
  void valuesRoundTripThroughTheirWriters() {
    for (long v : new long[] {0, 1, -1, Long.MAX_VALUE, Long.MIN_VALUE, 300}) {
      byte[] b = MetricPb.counterValue(v);
      assertEquals(v, MetricPb.readCounter(b, 0, b.length));
    }
    for (double v : new double[] {0, -0.0, 1.5, Double.MAX_VALUE, -1e-300}) {
      byte[] b = MetricPb.gaugeValue(v);
      assertEquals(v, MetricPb.readGauge(b, 0, b.length));
    }
    byte[] hll = {1, 2, 3, 0, (byte) 0xff};
    byte[] s = MetricPb.setValue(hll);
    assertArrayEquals(hll, MetricPb.readSet(s, 0, s.length));
    GobDigest.Digest d = new GobDigest.Digest(new double[] {1, 2}, new double[] {3, 4}, new double[][] {{1, 1.5}, null},
        50, 1, 2, 0.5, true);
    byte[] h = MetricPb.histogramValue(d);
    GobDigest.Digest back = MetricPb.readHistogram(h, 0, h.length);
    assertArrayEquals(d.means(), back.means());
    assertArrayEquals(d.weights(), back.weights());
    assertArrayEquals(new double[] {1, 1.5}, back.samples()[0]);
    assertEquals(0.5, back.reciprocalSum());
  }

  @Test
  void everyCutAndRandomDamageIsRefusedOrReadWithoutThrowing() throws Exception {
    byte[] list = Files.readAllBytes(V14.resolve("grpc-single-small.pb"));
    int[] first = spans(list).get(0);
    byte[] m = java.util.Arrays.copyOfRange(list, first[0], first[0] + first[1]);
    MetricPb.Fields f = new MetricPb.Fields();
    for (int cut = 0; cut < m.length; cut++) {
      // Never an exception: a cut metric is refused, or (cut at a field boundary) read as what is left.
      MetricPb.scan(m, 0, cut, f);
    }
    Random r = new Random(7);
    for (int i = 0; i < 10_000; i++) {
      byte[] b = list.clone();
      for (int k = 0; k < 3; k++) b[r.nextInt(b.length)] = (byte) r.nextInt(256);
      MetricPb.ListReader lr = new MetricPb.ListReader(b, 0, b.length);
      while (lr.next()) {
        if (MetricPb.scan(b, lr.metricOff, lr.metricLen, f) && f.valueField == MetricPb.F_HISTOGRAM) {
          MetricPb.readHistogram(b, f.valueOff, f.valueLen);
        }
      }
    }
    // A length that claims more than there is.
    byte[] liar = {0x0a, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x07, 1, 2};
    MetricPb.ListReader lr = new MetricPb.ListReader(liar, 0, liar.length);
    assertFalse(lr.next());
    assertTrue(lr.malformed);
  }

  /**
   * The UTF-8 check (eight ASCII bytes at a time, then byte by byte) against the JDK's strict
   * decoder, which refuses what Go's protobuf runtime refuses (overlong forms, surrogates, above
   * U+10FFFF, cut sequences): seeded inputs of mostly ASCII with a non-ASCII byte or sequence
   * anywhere, at every offset and length around the eight-byte steps.
   */
  @Test
  void utf8CheckAgreesWithAStrictDecoder() {
    java.util.Random r = new java.util.Random(19);
    byte[][] odd = {{(byte) 0xc3, (byte) 0xa9}, {(byte) 0xe2, (byte) 0x82, (byte) 0xac},
        {(byte) 0xf0, (byte) 0x9f, (byte) 0x98, (byte) 0x80}, {(byte) 0xc0, (byte) 0x80},
        {(byte) 0xed, (byte) 0xa0, (byte) 0x80}, {(byte) 0xf4, (byte) 0x90, (byte) 0x80, (byte) 0x80},
        {(byte) 0x80}, {(byte) 0xff}, {(byte) 0xe2, (byte) 0x82}, {(byte) 0xc3}};
    int valid = 0;
    int invalid = 0;
    for (int n = 0; n < 20000; n++) {
      byte[] b = new byte[1 + r.nextInt(40)];
      for (int i = 0; i < b.length; i++) b[i] = (byte) (0x20 + r.nextInt(0x5f));
      if (r.nextInt(4) > 0) {
        byte[] o = odd[r.nextInt(odd.length)];
        int at = r.nextInt(b.length);
        System.arraycopy(o, 0, b, at, Math.min(o.length, b.length - at));
      }
      int off = r.nextInt(b.length);
      int len = r.nextInt(b.length - off + 1);
      boolean want;
      try {
        java.nio.charset.StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
            .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
            .decode(java.nio.ByteBuffer.wrap(b, off, len));
        want = true;
      } catch (java.nio.charset.CharacterCodingException e) {
        want = false;
      }
      assertEquals(want, MetricPb.Utf8.valid(b, off, len), java.util.Arrays.toString(java.util.Arrays.copyOfRange(b, off, off + len)));
      if (want) valid++;
      else invalid++;
    }
    assertTrue(valid > 5000 && invalid > 2000, valid + " valid, " + invalid + " invalid");
  }
}
