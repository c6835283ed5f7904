package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.support.Bodies;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;

class BodySourceTest {
  final MemoryBudget budget = new MemoryBudget(() -> 64L << 20);
  final BodySource source = newSource(budget);

  /** zlib's streaming inflate alone; {@link WholeBodySourceTest} runs these tests with libdeflate first. */
  BodySource newSource(MemoryBudget budget) {
    return new BodySource();
  }

  /** The body split into network-sized pieces, as a request delivers it. */
  static List<ByteBuffer> pieces(byte[] body, int size) {
    List<ByteBuffer> out = new ArrayList<>();
    for (int i = 0; i < body.length; i += size) {
      out.add(ByteBuffer.wrap(body, i, Math.min(size, body.length - i)).slice());
    }
    return out;
  }

  byte[] readAll(int window) {
    return readAll(source, window);
  }

  /** Everything {@code s} decodes, read {@code window} bytes at a time. */
  static byte[] readAll(BodySource s, int window) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] w = new byte[window];
    int n;
    while ((n = s.read(w, 0, w.length)) >= 0) out.write(w, 0, n);
    return out.toByteArray();
  }

  @Test
  void inflatesTheGoFixtureToItsUncompressedTwinWhateverTheFraming() {
    byte[] deflated = Bodies.resource("fixtures/veneur-v2.0.0/import.deflate");
    byte[] plain = Bodies.resource("fixtures/veneur-v2.0.0/import.uncompressed");
    for (int piece : new int[] {1, 3, 1000, deflated.length}) {
      source.open("deflate", pieces(deflated, piece), 1 << 20);
      assertArrayEquals(plain, readAll(100), "pieces of " + piece);
    }
    source.open(null, pieces(plain, 7), 1 << 20);
    assertArrayEquals(plain, readAll(64));
    source.open("identity", pieces(plain, plain.length), 1 << 20);
    assertArrayEquals(plain, readAll(1 << 16));
  }

  @Test
  void acceptsGzipIncludingConcatenatedMembersAndBareDeflate() throws Exception {
    byte[] plain = Bodies.resource("fixtures/captured/small.json");
    ByteArrayOutputStream gz = new ByteArrayOutputStream();
    for (int m = 0; m < 2; m++) {
      try (GZIPOutputStream out = new GZIPOutputStream(gz)) {
        out.write(plain);
      }
    }
    source.open("gzip", pieces(gz.toByteArray(), 333), 1 << 20);
    byte[] twice = readAll(4096);
    assertEquals(plain.length * 2, twice.length);

    Deflater raw = new Deflater(6, true);
    raw.setInput(plain);
    raw.finish();
    byte[] buf = new byte[plain.length + 64];
    int n = raw.deflate(buf);
    source.open("deflate", pieces(java.util.Arrays.copyOf(buf, n), 50), 1 << 20);
    assertArrayEquals(plain, readAll(4096));
  }

  @Test
  void aZlibBombStopsAtTheLimitWithinOneWindow() {
    // 64 MiB of zeros compresses to about 64 KiB; the limit is 1 MiB.
    Deflater z = new Deflater(9);
    byte[] zeros = new byte[1 << 20];
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[1 << 16];
    for (int i = 0; i < 64; i++) {
      z.setInput(zeros);
      while (!z.needsInput()) out.write(buf, 0, z.deflate(buf));
    }
    z.finish();
    while (!z.finished()) out.write(buf, 0, z.deflate(buf));
    byte[] bomb = out.toByteArray();
    assertTrue(bomb.length < 200_000, "bomb is small: " + bomb.length);
    source.open("deflate", pieces(bomb, 8192), 1 << 20);
    byte[] w = new byte[256 * 1024];
    ImportRefusal r = assertThrows(ImportRefusal.class, () -> {
      while (source.read(w, 0, w.length) >= 0) { }
    });
    assertEquals(413, r.status);
    assertTrue(source.produced() <= (1 << 20) + w.length, "decoded at most a window past the limit");
  }

  @Test
  void aDamagedTrailerIsIgnoredAsGoIgnoresIt() {
    byte[] deflated = Bodies.resource("fixtures/veneur-v2.0.0/import.deflate").clone();
    byte[] plain = Bodies.resource("fixtures/veneur-v2.0.0/import.uncompressed");
    deflated[deflated.length - 1] ^= 0x55; // Adler-32 trailer
    source.open("deflate", pieces(deflated, 100), 1 << 20);
    assertArrayEquals(plain, readAll(1 << 16));
  }

  @Test
  void corruptOrTruncatedStreamsAre400AndUnknownEncodings415() {
    byte[] deflated = Bodies.resource("fixtures/veneur-v2.0.0/import.deflate");
    source.open("deflate", pieces(java.util.Arrays.copyOf(deflated, deflated.length / 2), 64), 1 << 20);
    assertEquals(400, assertThrows(ImportRefusal.class, () -> readAll(1 << 16)).status);
    byte[] junk = Bodies.utf8("this is not zlib at all");
    source.open("deflate", pieces(junk, 5), 1 << 20);
    assertEquals(400, assertThrows(ImportRefusal.class, () -> readAll(1 << 16)).status);
    assertEquals(400, assertThrows(ImportRefusal.class, () -> source.open("gzip", pieces(junk, 5), 1 << 20)).status);
    ImportRefusal empty = assertThrows(ImportRefusal.class, () -> {
      source.open("deflate", List.of(), 1 << 20);
      readAll(64);
    });
    assertEquals("deflate", empty.cause);
    ImportRefusal r = assertThrows(ImportRefusal.class, () -> source.open("br", pieces(junk, 5), 1 << 20));
    assertEquals(415, r.status);
    assertEquals("unknown_content_encoding", r.cause);
  }
}
