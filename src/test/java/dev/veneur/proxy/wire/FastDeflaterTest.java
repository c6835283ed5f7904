package dev.veneur.proxy.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.tools.SyntheticMetrics;
import io.vertx.core.json.JsonArray;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.Adler32;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;

/**
 * {@link FastDeflater} against the JDK's zlib inflater: every output must inflate to its input as
 * a raw deflate stream that is not finished (no final block) and ends byte-aligned, so outputs
 * concatenate into one stream, raw or zlib-wrapped, as the proxy joins chunks.
 */
class FastDeflaterTest {
  private static final Path CAPTURED = Path.of("src/test/resources/fixtures/captured");
  /** What a sync flush ends in (the byte before holds the block header among earlier bits). */
  private static final byte[] SYNC_TAIL = {0, 0, (byte) 0xFF, (byte) 0xFF};
  /** An empty stored block with BFINAL set: what closes a joined stream. */
  private static final byte[] FINAL = {1, 0, 0, (byte) 0xFF, (byte) 0xFF};

  private final FastDeflater deflater = new FastDeflater();

  /** Compresses with the room the API asks for, exactly, and checks the bound and the framing. */
  private static byte[] deflate(FastDeflater d, byte[] in) {
    byte[] out = new byte[FastDeflater.maxCompressedLength(in.length)];
    int n = d.deflateSync(in, 0, in.length, out, 0);
    assertTrue(n <= FastDeflater.maxCompressedLength(in.length), "over the bound: " + n);
    assertArrayEquals(SYNC_TAIL, Arrays.copyOfRange(out, n - 4, n), "ends in a sync flush");
    assertEquals(0, out[0] & 1, "first block is not final");
    return Arrays.copyOf(out, n);
  }

  private byte[] deflate(byte[] in) {
    return deflate(deflater, in);
  }

  /**
   * Inflates one output as a raw stream, checking that all of it is consumed and the stream is
   * not finished: a final block would stop a joined stream there.
   */
  private static byte[] inflate(byte[] compressed, int expected) throws DataFormatException {
    Inflater inf = new Inflater(true);
    try {
      inf.setInput(compressed);
      byte[] out = new byte[expected + 1];
      int n = 0;
      while (n < out.length) {
        int k = inf.inflate(out, n, out.length - n);
        if (k == 0) break;
        n += k;
      }
      assertEquals(expected, n, "inflated length");
      assertFalse(inf.finished(), "no final block");
      assertEquals(0, inf.getRemaining(), "every byte consumed");
      return Arrays.copyOf(out, n);
    } finally {
      inf.end();
    }
  }

  private byte[] roundTrip(byte[] in) throws DataFormatException {
    byte[] c = deflate(in);
    assertArrayEquals(in, inflate(c, in.length));
    return c;
  }

  private static byte[] zlibLevel1(byte[] in) {
    Deflater d = new Deflater(1, true);
    d.setInput(in);
    byte[] out = new byte[in.length + in.length / 10 + 1024];
    int n = 0;
    do {
      n += d.deflate(out, n, out.length - n, Deflater.SYNC_FLUSH);
    } while (!d.needsInput());
    d.end();
    return Arrays.copyOf(out, n);
  }

  /** The block type of the first block: 0 stored, 1 fixed, 2 dynamic Huffman. */
  private static int firstBlockType(byte[] c) {
    return (c[0] >> 1) & 3;
  }

  /** Output size over zlib level 1's, asserted at most {@code max}. */
  private static void closeToZlib(String what, byte[] json, byte[] c, double max) {
    int zlib = zlibLevel1(json).length;
    assertTrue(c.length <= zlib * max, what + ": " + c.length + " bytes, zlib level 1 " + zlib);
  }

  @Test
  void capturedVeneurOutputRoundTripsCloseToZlibLevel1() throws Exception {
    // A first call starts with a block in the fixed codes (the fresh deflater knows nothing of
    // the data), then dynamic codes, each block's from the counts of the block before: within
    // 10% of zlib (the fixed codes alone would be 15% over, exact dynamic codes 0.5%).
    byte[] large = Files.readAllBytes(CAPTURED.resolve("large.json"));
    byte[] c = roundTrip(large);
    assertEquals(1, firstBlockType(c));
    closeToZlib("large.json, first call", large, c, 1.10);
    // Later calls start in dynamic codes built from the calls before.
    c = roundTrip(large);
    assertEquals(2, firstBlockType(c));
    closeToZlib("large.json, second call", large, c, 1.08);
    byte[] small = Files.readAllBytes(CAPTURED.resolve("small.json"));
    closeToZlib("small.json", small, roundTrip(small), 1.20);
    deflater.reset();
    closeToZlib("small.json, from scratch", small, roundTrip(small), 1.25);
  }

  @Test
  void theBenchmarksBodyRoundTripsCloseToZlibLevel1() throws Exception {
    JsonArray sample = new JsonArray(Files.readString(CAPTURED.resolve("large.json")));
    byte[] json = SyntheticMetrics.fromSample(sample, 1000, 1);
    closeToZlib("first call", json, roundTrip(json), 1.05);
    closeToZlib("second call", json, roundTrip(json), 1.03);
    // As ChunkWriter stages it: 64 KiB pieces, each its own call.
    ByteArrayOutputStream pieces = new ByteArrayOutputStream();
    for (int p = 0; p < json.length; p += 65536) {
      pieces.writeBytes(roundTrip(Arrays.copyOfRange(json, p, Math.min(json.length, p + 65536))));
    }
    closeToZlib("64 KiB pieces", json, pieces.toByteArray(), 1.10);
  }

  @Test
  void anEmptyInputIsTheSyncMarkerAlone() throws Exception {
    byte[] c = roundTrip(new byte[0]);
    assertArrayEquals(new byte[] {0, 0, 0, (byte) 0xFF, (byte) 0xFF}, c);
  }

  @Test
  void oneByteGoesInAFixedHuffmanBlock() throws Exception {
    for (int b = 0; b < 256; b++) {
      byte[] c = roundTrip(new byte[] {(byte) b});
      assertEquals(1, firstBlockType(c), "byte " + b);
      assertTrue(c.length <= 8, "byte " + b + ": " + c.length + " bytes");
    }
  }

  @Test
  void allByteValuesRoundTrip() throws Exception {
    byte[] all = new byte[256];
    for (int i = 0; i < 256; i++) all[i] = (byte) i;
    roundTrip(all);
    // Each value several times, in order and shuffled: matches and literals of every value.
    byte[] many = new byte[256 * 40];
    for (int i = 0; i < many.length; i++) many[i] = (byte) i;
    roundTrip(many);
    Random r = new Random(1);
    for (int i = many.length - 1; i > 0; i--) {
      int j = r.nextInt(i + 1);
      byte t = many[i];
      many[i] = many[j];
      many[j] = t;
    }
    roundTrip(many);
  }

  @Test
  void aLongRunIsMaximalMatchesAtDistanceOne() throws Exception {
    for (int b : new int[] {0, 'a', 0xFF}) {
      byte[] run = new byte[1 << 20];
      Arrays.fill(run, (byte) b);
      byte[] c = roundTrip(run);
      // 4065 matches of 258 bytes; at a few bits each, far below a byte per match.
      assertTrue(c.length < run.length / 258, c.length + " bytes for a 1 MiB run");
    }
  }

  @Test
  void incompressibleInputIsStoredWithinTheBound() throws Exception {
    Random r = new Random(2);
    byte[] json = Files.readAllBytes(CAPTURED.resolve("large.json"));
    for (int len : new int[] {1000, 8191, 8192, 8193, 65534, 65535, 65536, 73727, 73728, 200_000}) {
      byte[] noise = new byte[len];
      r.nextBytes(noise);
      // From scratch (a first block in the fixed codes), and after JSON, whose statistics make
      // dynamic codes that would stretch random bytes: either way stored blocks.
      for (boolean afterJson : new boolean[] {false, true}) {
        deflater.reset();
        if (afterJson) deflate(json);
        byte[] c = roundTrip(noise);
        assertEquals(0, firstBlockType(c), len + " random bytes");
        int blocks = len <= FastDeflater.FIRST_BLOCK ? 1
            : 1 + (len - FastDeflater.FIRST_BLOCK + FastDeflater.BLOCK - 1) / FastDeflater.BLOCK;
        assertTrue(c.length <= len + 5 * blocks + 5, len + " random bytes took " + c.length);
      }
    }
  }

  @Test
  void inputsOver64KiBAndOverSeveralMiBRoundTrip() throws Exception {
    byte[] json = Files.readAllBytes(CAPTURED.resolve("large.json"));
    for (int len : new int[] {65535, 65536, 65537, 70_000, 131_071, 131_072, 300_001}) {
      roundTrip(Arrays.copyOf(json, len));
    }
    // A single 5 MiB input: the fixture over and over with every copy altered a little, so
    // matches reach across block boundaries within the call.
    byte[] big = new byte[5 << 20];
    Random r = new Random(3);
    for (int p = 0; p < big.length; p += json.length) {
      System.arraycopy(json, 0, big, p, Math.min(json.length, big.length - p));
      for (int k = 0; k < 200; k++) {
        int at = p + r.nextInt(json.length);
        if (at < big.length) big[at] = (byte) r.nextInt(256);
      }
    }
    byte[] c = roundTrip(big);
    assertTrue(c.length < big.length / 4, c.length + " bytes");
  }

  /**
   * A 1000-byte random string repeated {@code gap} bytes later, compressible text between that
   * shares no 4 bytes with it (so the matcher keeps looking at every position).
   */
  private static byte[] repeatAfter(int gap) {
    Random r = new Random(4);
    byte[] x = new byte[1000];
    for (int i = 0; i < x.length; i++) x[i] = (byte) (128 + r.nextInt(128));
    byte[] text = "the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. "
        .getBytes(StandardCharsets.US_ASCII);
    byte[] b = new byte[gap + x.length];
    System.arraycopy(x, 0, b, 0, x.length);
    for (int i = x.length; i < gap; i++) b[i] = text[(i * 7 / 5) % text.length];
    System.arraycopy(x, 0, b, gap, x.length);
    return b;
  }

  @Test
  void matchesReachExactlyTheWindowAndNoFurther() throws Exception {
    byte[] atLimit = roundTrip(repeatAfter(FastDeflater.WINDOW));
    byte[] pastLimit = roundTrip(repeatAfter(FastDeflater.WINDOW + 1));
    // At 32768 the second copy is one match; at 32769 it can only be literals (~1000 bytes).
    assertTrue(atLimit.length + 500 < pastLimit.length, atLimit.length + " vs " + pastLimit.length);
  }

  @Test
  void everyMatchLengthAroundTheLengthCodesRoundTrips() throws Exception {
    Random r = new Random(5);
    byte[] text = "JSON {\"name\":\"x\",\"tags\":[]} ".getBytes(StandardCharsets.US_ASCII);
    for (int len = 3; len <= 520; len++) {
      // A random string of len bytes twice, between and around text it cannot match.
      byte[] x = new byte[len];
      for (int i = 0; i < len; i++) x[i] = (byte) (128 + r.nextInt(128));
      byte[] b = new byte[40 + len + 17 + len + 9];
      int p = 0;
      for (int i = 0; i < 40; i++) b[p++] = text[i % text.length];
      System.arraycopy(x, 0, b, p, len);
      p += len;
      for (int i = 0; i < 17; i++) b[p++] = (byte) ('a' + i);
      System.arraycopy(x, 0, b, p, len);
      p += len;
      for (int i = 0; i < 9; i++) b[p++] = (byte) ('0' + i);
      roundTrip(b);
    }
  }

  /**
   * Random bytes over a small or full alphabet, runs, pieces of {@code json}, and copies of
   * earlier bytes at any distance: blocks whose statistics differ from the last block's.
   */
  private static byte[] mixed(Random r, int len, byte[] json) {
    byte[] b = new byte[len];
    int alphabet = new int[] {2, 4, 16, 64, 256}[r.nextInt(5)];
    int i = 0;
    while (i < len) {
      int kind = r.nextInt(12);
      int n = Math.min(len - i, 1 + r.nextInt(kind < 3 ? 40 : 600));
      if (kind < 4 || i == 0) {
        for (int k = 0; k < n; k++) b[i++] = (byte) r.nextInt(alphabet);
      } else if (kind < 5) {
        byte v = (byte) r.nextInt(256);
        for (int k = 0; k < n; k++) b[i++] = v;
      } else if (kind < 7) {
        System.arraycopy(json, r.nextInt(json.length - n), b, i, n);
        i += n;
      } else {
        // Overlapping copies too (distance below the length), near and up to past the window.
        int dist = 1 + r.nextInt(Math.min(i, r.nextBoolean() ? 300 : 40_000));
        for (int k = 0; k < n; k++, i++) b[i] = b[i - dist];
      }
    }
    return b;
  }

  @Test
  void seededFuzzRoundTripsWithinTheBound() throws Exception {
    Random r = new Random(6);
    byte[] json = Files.readAllBytes(CAPTURED.resolve("large.json"));
    for (int round = 0; round < 3000; round++) {
      // Statistics carry from call to call (mixed ones, of all sizes), or start over.
      if (round % 97 == 0) deflater.reset();
      int len = round % 50 == 0 ? r.nextInt(300_000) : r.nextInt(round % 3 == 0 ? 40 : 12_000);
      byte[] in = mixed(r, len, json);
      // Somewhere inside larger arrays, which must not matter.
      int off = r.nextInt(20);
      int outOff = r.nextInt(20);
      byte[] src = new byte[off + len + r.nextInt(20)];
      r.nextBytes(src);
      System.arraycopy(in, 0, src, off, len);
      byte[] out = new byte[outOff + FastDeflater.maxCompressedLength(len)];
      Arrays.fill(out, (byte) 0x5A);
      int n = deflater.deflateSync(src, off, len, out, outOff);
      assertTrue(n <= FastDeflater.maxCompressedLength(len), "round " + round + ": over the bound");
      for (int k = 0; k < outOff; k++) assertEquals(0x5A, out[k], "wrote before outOff");
      assertArrayEquals(in, inflate(Arrays.copyOfRange(out, outOff, outOff + n), len), "round " + round);
    }
  }

  @Test
  void afterResetEachCallDependsOnItsInputAlone() throws Exception {
    // Calls share statistics (so codes), never data: after reset() a reused deflater writes
    // exactly what a fresh one writes, whatever it compressed before (the same text included:
    // a back-reference into it would show).
    byte[] json = Files.readAllBytes(CAPTURED.resolve("small.json"));
    byte[] fresh = deflate(new FastDeflater(), json);
    for (int i = 0; i < 3; i++) {
      assertArrayEquals(fresh, roundTrip(json), "a fresh (or reset) deflater");
      byte[] warm = roundTrip(json);
      assertEquals(2, firstBlockType(warm), "dynamic codes from the call before");
      assertTrue(warm.length < fresh.length, warm.length + " vs " + fresh.length);
      // A small call does not count enough to replace the statistics.
      byte[] steady = roundTrip(json);
      roundTrip(Arrays.copyOf(json, 100));
      assertArrayEquals(steady, roundTrip(json), "the same statistics as before the small call");
      deflater.reset();
    }
  }

  @Test
  void reusedCodesStillWriteBytesTheirCountsNeverSaw() throws Exception {
    // Codes built on JSON (ASCII only) serve the next blocks whatever they hold: bytes of every
    // value, which the counts never saw, must still be written (every symbol has a code), and a
    // block those codes make bigger than stored comes out stored. Both inflate exactly.
    byte[] json = Files.readAllBytes(CAPTURED.resolve("small.json"));
    roundTrip(json);
    assertEquals(2, firstBlockType(roundTrip(json)), "dynamic codes built on JSON");
    Random r = new Random(19);
    byte[] binary = new byte[20_000];
    r.nextBytes(binary);
    byte[] stored = roundTrip(binary);
    assertTrue(stored.length <= FastDeflater.maxCompressedLength(binary.length));
    byte[] allValues = new byte[20_000];
    for (int i = 0; i < allValues.length; i++) allValues[i] = (byte) (i % 7 == 0 ? i * 31 : json[i % json.length]);
    roundTrip(allValues);
    roundTrip(json);
  }

  @Test
  void reusedCodesAreRebuiltFromTheNewestCountsWithinTheReuseSpan() throws Exception {
    // Deflater a learned on JSON, then sees digits; deflater b only ever saw the digits. Once a
    // has compressed REUSE_BYTES of digits, its codes are rebuilt from the digits' counts and it
    // writes exactly what b writes (no data is shared between calls, only codes).
    byte[] json = Files.readAllBytes(CAPTURED.resolve("large.json"));
    StringBuilder sb = new StringBuilder();
    Random r = new Random(7);
    while (sb.length() < 40_000) sb.append(r.nextInt(1000)).append(' ');
    byte[] digits = sb.toString().getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    FastDeflater a = new FastDeflater();
    FastDeflater b = new FastDeflater();
    for (int i = 0; i < 3; i++) deflate(a, json);
    byte[] warmB = null;
    for (int i = 0; i < 3; i++) warmB = deflate(b, digits);
    byte[] firstA = deflate(a, digits);
    assertFalse(Arrays.equals(firstA, warmB), "a still codes digits with codes built on JSON");
    int calls = FastDeflater.REUSE_BYTES / digits.length + 2;
    byte[] lastA = null;
    byte[] lastB = null;
    for (int i = 0; i < calls; i++) {
      lastA = deflate(a, digits);
      lastB = deflate(b, digits);
    }
    // b built its first codes on the 8 KiB block it learned from, a on JSON: by now both have
    // rebuilt them from a whole block of digits, the same counts.
    assertArrayEquals(lastB, lastA, "a's codes were rebuilt from the digits");
    assertArrayEquals(digits, inflate(lastA, digits.length));
  }

  @Test
  void positionsWrapAroundSafely() throws Exception {
    byte[] json = Files.readAllBytes(CAPTURED.resolve("small.json"));
    byte[] fresh = deflate(new FastDeflater(), json);
    // The last call before the table is cleared: positions reach Integer.MAX_VALUE - WINDOW - 1.
    deflater.next = Integer.MAX_VALUE - FastDeflater.WINDOW - 1 - json.length;
    assertArrayEquals(fresh, deflate(json));
    // The next call starts over.
    deflater.reset();
    assertArrayEquals(fresh, deflate(json));
    assertEquals(FastDeflater.WINDOW + 1 + json.length + FastDeflater.WINDOW + 1, deflater.next);
  }

  @Test
  void concatenatedOutputsInflateAsOneStream() throws Exception {
    Random r = new Random(7);
    byte[] json = Files.readAllBytes(CAPTURED.resolve("large.json"));
    for (int round = 0; round < 20; round++) {
      ByteArrayOutputStream plain = new ByteArrayOutputStream();
      ByteArrayOutputStream joined = new ByteArrayOutputStream();
      int pieces = 1 + r.nextInt(8);
      for (int p = 0; p < pieces; p++) {
        // Real text, random bytes, empty pieces and bigger-than-a-block pieces alike.
        int len = r.nextInt(4) == 0 ? 0 : r.nextInt(r.nextBoolean() ? 2000 : 100_000);
        byte[] piece = r.nextBoolean() ? Arrays.copyOfRange(json, 0, len) : mixed(r, len, json);
        plain.writeBytes(piece);
        joined.writeBytes(deflate(piece));
      }
      joined.writeBytes(FINAL);
      byte[] expected = plain.toByteArray();
      assertArrayEquals(expected, inflateToEnd(new Inflater(true), joined.toByteArray(), expected.length),
          "round " + round);
    }
  }

  @Test
  void aZlibWrappedBodyInflatesWithAChecksumCheckingInflater() throws Exception {
    // What a global receives: a zlib header, the chunks, a final empty block, the Adler-32.
    byte[] json = Files.readAllBytes(CAPTURED.resolve("large.json"));
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.write(0x78);
    body.write(0x01);
    Adler32 adler = new Adler32();
    int[] cuts = {0, 65536, 65536, 200_000, json.length};
    for (int i = 1; i < cuts.length; i++) {
      byte[] piece = Arrays.copyOfRange(json, cuts[i - 1], cuts[i]);
      adler.update(piece);
      body.writeBytes(deflate(piece));
    }
    body.writeBytes(FINAL);
    int a = (int) adler.getValue();
    body.writeBytes(new byte[] {(byte) (a >>> 24), (byte) (a >>> 16), (byte) (a >>> 8), (byte) a});
    assertArrayEquals(json, inflateToEnd(new Inflater(), body.toByteArray(), json.length));
  }

  /**
   * Inflates a whole stream that ends in a final block (raw or zlib-wrapped, as {@code inf} reads
   * it): it must finish without stalling and leave nothing after its end. At most one byte more
   * than {@code expected} is read, so a longer output fails the comparison that follows.
   */
  private static byte[] inflateToEnd(Inflater inf, byte[] stream, int expected) throws DataFormatException {
    inf.setInput(stream);
    byte[] out = new byte[expected + 1];
    int n = 0;
    while (!inf.finished()) {
      int k = inf.inflate(out, n, out.length - n);
      assertTrue(k > 0 || inf.finished(), "stalled at " + n);
      n += k;
    }
    assertEquals(0, inf.getRemaining());
    inf.end();
    return Arrays.copyOf(out, n);
  }

  @Test
  void huffmanCodesAreCompleteAndWithinTheirLengthLimit() {
    Random r = new Random(8);
    // Up to 46368: a block's frequencies stay below 65536.
    int[] fib = new int[24];
    fib[0] = 1;
    fib[1] = 1;
    for (int i = 2; i < fib.length; i++) fib[i] = fib[i - 1] + fib[i - 2];
    for (int round = 0; round < 2000; round++) {
      int n = new int[] {19, 30, 286}[round % 3];
      int limit = n == 19 ? 7 : 15;
      int[] freq = new int[n];
      if (round < 3) {
        // Distinct Fibonacci weights give the deepest unlimited trees (one level per symbol:
        // 18 or 23 here), so the limit has to be enforced.
        for (int k = 0; k < Math.min(n, fib.length); k++) freq[k] = fib[k];
      } else {
        int used = r.nextInt(n + 1);
        for (int k = 0; k < used; k++) {
          freq[r.nextInt(n)] = round % 2 == 0 ? fib[r.nextInt(fib.length)] : 1 + r.nextInt(65535);
        }
      }
      int[] lengths = new int[n];
      deflater.buildLengths(freq, n, limit, lengths);
      long kraft = 0;
      int coded = 0;
      for (int i = 0; i < n; i++) {
        assertTrue(lengths[i] >= 0 && lengths[i] <= limit, "length " + lengths[i]);
        if (freq[i] != 0) assertTrue(lengths[i] > 0, "used symbol " + i + " has no code");
        if (lengths[i] > 0) {
          kraft += 1L << (limit - lengths[i]);
          coded++;
        }
      }
      assertTrue(coded >= 2, "at least two codes");
      assertEquals(1L << limit, kraft, "complete code, round " + round);
      // A more frequent symbol never gets a longer code.
      Integer[] bySymbolFrequency = new Integer[n];
      for (int i = 0; i < n; i++) bySymbolFrequency[i] = i;
      Arrays.sort(bySymbolFrequency, (x, y) -> Integer.compare(freq[x], freq[y]));
      for (int k = 1; k < n; k++) {
        int rarer = bySymbolFrequency[k - 1];
        int commoner = bySymbolFrequency[k];
        if (freq[rarer] > 0 && freq[rarer] < freq[commoner]) {
          assertTrue(lengths[commoner] <= lengths[rarer], "round " + round);
        }
      }
    }
  }

  @Test
  void theBoundIsRefusedForImpossibleLengths() {
    assertThrows(IllegalArgumentException.class, () -> FastDeflater.maxCompressedLength(-1));
    assertThrows(IllegalArgumentException.class, () -> FastDeflater.maxCompressedLength(Integer.MAX_VALUE));
    byte[] in = new byte[100];
    byte[] tooSmall = new byte[FastDeflater.maxCompressedLength(100) - 1];
    assertThrows(IndexOutOfBoundsException.class, () -> deflater.deflateSync(in, 0, 100, tooSmall, 0));
  }
}
