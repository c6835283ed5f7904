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
}
