package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.wire.WholeInflate;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link BodySourceTest}'s cases again with libdeflate decoding whole bodies first, and what is
 * particular to it: it really is used, it answers exactly as zlib's streaming would (a fallback,
 * never a second opinion), and its scratch stays within the memory budget.
 */
class WholeBodySourceTest extends BodySourceTest {
  @Override
  BodySource newSource(MemoryBudget budget) {
    return new BodySource(budget, true);
  }

  @BeforeEach
  void libdeflateLoads() {
    // It ships for Linux, macOS and Windows on x86-64 and arm64; elsewhere zlib does it all.
    assumeTrue(WholeInflate.available(), "libdeflate does not load here: " + WholeInflate.describe());
  }

  /** Bytes of Veneur JSON metrics, about {@code bytes} of them. */
  private static byte[] metrics(int bytes) {
    byte[] sample = Bodies.resource("fixtures/veneur-v2.0.0/import.uncompressed");
    String inner = new String(sample, java.nio.charset.StandardCharsets.UTF_8).trim();
    inner = inner.substring(1, inner.length() - 1);
    StringBuilder b = new StringBuilder("[");
    for (int i = 0; b.length() < bytes; i++) {
      if (i > 0) b.append(',');
      b.append(inner.replace("\"name\":\"", "\"name\":\"n" + i + "."));
    }
    return Bodies.utf8(b.append(']').toString());
  }

  @Test
  void veneurBodiesAreDecodedWholeWhateverTheirFraming() {
    byte[] deflated = Bodies.resource("fixtures/veneur-v2.0.0/import.deflate");
    byte[] plain = Bodies.resource("fixtures/veneur-v2.0.0/import.uncompressed");
    for (int piece : new int[] {1, 3, 1000, deflated.length}) {
      source.open("deflate", pieces(deflated, piece), 1 << 20);
      assertTrue(source.decodedWhole(), "pieces of " + piece);
      assertArrayEquals(plain, readAll(100), "pieces of " + piece);
      source.close();
    }
    // A bare deflate stream (no zlib header) too; identity and gzip are not its business.
    byte[] raw = Arrays.copyOfRange(deflated, 2, deflated.length - 4);
    source.open("deflate", pieces(raw, 500), 1 << 20);
    assertTrue(source.decodedWhole());
    assertArrayEquals(plain, readAll(4096));
    source.open(null, pieces(plain, 64), 1 << 20);
    assertFalse(source.decodedWhole());
  }

  @Test
  void aBodyLargerThanTheScratchGrowsItWithinTheBudgetAndGivesItBack() {
    byte[] plain = metrics(3 << 20);
    byte[] deflated = Bodies.deflate(plain);
    source.open("deflate", pieces(deflated, 16 * 1024), 64 << 20);
    assertTrue(source.decodedWhole());
    assertTrue(budget.used() > 0, "the growth past the base is reserved");
    assertArrayEquals(plain, readAll(256 * 1024));
    source.close();
    assertEquals(0, budget.used());
  }

  @Test
  void withTheBudgetFullTheBodyIsStreamedInstead() {
    MemoryBudget full = new MemoryBudget(() -> 1000);
    BodySource s = new BodySource(full, true);
    byte[] plain = metrics(3 << 20);
    s.open("deflate", pieces(Bodies.deflate(plain), 16 * 1024), 64 << 20);
    assertFalse(s.decodedWhole());
    assertArrayEquals(plain, readAll(s, 65536));
    s.close();
    assertEquals(0, full.used());
  }

  @Test
  void aBodyOverTheLimitIsRefusedAtTheSameByteAsZlibRefusesIt() {
    byte[] plain = metrics(600_000);
    byte[] deflated = Bodies.deflate(plain);
    for (long limit : new long[] {plain.length - 1L, plain.length - 1000L, 100_000L}) {
      source.open("deflate", pieces(deflated, 4096), limit);
      byte[] w = new byte[65536];
      ImportRefusal r = assertThrows(ImportRefusal.class, () -> {
        while (source.read(w, 0, w.length) >= 0) { }
      });
      assertEquals(413, r.status);
      assertEquals(limit + 1, source.produced(), "limit " + limit);
      BodySource zlib = new BodySource();
      zlib.open("deflate", pieces(deflated, 4096), limit);
      assertThrows(ImportRefusal.class, () -> {
        while (zlib.read(w, 0, w.length) >= 0) { }
      });
      assertEquals(zlib.produced(), source.produced(), "limit " + limit);
    }
    source.open("deflate", pieces(deflated, 4096), plain.length);
    assertTrue(source.decodedWhole(), "a body of exactly the limit is whole");
    assertArrayEquals(plain, readAll(65536));
  }

  /**
   * Differential: bodies cut short, bit-flipped, or with bytes after their end, decoded by zlib
   * alone and by libdeflate first, give the same bytes up to the same refusal (status, cause,
   * reason) after the same number of bytes.
   */
  @Test
  void damagedBodiesGetExactlyZlibsAnswers() {
    Random rnd = new Random(19);
    byte[] plain = metrics(200_000);
    byte[] good = Bodies.deflate(plain);
    int whole = 0;
    for (int round = 0; round < 400; round++) {
      byte[] body;
      switch (round % 4) {
        case 0:
          body = Arrays.copyOf(good, 2 + rnd.nextInt(good.length - 2));
          break;
        case 1:
          body = good.clone();
          for (int k = 0; k <= rnd.nextInt(3); k++) body[2 + rnd.nextInt(body.length - 2)] ^= (byte) (1 << rnd.nextInt(8));
          break;
        case 2:
          body = Arrays.copyOf(good, good.length + 1 + rnd.nextInt(100));
          for (int k = good.length; k < body.length; k++) body[k] = (byte) rnd.nextInt(256);
          break;
        default:
          body = good;
      }
      int piece = 1 + rnd.nextInt(20_000);
      long limit = rnd.nextBoolean() ? 64 << 20 : 50_000 + rnd.nextInt(plain.length);
      Outcome expected = outcome(new BodySource(), body, piece, limit);
      assertFalse(expected.whole());
      Outcome got = outcome(source, body, piece, limit);
      if (got.whole()) whole++;
      assertEquals(expected.withWhole(got.whole()), got, "round " + round);
    }
    assertTrue(whole >= 100, "libdeflate decoded the intact ones: " + whole);
  }

  private record Outcome(int bytes, int hash, String refusal, long produced, boolean whole) {
    Outcome withWhole(boolean w) {
      return new Outcome(bytes, hash, refusal, produced, w);
    }
  }

  private static Outcome outcome(BodySource s, byte[] body, int piece, long limit) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    String refusal = null;
    boolean whole = false;
    try {
      s.open("deflate", pieces(body, piece), limit);
      whole = s.decodedWhole();
      byte[] w = new byte[40_000];
      int n;
      while ((n = s.read(w, 0, w.length)) >= 0) out.write(w, 0, n);
    } catch (ImportRefusal r) {
      refusal = r.status + " " + r.cause + " " + r.reason();
    }
    byte[] got = out.toByteArray();
    Outcome o = new Outcome(got.length, Arrays.hashCode(got), refusal, s.produced(), whole);
    s.close();
    return o;
  }

  @Test
  void turnedOffItIsNeverUsed() {
    BodySource off = new BodySource(budget, false);
    off.open("deflate", pieces(Bodies.resource("fixtures/veneur-v2.0.0/import.deflate"), 100), 1 << 20);
    assertFalse(off.decodedWhole());
    BodySource plainSource = new BodySource();
    plainSource.open("deflate", pieces(Bodies.resource("fixtures/veneur-v2.0.0/import.deflate"), 100), 1 << 20);
    assertFalse(plainSource.decodedWhole(), "no budget, no scratch: zlib only");
  }

  @Test
  void theNativeCallAnswersMinusOneForWhatItCannotFinish() {
    WholeInflate w = WholeInflate.create();
    byte[] deflated = Bodies.resource("fixtures/veneur-v2.0.0/import.deflate");
    byte[] plain = Bodies.resource("fixtures/veneur-v2.0.0/import.uncompressed");
    byte[] out = new byte[plain.length + 10];
    assertEquals(plain.length, w.inflate(deflated, 2, deflated.length - 2, out, 0, out.length));
    assertArrayEquals(plain, Arrays.copyOf(out, plain.length));
    assertEquals(-1, w.inflate(deflated, 2, deflated.length - 2, out, 0, plain.length - 1), "no room");
    assertEquals(-1, w.inflate(deflated, 2, deflated.length / 2, out, 0, out.length), "cut short");
    assertEquals(-1, w.inflate(new byte[] {(byte) 0xff, 1, 2}, 0, 3, out, 0, out.length), "not deflate");
    w.close();
  }
}
