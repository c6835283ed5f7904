package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Every whole-body vector of {@code go-decoder-vectors.json} (answers of the Go proxy v2's
 * {@code /import} handler, produced by running its decoding code) posted to this proxy: the answer
 * must be Go's, or one of the documented differences in the README's table ("Odd input: where
 * this proxy differs from the Go proxy"). Each difference is named here by the rule that allows
 * it, so a new one fails the test until it is documented.
 */
@ExtendWith(VertxExtension.class)
class GoCompatTest {

  /** The README's rows, as predicates on (vector, Go's status, our status). */
  private static String documentedDifference(JsonObject v, int go, int ours) {
    String enc = v.getString("content_encoding");
    String id = v.getString("id");
    if (go == 415 && enc != null && ours != 415
        && List.of("gzip", "x-gzip", "identity", "deflate").contains(enc.toLowerCase(java.util.Locale.ROOT))) {
      return "Content-Encoding gzip, identity, or deflate in any case: accepted here, 415 in Go";
    }
    if (id.equals("deflate-raw-no-header") && go == 400 && ours == 202) {
      return "a raw deflate stream without the zlib header: accepted here, 400 in Go";
    }
    if (go == 400 && ours == 202 && goRefusedAMetricButNotAll(v)) {
      return "a body with metrics a global would refuse among good ones: the refused are dropped "
          + "and counted, the rest accepted here; the whole body is 400 in Go";
    }
    return null;
  }

  /** Go's error is a type or base64 error on some element (not syntax), and another element is fine. */
  private static boolean goRefusedAMetricButNotAll(JsonObject v) {
    String body = v.getJsonObject("handler").getString("body", "");
    boolean elementError = body.contains("Go struct field") || body.contains("illegal base64");
    return elementError && List.of("one-bad-among-good", "one-bad-base64-among-good", "two-type-errors",
        "base64-then-type-error").contains(v.getString("id"));
  }

  @Test
  void everyBodyVectorGetsGosAnswerOrADocumentedDifference(Vertx vertx) {
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject().put("forward_address", global.url()));
    JsonObject file = new JsonObject(new String(Bodies.resource("go-decoder-vectors.json"), StandardCharsets.UTF_8));
    List<String> undocumented = new ArrayList<>();
    Map<String, Integer> differences = new TreeMap<>();
    int same = 0;
    try {
      for (Object o : file.getJsonArray("body_vectors")) {
        JsonObject v = (JsonObject) o;
        byte[] body = Base64.getDecoder().decode(v.getString("body_b64"));
        int go = v.getJsonObject("handler").getInteger("status");
        int ours = proxy.post(body, v.getString("content_encoding")).statusCode();
        if (go == ours) {
          same++;
          continue;
        }
        String why = documentedDifference(v, go, ours);
        if (why == null) undocumented.add(v.getString("id") + ": Go " + go + ", here " + ours + " (" + v.getString("note", "") + ")");
        else differences.merge(why, 1, Integer::sum);
      }
      proxy.awaitSettled();
    } finally {
      proxy.stop();
    }
    System.out.println("Go compatibility: " + same + " body vectors answered as Go; documented differences: " + differences);
    assertTrue(undocumented.isEmpty(), "answers that differ from the Go proxy's without a documented reason:\n  "
        + String.join("\n  ", undocumented));
    assertTrue(same > 40, "most vectors answered as Go: " + same);
    assertEquals(3, differences.size(), "each documented difference is exercised: " + differences);
  }

  @Test
  void aBodyWhoseEveryMetricWouldBeRefusedGets400LikeGo(Vertx vertx) {
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject().put("forward_address", global.url()));
    try {
      var r = proxy.post(Bodies.utf8("[{\"name\":\"p\",\"type\":\"counter\",\"value\":\"Q\\u0051\"}]"), null);
      assertEquals(400, r.statusCode());
      assertTrue(r.body().contains("base64"), r.body());
      assertEquals(0, proxy.metrics().received());
    } finally {
      proxy.stop();
    }
  }
}
