package dev.veneur.proxy.support;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Random;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;

/** Request bodies for tests: fixtures from the classpath, generated metrics, zlib. */
public final class Bodies {
  private Bodies() {}

  public static byte[] resource(String path) {
    try (InputStream in = Bodies.class.getClassLoader().getResourceAsStream(path)) {
      if (in == null) throw new IllegalStateException("missing test resource " + path);
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static byte[] deflate(byte[] raw) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (DeflaterOutputStream z = new DeflaterOutputStream(out, new Deflater(6))) {
      z.write(raw);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  public static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static final String[] TYPES = {"counter", "gauge", "histogram", "set", "timer"};

  /** {@code n} distinct metrics, names {@code prefix.<i>}, a mix of types and tags. */
  public static JsonArray generate(String prefix, int n, long seed) {
    Random r = new Random(seed);
    JsonArray arr = new JsonArray();
    for (int i = 0; i < n; i++) {
      String type = TYPES[i % TYPES.length];
      String tagstring = "az:us-west-2" + (char) ('a' + r.nextInt(3)) + ",service:svc" + r.nextInt(50);
      byte[] value = new byte[type.equals("histogram") || type.equals("timer") ? 170 + r.nextInt(30) : 8];
      r.nextBytes(value);
      arr.add(new JsonObject()
          .put("name", prefix + "." + i)
          .put("type", type)
          .put("tagstring", tagstring)
          .put("tags", new JsonArray().add(tagstring.split(",")[0]).add(tagstring.split(",")[1]))
          .put("value", Base64.getEncoder().encodeToString(value)));
    }
    return arr;
  }

  public static String key(JsonObject m) {
    return m.getString("name") + m.getString("type") + m.getString("tagstring", "");
  }
}
