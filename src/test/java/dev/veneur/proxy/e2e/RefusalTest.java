package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.net.http.HttpResponse;
import java.util.zip.Deflater;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Every refusal has its status, a one-line reason, a counted cause, and costs nothing else. */
@ExtendWith(VertxExtension.class)
class RefusalTest {
  private TestGlobal global;
  private TestProxy proxy;
  private int delivered;

  @BeforeEach
  void start(Vertx vertx) {
    global = TestGlobal.start(vertx);
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("max_body_bytes", 64 * 1024)
        .put("max_inflated_bytes", 256 * 1024));
  }

  @AfterEach
  void stop() {
    proxy.stop();
  }

  private void assertRefused(int status, String cause, byte[] body, String encoding) {
    long before = proxy.metrics().count(ProxyMetrics.IMPORT_ERRORS, "cause", cause);
    HttpResponse<String> r = proxy.post(body, encoding);
    assertEquals(status, r.statusCode(), "status for cause " + cause + ": " + r.body());
    String reason = r.body();
    assertTrue(reason.endsWith("\n") && reason.indexOf('\n') == reason.length() - 1 && reason.length() > 5,
        "one-line reason: [" + reason + "]");
    assertEquals(before + 1, proxy.metrics().count(ProxyMetrics.IMPORT_ERRORS, "cause", cause));
    stillServes();
  }

  private void stillServes() {
    byte[] good = Bodies.utf8(Bodies.generate("good", 3, delivered).encode());
    assertEquals(202, proxy.post(Bodies.deflate(good), "deflate").statusCode());
    delivered += 3;
    Await.equal("good metrics delivered", delivered, () -> global.metrics.size());
  }

  @Test
  void malformedJson() {
    assertRefused(400, "json", Bodies.utf8("[{\"name\":\"a\",\"type\":"), null);
    assertRefused(400, "json", Bodies.deflate(Bodies.utf8("{not json")), "deflate");
  }

  @Test
  void emptyArray() {
    assertRefused(400, "empty", Bodies.utf8("[]"), null);
  }

  @Test
  void notAnArray() {
    assertRefused(400, "json", Bodies.utf8("{\"name\":\"a\",\"type\":\"counter\"}"), null);
  }

  @Test
  void allEmptyObjects() {
    assertRefused(400, "empty_metrics", Bodies.utf8("[{},{},{}]"), null);
  }

  @Test
  void unknownContentEncoding() {
    assertRefused(415, "unknown_content_encoding", Bodies.utf8("[{}]"), "br");
  }

  @Test
  void corruptDeflate() {
    assertRefused(400, "deflate", Bodies.utf8("definitely not zlib"), "deflate");
  }

  @Test
  void compressedBodyTooLarge() {
    byte[] big = new byte[200 * 1024];
    new java.util.Random(1).nextBytes(big);
    assertRefused(413, "too_large", big, "deflate");
  }

  @Test
  void decompressionBomb() {
    // 32 MiB of spaces inside a valid JSON array: tiny on the wire, huge inflated.
    Deflater z = new Deflater(9);
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    byte[] buf = new byte[1 << 16];
    z.setInput(Bodies.utf8("["));
    byte[] spaces = new byte[1 << 20];
    java.util.Arrays.fill(spaces, (byte) ' ');
    for (int i = 0; i < 32; i++) {
      z.setInput(spaces);
      while (!z.needsInput()) out.write(buf, 0, z.deflate(buf));
    }
    z.setInput(Bodies.utf8("]"));
    z.finish();
    while (!z.finished()) out.write(buf, 0, z.deflate(buf));
    assertTrue(out.size() < 64 * 1024, "bomb fits under max_body_bytes: " + out.size());
    assertRefused(413, "too_large", out.toByteArray(), "deflate");
  }

  @Test
  void invalidMetricsAreDroppedAndCountedWhileTheRestIsForwarded() {
    String body = "[{\"name\":\"kept\",\"type\":\"counter\",\"tagstring\":\"\",\"value\":\"AQAAAAAAAAA=\"},"
        + "{\"name\":\"no.type\",\"value\":\"AQAAAAAAAAA=\"}]";
    assertEquals(202, proxy.post(Bodies.utf8(body), null).statusCode());
    Await.until("kept metric delivered", () -> global.metrics.size() == 1);
    assertEquals("kept", global.metrics.get(0).getString("name"));
    proxy.awaitSettled();
    assertEquals(2, proxy.metrics().received());
    assertEquals(1, proxy.metrics().dropped("invalid_metric"));
    assertFalse(global.metrics.stream().anyMatch(m -> "no.type".equals(m.getString("name"))));
  }
}
