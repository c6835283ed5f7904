package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.routing.Owners;
import dev.veneur.proxy.support.AttackBodies;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.wire.WholeInflate;
import io.vertx.core.json.JsonArray;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.zip.Inflater;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Differential: an Ingester that scans bodies libdeflate decoded whole, in place, against one that
 * streams them through zlib, on the same bodies and limits. Everything a sender or a global could
 * see must be the same: the counts, the refusal (status, cause, reason), and each destination's
 * metrics, byte for byte. And the budget closes at 0 for both.
 */
class WholeBodyIngestTest {
  private static final int WAYS = 3;

  @BeforeEach
  void libdeflateLoads() {
    assumeTrue(WholeInflate.available(), "libdeflate does not load here: " + WholeInflate.describe());
  }

  /** What one ingest gave: counts, refusal, and the JSON each slot's chunk holds. */
  private record Outcome(String counts, String refusal, List<String> slots) {}

  /** Bodies the last ingest scanned in place (decoded whole, not copied into the window). */
  private static long inPlace;

  private static Outcome ingest(boolean nativeInflate, byte[] body, int piece, FixedLimits limits, long maxInflated) {
    ArrayDeque<Runnable> later = new ArrayDeque<>();
    MemoryBudget budget = new MemoryBudget(() -> 1L << 30);
    Ingester ingester = new Ingester(later::add, budget, limits, null, nativeInflate);
    Ingester.Result[] result = new Ingester.Result[1];
    ImportRefusal[] refusal = new ImportRefusal[1];
    List<ByteBuffer> parts = new ArrayList<>();
    for (int i = 0; i < body.length; i += piece) parts.add(ByteBuffer.wrap(body, i, Math.min(piece, body.length - i)).slice());
    ingester.submit(new Ingester.Task() {
      @Override
      public void open(BodySource source) {
        source.open("deflate", parts, maxInflated);
      }

      @Override
      public Owners router() {
        return new Owners() {
          @Override
          public int ways() {
            return WAYS;
          }

          @Override
          public int slot(int index, int keyHash) {
            return Math.floorMod(keyHash, WAYS);
          }
        };
      }

      @Override
      public dev.veneur.proxy.bus.RequestTrace trace() {
        return null;
      }

      @Override
      public void done(Ingester.Result r) {
        result[0] = r;
      }

      @Override
      public void failed(ImportRefusal r) {
        refusal[0] = r;
      }
    });
    Runnable r;
    while ((r = later.poll()) != null) r.run();
    List<String> slots = new ArrayList<>();
    String counts = null;
    if (result[0] != null) {
      Ingester.Result res = result[0];
      counts = res.valid + "/" + res.refused + "/" + res.incomplete + "/" + res.empty
          + (res.refusal == null ? "" : " " + res.refusal);
      for (MetricChunk c : res.chunks) {
        // Length and hash: a failure prints a line, not the metrics (some are megabytes).
        String json = c == null ? null : inflate(c);
        slots.add(json == null ? null : json.length() + "#" + Integer.toHexString(json.hashCode()));
        if (c != null) budget.release(c.bytes());
      }
    }
    inPlace = ingester.scannedInPlace;
    ingester.close();
    assertEquals(0, budget.used(), "the budget closes (native " + nativeInflate + ")");
    return new Outcome(counts, refusal[0] == null ? null
        : refusal[0].status + " " + refusal[0].cause + " " + refusal[0].reason(), slots);
  }

  private static String inflate(MetricChunk c) {
    Inflater inf = new Inflater(true);
    inf.setInput(c.payload);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[65536];
    try {
      int n;
      while ((n = inf.inflate(buf)) > 0 || !inf.needsInput()) out.write(buf, 0, n);
    } catch (java.util.zip.DataFormatException e) {
      throw new AssertionError(e);
    }
    inf.end();
    return out.toString(java.nio.charset.StandardCharsets.UTF_8);
  }

  private static void same(byte[] body, FixedLimits limits, long maxInflated, String what) {
    for (int piece : new int[] {body.length, 1500}) {
      Outcome zlib = ingest(false, body, piece, limits, maxInflated);
      Outcome whole = ingest(true, body, piece, limits, maxInflated);
      assertEquals(zlib, whole, what + ", pieces of " + piece);
    }
  }

  private static final FixedLimits DEFAULTS = new FixedLimits(1 << 20, 4 << 20, 1, true);

  @Test
  void veneurBodiesGiveTheSameChunks() {
    byte[] large = Bodies.deflate(Bodies.resource("fixtures/captured/large.json"));
    Outcome o = ingest(true, large, large.length, DEFAULTS, 64 << 20);
    assertNotNull(o.counts());
    assertEquals(1, inPlace, "scanned where libdeflate decoded it");
    ingest(false, large, large.length, DEFAULTS, 64 << 20);
    assertEquals(0, inPlace, "zlib alone: read through the window");
    assertTrue(o.slots().stream().filter(s -> s != null && !s.startsWith("0#")).count() >= 2, "spread over the slots");
    same(large, DEFAULTS, 64 << 20, "captured large");
    same(Bodies.resource("fixtures/veneur-v2.0.0/import.deflate"), DEFAULTS, 64 << 20, "Go fixture");
    same(Bodies.deflate(Bodies.utf8(Bodies.generate("g", 3000, 7).encode())), new FixedLimits(1 << 20, 4 << 20, 1, false),
        64 << 20, "3000 generated, zlib chunks");
  }

  @Test
  void limitsAnswerTheSame() {
    // A metric over max_metric_bytes in a body larger than it (streamed), and in one smaller (whole).
    byte[] longOne = AttackBodies.longStrings(300_000);
    same(longOne, new FixedLimits(1 << 20, 256 << 10, 1, true), 64 << 20, "metric over max_metric_bytes");
    assertEquals(0, inPlace, "a body larger than max_metric_bytes goes through the window, which says too_long");
    same(longOne, new FixedLimits(1 << 20, 2 << 20, 1, true), 64 << 20, "metric under max_metric_bytes");
    assertEquals(1, inPlace);
    same(longOne, new FixedLimits(100_000, 4 << 20, 1, true), 64 << 20, "string over max_string_length");
    same(AttackBodies.bomb(8 << 20), DEFAULTS, 2 << 20, "bomb over max_inflated_bytes");
    byte[] json = Bodies.utf8(Bodies.generate("m", 2000, 3).encode());
    same(Bodies.deflate(json), DEFAULTS, json.length, "exactly max_inflated_bytes");
    same(Bodies.deflate(json), DEFAULTS, json.length - 1, "one byte over max_inflated_bytes");
  }

  @Test
  void damagedAndOddBodiesAnswerTheSame() {
    Random rnd = new Random(1919);
    JsonArray sample = Bodies.generate("d", 800, 11);
    String text = sample.encode();
    byte[] good = Bodies.deflate(Bodies.utf8(text));
    List<byte[]> bodies = new ArrayList<>();
    bodies.add(Bodies.deflate(Bodies.utf8(text + "   \n")));
    bodies.add(Bodies.deflate(Bodies.utf8(text + " trailing")));
    bodies.add(Bodies.deflate(Bodies.utf8(text.replaceFirst("\"type\":\"[a-z]+\"", "\"type\":\"\""))));
    bodies.add(Bodies.deflate(Bodies.utf8(text.substring(0, text.length() / 2))));
    bodies.add(Bodies.deflate(Bodies.utf8("[]")));
    bodies.add(Bodies.deflate(Bodies.utf8("null")));
    for (int i = 0; i < 40; i++) bodies.add(Arrays.copyOf(good, 2 + rnd.nextInt(good.length - 2)));
    for (int i = 0; i < 40; i++) {
      byte[] b = good.clone();
      b[2 + rnd.nextInt(b.length - 2)] ^= (byte) (1 << rnd.nextInt(8));
      bodies.add(b);
    }
    for (int i = 0; i < bodies.size(); i++) same(bodies.get(i), DEFAULTS, 64 << 20, "body " + i);
  }
}
