package dev.veneur.proxy.routing;

import dev.veneur.proxy.config.IgnoreTags;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.wire.MetricPb;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;

/** v14's ring key, from the bytes of real v14.2.0 metrics, against the key written out as the issue states it. */
class V14KeyTest {
  private static final IgnoreTags HOSTS = IgnoreTags.of(List.of(new IgnoreTags.Rule("prefix", "host:"),
      new IgnoreTags.Rule("exact", "env:prod"), new IgnoreTags.Rule("regex", "route:/v1/[a-z]+/1")));

  @Test
  void theHashFromBytesIsTheCrcOfTheKeyStringForEveryRealMetric() throws Exception {
    byte[] list = Files.readAllBytes(Path.of("src/test/resources/fixtures/veneur-v14.2.0/grpc-single-small.pb"));
    MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
    MetricPb.Fields f = new MetricPb.Fields();
    V14Key.Hasher hasher = new V14Key.Hasher();
    int n = 0;
    int differ = 0;
    while (r.next()) {
      assertTrue(MetricPb.scan(list, r.metricOff, r.metricLen, f));
      List<String> tags = new ArrayList<>();
      for (int i = 0; i < f.tags; i++) tags.add(f.tag(list, i));
      String type = MetricPb.typeName(f.type);
      for (IgnoreTags ig : List.of(IgnoreTags.NONE, HOSTS)) {
        String key = V14Key.key(f.name(list), type, tags, ig);
        assertEquals(HashRing.hashKey(key), hasher.hash(list, f, ig), key);
      }
      String all = V14Key.key(f.name(list), type, tags, IgnoreTags.NONE);
      assertEquals(f.name(list) + type + String.join(",", tags), all);
      if (!all.equals(V14Key.key(f.name(list), type, tags, HOSTS))) differ++;
      n++;
    }
    assertEquals(55, n);
    assertTrue(differ > 0 && differ <= n, "the rules matched some tags: " + differ);
  }

  @Test
  void ignoredTagsLeaveOnlyTheKeyAndEachKindMatchesAsGoDoes() {
    assertEquals("api.hitscounteraz:a", V14Key.key("api.hits", "counter", List.of("host:i-1", "az:a"), HOSTS));
    assertEquals("api.hitscounteraz:a", V14Key.key("api.hits", "counter", List.of("az:a", "env:prod"), HOSTS));
    // exact is exact; prefix is a prefix; a regex matches anywhere (unanchored).
    assertEquals("xgaugeenv:production", V14Key.key("x", "gauge", List.of("env:production"), HOSTS));
    assertEquals("xgaugemyhost:1", V14Key.key("x", "gauge", List.of("myhost:1"), HOSTS));
    assertEquals("xgauge", V14Key.key("x", "gauge", List.of("a,route:/v1/api/17"), HOSTS));
    assertNotEquals(HashRing.hashKey("api.hitscounteraz:a"), HashRing.hashKey("api.hitscounteraz:a,host:i-1"));
    var e = assertThrows(IllegalArgumentException.class, () -> IgnoreTags.of(List.of(new IgnoreTags.Rule("glob", "*"))));
    assertTrue(e.getMessage().contains("glob"));
  }

  /** Keys longer than the hasher's first array (and a short one after them) hash as their strings do. */
  @Test
  void longKeysGrowTheGatheringArray() {
    V14Key.Hasher hasher = new V14Key.Hasher();
    MetricPb.Fields f = new MetricPb.Fields();
    for (int tagCount : new int[] {40, 0, 3, 200}) {
      List<String> tags = new ArrayList<>();
      for (int i = 0; i < tagCount; i++) tags.add("tag" + i + ":" + "v".repeat(20 + i % 7));
      byte[] m = MetricPb.metric("n".repeat(300), tags, MetricPb.GAUGE, MetricPb.MIXED, MetricPb.F_GAUGE,
          MetricPb.gaugeValue(1));
      assertTrue(MetricPb.scan(m, 0, m.length, f));
      for (IgnoreTags ig : List.of(IgnoreTags.NONE, HOSTS)) {
        assertEquals(HashRing.hashKey(V14Key.key("n".repeat(300), "gauge", tags, ig)), hasher.hash(m, f, ig), tagCount + " tags");
      }
    }
  }
}
