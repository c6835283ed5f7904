package dev.veneur.proxy.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Veneur's gob t-digest against what real v2.0.0 and v14.2.0 locals sent. */
class GobDigestTest {
  private static final Path FIXTURES = Path.of("src/test/resources/fixtures");

  private static JsonArray json(String file) throws Exception {
    return new JsonArray(Files.readString(FIXTURES.resolve(file)));
  }

  @Test
  void aRealV2LocalsHistogramDecodesAndEncodesToTheSameBytes() throws Exception {
    JsonObject m = json("veneur-v2.0.0/import.uncompressed").getJsonObject(0);
    assertEquals("a.b.c", m.getString("name"));
    byte[] value = Base64.getDecoder().decode(m.getString("value"));
    GobDigest.Digest d = GobDigest.decode(value);
    assertArrayEquals(new double[] {1, 2, 7, 8, 100}, d.means());
    assertArrayEquals(new double[] {1, 1, 1, 1, 1}, d.weights());
    assertNull(d.samples());
    assertEquals(100, d.compression());
    assertEquals(1, d.min());
    assertEquals(100, d.max());
    assertFalse(d.hasReciprocalSum(), "v2 writes four values");
    assertArrayEquals(value, GobDigest.encode(d, false), "the bytes a v2 local writes");
  }

  @Test
  void everyHistogramAndTimerOfARealV14LocalRoundTripsExactly() throws Exception {
    int n = 0;
    for (Object o : json("veneur-v14.2.0/json-small.json")) {
      JsonObject m = (JsonObject) o;
      String type = m.getString("type");
      if (!type.equals("histogram") && !type.equals("timer")) continue;
      byte[] value = Base64.getDecoder().decode(m.getString("value"));
      GobDigest.Digest d = GobDigest.decode(value);
      assertTrue(d.hasReciprocalSum(), "v14 writes five values: " + m.getString("name"));
      assertTrue(d.size() > 0 && d.min() <= d.max(), d.toString());
      double weight = 0;
      for (double w : d.weights()) weight += w;
      assertTrue(weight > 0, d.toString());
      assertArrayEquals(value, GobDigest.encode(d, true), "the bytes a v14 local writes: " + m.getString("name"));
      n++;
    }
    assertTrue(n >= 5, "histograms and timers in the fixture: " + n);
  }

  @Test
  void fourValuesReadAsReciprocalSumZeroAndSamplesAndZerosRoundTrip() {
    GobDigest.Digest d = new GobDigest.Digest(new double[] {0, -3.5, 1e300, -0.0}, new double[] {2, 0, 1, 7},
        new double[][] {{0, 1.5}, null, {}, {-2}}, 50, -3.5, 1e300, 0.25, true);
    GobDigest.Digest back = GobDigest.decode(GobDigest.encode(d, true));
    assertArrayEquals(d.means(), back.means());
    assertArrayEquals(d.weights(), back.weights());
    assertArrayEquals(new double[] {0, 1.5}, back.samples()[0]);
    assertNull(back.samples()[1]);
    assertNull(back.samples()[2], "an empty slice is not written, as in Go");
    assertArrayEquals(new double[] {-2}, back.samples()[3]);
    assertEquals(0.25, back.reciprocalSum());
    GobDigest.Digest four = GobDigest.decode(GobDigest.encode(d, false));
    assertFalse(four.hasReciprocalSum());
    assertEquals(0, four.reciprocalSum());
    assertEquals(-3.5, four.min());
  }

  @Test
  void everyCutOfARealValueIsRefusedAsMalformed() throws Exception {
    byte[] value = Base64.getDecoder().decode(json("veneur-v2.0.0/import.uncompressed").getJsonObject(0).getString("value"));
    for (int len = 0; len < value.length; len++) {
      int cut = len;
      // Cut after the third float the stream is whole (a v2 stream ends there): only shorter cuts are bad.
      if (cut == value.length) continue;
      GobDigest.Malformed e = assertThrows(GobDigest.Malformed.class, () -> GobDigest.decode(value, 0, cut),
          "a stream cut at " + cut);
      assertTrue(e.getMessage() != null && !e.getMessage().isEmpty());
    }
  }

  @Test
  void garbageIsRefusedAsMalformedAndNeverAllocatesByACount() {
    // A count of 2^56 centroids in a 20-byte message.
    byte[] bomb = {0x0d, (byte) 0xff, (byte) 0x87, 2, 1, 2, (byte) 0xff, (byte) 0x88, 0, 1, 2, 0, 0};
    assertThrows(GobDigest.Malformed.class, () -> GobDigest.decode(bomb));
    Random r = new Random(42);
    byte[] real = GobDigest.encode(new GobDigest.Digest(new double[] {1, 2}, new double[] {1, 1}, null, 100, 1, 2, 0, false),
        false);
    for (int i = 0; i < 20_000; i++) {
      byte[] b = real.clone();
      int flips = 1 + r.nextInt(4);
      for (int k = 0; k < flips; k++) b[r.nextInt(b.length)] = (byte) r.nextInt(256);
      try {
        GobDigest.decode(b);
      } catch (GobDigest.Malformed expected) {
        // refused with a reason: fine
      }
    }
    byte[] noise = new byte[64];
    for (int i = 0; i < 20_000; i++) {
      r.nextBytes(noise);
      try {
        GobDigest.decode(noise);
      } catch (GobDigest.Malformed expected) {
        // fine
      }
    }
  }
}
