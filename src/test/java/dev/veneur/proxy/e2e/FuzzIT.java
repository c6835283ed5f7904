package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * 12 000 generated and mutated bodies from a fixed seed: every one is answered, never with a 5xx,
 * the proxy stays up, its accounting holds, and a good body still goes through afterwards.
 */
@ExtendWith(VertxExtension.class)
class FuzzIT {
  private static final long SEED = 20261126L;
  private static final int CASES = 12_000;
  private static final Set<Integer> ALLOWED = Set.of(202, 400, 413, 415);

  @Test
  void mutatedBodiesNeverCauseA5xxOrACrash(Vertx vertx) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("max_body_bytes", "2MiB")
        .put("max_inflated_bytes", "4MiB"));
    Random rnd = new Random(SEED);
    byte[] seedBody = Bodies.utf8(Bodies.generate("fuzz", 20, SEED).encode());
    Map<String, Integer> byStatus = new TreeMap<>();
    try {
      for (int i = 0; i < CASES; i++) {
        Case c = mutate(rnd, seedBody, i);
        java.net.http.HttpResponse<String> r;
        try {
          r = proxy.post(c.body, c.encoding);
        } catch (AssertionError e) {
          throw new AssertionError("case " + i + " (" + c.kind + ", encoding " + c.encoding + ", "
              + c.body.length + " bytes): " + e.getMessage(), e);
        }
        byStatus.merge(c.kind + " " + r.statusCode(), 1, Integer::sum);
        assertTrue(ALLOWED.contains(r.statusCode()),
            "case " + i + " (" + c.kind + ", encoding " + c.encoding + ") got " + r.statusCode() + ": " + r.body());
        if (r.statusCode() != 202) {
          assertTrue(!r.body().isBlank() && r.body().trim().indexOf('\n') < 0, "one-line reason: " + r.body());
        }
      }
      proxy.awaitSettled();
      int before = global.metrics.size();
      JsonArray good = Bodies.generate("after-fuzz", 100, 1);
      assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(good.encode())), "deflate").statusCode());
      Await.until("a good body still goes through", () -> global.metrics.size() == before + 100);
      proxy.awaitSettled();
      System.out.println("fuzz outcomes: " + byStatus);
      assertTrue(byStatus.keySet().stream().anyMatch(k -> k.endsWith(" 202")), "some mutants were valid");
      assertTrue(byStatus.keySet().stream().anyMatch(k -> k.endsWith(" 400")), "some were refused");
    } finally {
      proxy.stop();
    }
  }

  private static final byte[] BOMB = Bodies.deflate(new byte[8 << 20]);

  private record Case(String kind, byte[] body, String encoding) {}

  private static Case mutate(Random rnd, byte[] seed, int i) throws Exception {
    switch (rnd.nextInt(14)) {
      case 0: {
        int cut = rnd.nextInt(seed.length);
        return new Case("truncated", Arrays.copyOf(seed, cut), null);
      }
      case 1: {
        byte[] b = seed.clone();
        for (int k = 0, n = 1 + rnd.nextInt(8); k < n; k++) b[rnd.nextInt(b.length)] = (byte) rnd.nextInt(256);
        return new Case("flipped", b, null);
      }
      case 2: {
        String[] wrong = {"5", "null", "true", "{}", "[]", "\"\"", "1e999", "-0", "[1,2]"};
        String field = new String[] {"name", "type", "tagstring", "tags", "value"}[rnd.nextInt(5)];
        String s = new String(seed, StandardCharsets.UTF_8)
            .replaceFirst("\"" + field + "\":(\"[^\"]*\"|\\[[^\\]]*\\])", "\"" + field + "\":" + wrong[rnd.nextInt(wrong.length)]);
        return new Case("wrong_type", s.getBytes(StandardCharsets.UTF_8), null);
      }
      case 3: {
        int depth = 1 + rnd.nextInt(5000);
        String open = "[".repeat(depth);
        String close = "]".repeat(rnd.nextBoolean() ? depth : rnd.nextInt(depth));
        return new Case("deep", (open + close).getBytes(StandardCharsets.UTF_8), null);
      }
      case 4: {
        // Mostly large but legal; one in four past max_body_bytes or max_inflated_bytes.
        int len = rnd.nextInt(4) == 0 ? (5 << 20) : rnd.nextInt(256 << 10);
        String huge = "[{\"name\":\"" + "x".repeat(len) + "\",\"type\":\"counter\",\"tagstring\":\"\",\"tags\":[],\"value\":\"AQ==\"}]";
        byte[] raw = huge.getBytes(StandardCharsets.UTF_8);
        return rnd.nextBoolean() ? new Case("huge_string", Bodies.deflate(raw), "deflate") : new Case("huge_string", raw, null);
      }
      case 5: {
        byte[] b = seed.clone();
        int at = 2 + rnd.nextInt(b.length - 4);
        b[at] = (byte) 0xC3;
        b[at + 1] = (byte) (rnd.nextBoolean() ? 0x28 : 0xFF);
        return new Case("invalid_utf8", b, null);
      }
      case 6: {
        byte[] b = new byte[rnd.nextInt(4096)];
        rnd.nextBytes(b);
        String[] enc = {null, "deflate", "gzip", "identity"};
        return new Case("random_bytes", b, enc[rnd.nextInt(enc.length)]);
      }
      case 7: {
        byte[] z = Bodies.deflate(seed);
        for (int k = 0, n = 1 + rnd.nextInt(4); k < n; k++) z[2 + rnd.nextInt(z.length - 2)] ^= (byte) (1 + rnd.nextInt(255));
        return new Case("bad_zlib", z, "deflate");
      }
      case 8: {
        byte[] z = Bodies.deflate(seed);
        return new Case("truncated_zlib", Arrays.copyOf(z, rnd.nextInt(z.length)), "deflate");
      }
      case 9: {
        // A small bomb: ~8 KiB of zlib that inflates to 8 MiB of zeros, past max_inflated_bytes.
        return new Case("zlib_bomb", BOMB, "deflate");
      }
      case 10: {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
          gz.write(rnd.nextBoolean() ? seed : Arrays.copyOf(seed, rnd.nextInt(seed.length)));
        }
        byte[] g = out.toByteArray();
        if (rnd.nextBoolean()) g[10 + rnd.nextInt(g.length - 10)] ^= 0x55;
        return new Case("gzip", g, "gzip");
      }
      case 11: {
        String[] enc = {"br", "zstd", "compress", "deflate, gzip", "DEFLATE", "x-unknown"};
        return new Case("encoding", seed, enc[rnd.nextInt(enc.length)]);
      }
      case 12: {
        String[] odd = {"", "[]", "{}", "[{}]", "[{},{}]", "null", "\"[]\"", "[null]", "[1,2,3]",
            "[{\"name\":\"a\"}]", "[{\"type\":\"counter\"}]", " ", "[", "]", "[{]", "[{\"name\":\"a\",\"type\":\"counter\",\"value\":\"!!!\"}]",
            "[{\"name\":\"a\",\"type\":\"counter\",\"tagstring\":\"\",\"value\":\"AQ==\"}] trailing"};
        return new Case("odd", odd[rnd.nextInt(odd.length)].getBytes(StandardCharsets.UTF_8), null);
      }
      default: {
        // Valid bodies in between, so mutation never hides that good input still works.
        byte[] b = Bodies.utf8(Bodies.generate("ok" + i, 1 + rnd.nextInt(5), i).encode());
        boolean z = rnd.nextBoolean();
        return new Case("valid", z ? Bodies.deflate(b) : b, z ? "deflate" : null);
      }
    }
  }
}
