package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Bodies;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;

class BodyDecoderTest {

  private static byte[] decoded(BodyDecoder d) {
    return Arrays.copyOf(d.bytes(), d.length());
  }

  @Test
  void inflatesTheGoFixtureToItsUncompressedTwin() {
    byte[] deflated = Bodies.resource("fixtures/veneur-v2.0.0/import.deflate");
    byte[] plain = Bodies.resource("fixtures/veneur-v2.0.0/import.uncompressed");
    BodyDecoder d = new BodyDecoder(1 << 20);
    d.decode("deflate", deflated, deflated.length);
    assertArrayEquals(plain, decoded(d));
    d.decode(null, plain, plain.length);
    assertArrayEquals(plain, decoded(d));
  }

  @Test
  void acceptsGzipAndBareDeflate() throws Exception {
    byte[] plain = Bodies.resource("fixtures/captured/small.json");
    ByteArrayOutputStream gz = new ByteArrayOutputStream();
    try (GZIPOutputStream out = new GZIPOutputStream(gz)) {
      out.write(plain);
    }
    BodyDecoder d = new BodyDecoder(1 << 20);
    d.decode("gzip", gz.toByteArray(), gz.size());
    assertArrayEquals(plain, decoded(d));

    Deflater raw = new Deflater(6, true);
    raw.setInput(plain);
    raw.finish();
    byte[] buf = new byte[plain.length + 64];
    int n = raw.deflate(buf);
    d.decode("deflate", buf, n);
    assertArrayEquals(plain, decoded(d));
  }

  @Test
  void aZlibBombStopsAtTheLimit() {
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
    BodyDecoder d = new BodyDecoder(1 << 20);
    ImportRefusal r = assertThrows(ImportRefusal.class, () -> d.decode("deflate", bomb, bomb.length));
    assertEquals(413, r.status);
    assertTrue(d.bytes().length <= (1 << 20) + 1, "scratch stayed bounded: " + d.bytes().length);
  }

  @Test
  void corruptOrTruncatedStreamsAre400AndUnknownEncodings415() {
    byte[] deflated = Bodies.resource("fixtures/veneur-v2.0.0/import.deflate");
    BodyDecoder d = new BodyDecoder(1 << 20);
    assertEquals(400, assertThrows(ImportRefusal.class,
        () -> d.decode("deflate", deflated, deflated.length / 2)).status);
    byte[] junk = Bodies.utf8("this is not zlib at all");
    assertEquals(400, assertThrows(ImportRefusal.class, () -> d.decode("deflate", junk, junk.length)).status);
    assertEquals(400, assertThrows(ImportRefusal.class, () -> d.decode("gzip", junk, junk.length)).status);
    ImportRefusal r = assertThrows(ImportRefusal.class, () -> d.decode("br", junk, junk.length));
    assertEquals(415, r.status);
    assertEquals("unknown_content_encoding", r.cause);
  }
}
