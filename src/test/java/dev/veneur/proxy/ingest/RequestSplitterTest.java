package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.veneur.proxy.bus.MetricChunk;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class RequestSplitterTest {

  @Test
  void chunksAreExactlySizedCommaJoinedSpansInArrivalOrder() {
    byte[] src = "[{\"a\":1},{\"bb\":2},{\"c\":3},{\"dddd\":4}]".getBytes(StandardCharsets.UTF_8);
    int[][] spans = {{1, 8}, {9, 17}, {18, 25}, {26, 36}};
    int[] owner = {0, 2, 0, 2};
    RequestSplitter s = new RequestSplitter();
    for (int round = 0; round < 2; round++) { // arrays are reused between requests
      s.reset(3);
      for (int i = 0; i < spans.length; i++) s.add(spans[i][0], spans[i][1], 100 + i, owner[i]);
      assertEquals(14, s.metricBytes(0));
      assertEquals(0, s.count(1));
      MetricChunk[] out = s.build(src);
      assertNull(out[1]);
      assertEquals("{\"a\":1},{\"c\":3}", new String(out[0].data, 0, out[0].length, StandardCharsets.UTF_8));
      assertEquals(out[0].length, out[0].data.length, "no slack");
      assertArrayEquals(new int[] {0, 8}, out[0].starts);
      assertArrayEquals(new int[] {100, 102}, out[0].hashes);
      assertEquals("{\"bb\":2},{\"dddd\":4}", new String(out[2].data, StandardCharsets.UTF_8));
      assertEquals(s.metricBytes(2), out[2].metricBytes());
      assertEquals("{\"dddd\":4}", new String(Arrays.copyOfRange(out[2].data, out[2].starts[1], out[2].end(1)),
          StandardCharsets.UTF_8));
    }
  }

  @Test
  void growsPastItsInitialCapacity() {
    byte[] src = new byte[5000];
    Arrays.fill(src, (byte) 'x');
    RequestSplitter s = new RequestSplitter();
    s.reset(2);
    for (int i = 0; i < 2500; i++) s.add(i * 2, i * 2 + 1, i, i % 2);
    MetricChunk[] out = s.build(src);
    assertEquals(1250, out[0].count);
    assertEquals(1250 + 1249, out[0].length);
  }
}
