package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.zip.Adler32;
import java.util.zip.Inflater;
import dev.veneur.proxy.wire.FastDeflater;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ChunkWriterTest {

  /**
   * Every level, with zlib and with the fast deflater, and switching between them from chunk to
   * chunk on one writer (a reload does that): each chunk inflates to its metrics, comma-joined.
   */
  @ParameterizedTest
  @ValueSource(strings = {"zlib", "fast", "alternating"})
  void aChunkInflatesToItsMetricsCommaJoinedAndItsBytesAreReserved(String compressor) throws Exception {
    MemoryBudget budget = new MemoryBudget(() -> 1L << 30);
    ChunkWriter w = new ChunkWriter(budget, 1, new FastDeflater());
    Random r = new Random(3);
    for (int round = 0; round < 20; round++) {
      boolean fast = compressor.equals("fast") || (compressor.equals("alternating") && round % 2 == 0);
      w.begin(round % 10, fast);
      List<String> metrics = new ArrayList<>();
      StringBuilder src = new StringBuilder();
      int n = 1 + r.nextInt(round == 5 ? 3000 : 200);
      for (int i = 0; i < n; i++) {
        // Some metrics larger than the staging area, to take the direct path.
        String v = "x".repeat(i % 97 == 0 ? 40_000 + r.nextInt(50_000) : r.nextInt(200));
        metrics.add("{\"name\":\"m" + i + "\",\"value\":\"" + v + "\"}");
      }
      byte[] all = String.join(" ", metrics).getBytes(StandardCharsets.UTF_8);
      int at = 0;
      for (String m : metrics) {
        int len = m.getBytes(StandardCharsets.UTF_8).length;
        w.add(all, at, at + len);
        at += len + 1;
      }
      MetricChunk c = w.finish(null);
      org.junit.jupiter.api.Assertions.assertTrue(budget.used() >= c.bytes(), "the chunk's bytes are reserved");
      String joined = String.join(",", metrics);
      assertEquals(joined, inflateRaw(c.payload));
      assertEquals(joined.length(), c.rawLength);
      assertEquals(n, c.count);
      Adler32 a = new Adler32();
      a.update(joined.getBytes(StandardCharsets.UTF_8));
      assertEquals((int) a.getValue(), c.adler);
      budget.release(c.bytes());
      w.trim();
      assertEquals(0, budget.used(), "scratch grown for a big chunk is given back");
    }
    w.begin(1, compressor.equals("fast"));
    assertNull(w.finish(null), "no metric, no chunk");
    w.close();
  }

  private static String inflateRaw(byte[] deflated) throws Exception {
    Inflater inf = new Inflater(true);
    inf.setInput(deflated);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[65536];
    while (true) {
      int n = inf.inflate(buf);
      if (n == 0 && (inf.needsInput() || inf.finished())) break;
      out.write(buf, 0, n);
    }
    assertEquals(false, inf.finished(), "a chunk has no final block");
    inf.end();
    return out.toString(StandardCharsets.UTF_8);
  }
}
