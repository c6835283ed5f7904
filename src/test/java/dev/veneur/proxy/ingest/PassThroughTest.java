package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.routing.Owners;
import dev.veneur.proxy.support.Bodies;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;

/**
 * A body whose metrics all go to the one slot, none dropped, goes on as it came: one whole chunk,
 * the very bytes received, nothing deflated. Anything else about it (a metric dropped, bytes after
 * the array, two slots) makes it scanned again the usual way, and its chunks are the JSON form
 * of exactly its valid metrics.
 */
class PassThroughTest {
  private final ArrayDeque<Runnable> later = new ArrayDeque<>();
  private final MemoryBudget budget = new MemoryBudget(() -> 1L << 30);
  private final Ingester ingester = new Ingester(later::add, budget, new FixedLimits(8 << 20, 8 << 20, 1));
  private Ingester.Result result;
  private ImportRefusal refusal;
  private int opened;
  private int copies;
  private long[] seen;
  private boolean refuseCopy;

  private static final String M1 = "{\"name\":\"a.b\",\"type\":\"counter\",\"tagstring\":\"x:y\",\"tags\":[\"x:y\"],\"value\":\"BQAAAAAAAAA=\"}";
  private static final String M2 = "{\"name\":\"c\",\"type\":\"gauge\",\"tagstring\":\"\",\"value\":\"AAAAAAAA8D8=\"}";
  private static final String BAD = "{\"name\":\"no.type\",\"value\":\"AQAAAAAAAAA=\"}";

  private static byte[] zlib(String json) {
    return Bodies.deflate(Bodies.utf8(json));
  }

  private void run(byte[] body, int ways, boolean may) {
    List<ByteBuffer> parts = new ArrayList<>();
    for (int i = 0; i < body.length; i += 7) parts.add(ByteBuffer.wrap(body, i, Math.min(7, body.length - i)).slice());
    ingester.submit(new Ingester.Task() {
      @Override
      public void open(BodySource source) {
        opened++;
        List<ByteBuffer> fresh = new ArrayList<>();
        for (ByteBuffer b : parts) fresh.add(b.duplicate());
        source.open("deflate", fresh, 64 << 20);
      }

      @Override
      public Owners router() {
        return new Owners() {
          @Override
          public int ways() {
            return ways;
          }

          @Override
          public int slot(int index, int keyHash) {
            return index % ways;
          }
        };
      }

      @Override
      public dev.veneur.proxy.bus.RequestTrace trace() {
        return null;
      }

      @Override
      public boolean mayPassThrough() {
        return may;
      }

      @Override
      public byte[] passThroughBody(int metrics, long decodedBytes) {
        copies++;
        seen = new long[] {metrics, decodedBytes};
        return refuseCopy ? null : body.clone();
      }

      @Override
      public void done(Ingester.Result r) {
        result = r;
      }

      @Override
      public void failed(ImportRefusal r) {
        refusal = r;
      }
    });
    Runnable r;
    while ((r = later.poll()) != null) r.run();
    assertNotNull(result, "decoded: " + refusal);
  }

  /** What a JSON chunk inflates to. */
  private static String inflateRaw(MetricChunk c) throws Exception {
    Inflater inf = new Inflater(true);
    inf.setInput(c.payload);
    byte[] out = new byte[c.rawLength];
    int n = 0;
    while (n < out.length) {
      int k = inf.inflate(out, n, out.length - n);
      if (k == 0) break;
      n += k;
    }
    inf.end();
    assertEquals(c.rawLength, n);
    java.util.zip.Adler32 a = new java.util.zip.Adler32();
    a.update(out);
    assertEquals((int) a.getValue(), c.adler, "the chunk's Adler-32");
    return new String(out, StandardCharsets.UTF_8);
  }

  @Test
  void aBodyOfValidMetricsForOneSlotGoesAsItCame() throws Exception {
    String json = " [" + M1 + ",\n " + M2 + "]\n";
    byte[] body = zlib(json);
    run(body, 1, true);
    MetricChunk c = result.chunks[0];
    assertTrue(c.whole);
    assertArrayEquals(body, c.payload, "the very bytes received");
    assertEquals(json.length(), c.rawLength, "what they inflate to");
    assertEquals(2, c.count);
    assertEquals(2, result.valid);
    assertEquals(1, opened, "scanned once");
    assertEquals(1, copies);
    assertArrayEquals(new long[] {2, json.length()}, seen, "asked with its metrics and decoded bytes");
    assertEquals(body.length, budget.used(), "the chunk reserved, the rest given back");
    // Its JSON form, for the paths that need one: the elements between the brackets, as they were.
    MetricChunk j = c.asJson();
    assertFalse(j.whole);
    assertEquals(M1 + ",\n " + M2, inflateRaw(j));
    assertEquals(2, j.count);
    budget.release(c.bytes());
  }

  @Test
  void aDroppedMetricMakesItScannedAgainAndOnlyTheValidOnesGo() throws Exception {
    byte[] body = zlib("[" + M1 + "," + BAD + "," + M2 + "]");
    run(body, 1, true);
    MetricChunk c = result.chunks[0];
    assertFalse(c.whole);
    assertEquals(2, opened, "scanned again the usual way");
    assertEquals(0, copies, "no copy made for a body that cannot pass");
    assertEquals(2, result.valid);
    assertEquals(1, result.incomplete, "counted once, not twice");
    assertEquals(M1 + "," + M2, inflateRaw(c));
    budget.release(c.bytes());
    assertEquals(0, budget.used());
  }

  @Test
  void aTaskThatDeclinesTheCopyGoesTheUsualWay() throws Exception {
    // ImportIntake declines a body over batch_max_metrics or batch_max_bytes.
    refuseCopy = true;
    byte[] body = zlib("[" + M1 + "," + M2 + "]");
    run(body, 1, true);
    MetricChunk c = result.chunks[0];
    assertFalse(c.whole);
    assertEquals(2, opened);
    assertEquals(M1 + "," + M2, inflateRaw(c));
    budget.release(c.bytes());
    assertEquals(0, budget.used());
  }

  @Test
  void bytesAfterTheArrayMakeItGoTheUsualWay() throws Exception {
    byte[] body = zlib("[" + M1 + "," + M2 + "] trailing");
    run(body, 1, true);
    MetricChunk c = result.chunks[0];
    assertFalse(c.whole, "the global would ignore them, but they are not forwarded");
    assertEquals(2, opened);
    assertEquals(M1 + "," + M2, inflateRaw(c));
    budget.release(c.bytes());
  }

  @Test
  void twoSlotsOrATaskThatMayNotNeverPassThrough() throws Exception {
    byte[] body = zlib("[" + M1 + "," + M2 + "]");
    run(body, 2, true);
    assertFalse(result.chunks[0].whole);
    assertEquals(M1, inflateRaw(result.chunks[0]));
    assertEquals(M2, inflateRaw(result.chunks[1]));
    assertEquals(1, opened);
    budget.release(result.chunks[0].bytes());
    budget.release(result.chunks[1].bytes());
    result = null;
    run(body, 1, false);
    assertFalse(result.chunks[0].whole);
    assertEquals(0, copies);
    budget.release(result.chunks[0].bytes());
    assertEquals(0, budget.used());
  }

  @Test
  void aWholeChunkIsReadAgainAsTheRequestItWas() throws Exception {
    // Re-routing or splitting opens a whole chunk as a request body (ChunkService): the same
    // metrics come out, in JSON chunks.
    byte[] body = zlib("[" + M1 + "," + M2 + "]");
    MetricChunk whole = MetricChunk.whole(body, ("[" + M1 + "," + M2 + "]").length(), 2, null);
    BodySource s = new BodySource();
    s.open("deflate", List.of(ByteBuffer.wrap(whole.payload)), Long.MAX_VALUE);
    byte[] out = new byte[4096];
    int n = 0;
    for (int k; (k = s.read(out, n, out.length - n)) > 0; ) n += k;
    assertEquals("[" + M1 + "," + M2 + "]", new String(out, 0, n, StandardCharsets.UTF_8));
    s.close();
  }

  @Test
  void aBodyWhoseChecksumIsDamagedStillGoesAndHasItsJsonForm() throws Exception {
    // Accepted as a global's Go decoder accepts it (it stops at the end of the array).
    byte[] body = zlib("[" + M1 + "]");
    body[body.length - 1] ^= 0x55;
    run(body, 1, true);
    MetricChunk c = result.chunks[0];
    assertTrue(c.whole);
    assertEquals(M1, inflateRaw(c.asJson()));
    budget.release(c.bytes());
  }

  @Test
  void aNonWholeChunkIsItsOwnJsonForm() {
    MetricChunk j = new MetricChunk(new byte[] {0, 0, 0, (byte) 0xFF, (byte) 0xFF}, 0, 1, 0, null);
    assertTrue(j == j.asJson());
    MetricChunk broken = MetricChunk.whole(new byte[] {0x78, (byte) 0x9C, 1, 2, 3}, 10, 1, null);
    org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, broken::asJson);
  }
}
