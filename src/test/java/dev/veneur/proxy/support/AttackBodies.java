package dev.veneur.proxy.support;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;

/**
 * Request bodies for the memory attacks, each built in memory once: zlib bombs, a metric with
 * 16-million-character strings, millions of tiny metrics, and realistic 1000-metric bodies from
 * the captured fixture with every name prefixed by its sender (so a counting global can tell
 * whose metrics arrived).
 */
public final class AttackBodies {
  private AttackBodies() {}

  /** One metric used as the bomb's payload; a proxy that let a bomb through would forward it. */
  public static final String BOMB_PREFIX = "bomb";

  /**
   * A zlib body inflating to {@code inflatedBytes}: {@code [{"name":"bomb.x","type":"counter"}}, then
   * spaces, then {@code ]}. Valid JSON all along (whitespace between array elements), so nothing but
   * the inflated-size limit can refuse it: the only right answer is 413. Spaces compress about
   * 1000:1, so 256 MiB deflates to about 260 KB.
   */
  public static byte[] bomb(long inflatedBytes) {
    byte[] start = ascii("[{\"name\":\"" + BOMB_PREFIX + ".x\",\"type\":\"counter\"}");
    byte[] spaces = new byte[1 << 20];
    Arrays.fill(spaces, (byte) ' ');
    ByteArrayOutputStream out = new ByteArrayOutputStream(512 * 1024);
    try (DeflaterOutputStream z = new DeflaterOutputStream(out, new Deflater(9), 64 * 1024)) {
      z.write(start);
      long left = inflatedBytes - start.length - 1;
      while (left > 0) {
        int n = (int) Math.min(left, spaces.length);
        z.write(spaces, 0, n);
        left -= n;
      }
      z.write(']');
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  /**
   * A zlib body of a JSON array holding one metric whose name, type and tagstring are each
   * {@code chars} characters long ('n', 't' and 'g' repeated). At 16 million characters it
   * deflates to about 47 KB and inflates to 48 MB, under the default max_inflated_bytes: only the
   * string-length limits (max_string_length, max_metric_bytes) can refuse it, with 400 too_long.
   */
  public static byte[] longStrings(int chars) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(64 * 1024);
    try (DeflaterOutputStream z = new DeflaterOutputStream(out, new Deflater(9), 64 * 1024)) {
      z.write(ascii("[{\"name\":\""));
      repeat(z, (byte) 'n', chars);
      z.write(ascii("\",\"type\":\""));
      repeat(z, (byte) 't', chars);
      z.write(ascii("\",\"tagstring\":\""));
      repeat(z, (byte) 'g', chars);
      z.write(ascii("\"}]"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  /** The name of every metric in {@link #tinyMetrics}. */
  public static final String TINY_NAME = "a";

  /**
   * A zlib body of {@code n} metrics {@code {"name":"a","type":"counter"}} (30 bytes each with
   * the comma). 2.2 million of them inflate to 66,000,001 bytes and deflate to about 160 KB.
   */
  public static byte[] tinyMetrics(int n) {
    byte[] one = ascii("{\"name\":\"" + TINY_NAME + "\",\"type\":\"counter\"},");
    int perBlock = 10_000;
    byte[] block = new byte[one.length * perBlock];
    for (int i = 0; i < perBlock; i++) System.arraycopy(one, 0, block, i * one.length, one.length);
    ByteArrayOutputStream out = new ByteArrayOutputStream(256 * 1024);
    try (DeflaterOutputStream z = new DeflaterOutputStream(out, new Deflater(6), 64 * 1024)) {
      z.write('[');
      int left = n - 1;
      while (left > 0) {
        int k = Math.min(left, perBlock);
        z.write(block, 0, k * one.length);
        left -= k;
      }
      z.write(one, 0, one.length - 1); // the last one, without its comma
      z.write(']');
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  /** Inflated size of {@link #tinyMetrics}{@code (n)}. */
  public static long tinyMetricsInflatedBytes(int n) {
    return 2L + 30L * n - 1;
  }

  /** The captured production-like fixture (1,350 metrics). */
  public static JsonArray captured() {
    return new JsonArray(new String(Bodies.resource("fixtures/captured/large.json"), StandardCharsets.UTF_8));
  }

  /**
   * {@code n} metrics from {@code source} starting at {@code offset} (wrapping around), each
   * renamed {@code <prefix>.<original name>}, encoded and deflated with {@link Bodies#deflate}.
   */
  public static byte[] prefixed(JsonArray source, String prefix, int n, int offset) {
    JsonArray out = new JsonArray();
    for (int i = 0; i < n; i++) {
      JsonObject m = source.getJsonObject((offset + i) % source.size()).copy();
      m.put("name", prefix + "." + m.getString("name"));
      out.add(m);
    }
    return Bodies.deflate(Bodies.utf8(out.encode()));
  }

  private static void repeat(DeflaterOutputStream z, byte b, int n) throws IOException {
    byte[] buf = new byte[1 << 20];
    Arrays.fill(buf, b);
    while (n > 0) {
      int k = Math.min(n, buf.length);
      z.write(buf, 0, k);
      n -= k;
    }
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }
}
