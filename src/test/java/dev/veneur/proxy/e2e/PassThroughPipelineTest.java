package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * With one global (by HTTP), a zlib body whose metrics are all valid goes on as it came: the
 * global receives the very bytes the local posted, the proxy deflating nothing (issue 19). A body
 * with a metric to drop, or not zlib, is re-batched as before; the books close either way.
 */
@ExtendWith(VertxExtension.class)
class PassThroughPipelineTest {
  private TestGlobal global;
  private TestProxy proxy;

  @BeforeEach
  void start(Vertx vertx) {
    global = TestGlobal.start(vertx);
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_addresses", new JsonArray().add(global.url()))
        .put("http_instances", 2));
  }

  @AfterEach
  void stop() {
    proxy.stop();
  }

  @Test
  void aValidZlibBodyArrivesByteForByteAndTheOthersAreRebatched() {
    // A real v2.0.0 local's body, and a generated one of 1000 metrics.
    byte[] fixture = Bodies.resource("fixtures/veneur-v2.0.0/import.deflate");
    byte[] big = Bodies.deflate(Bodies.utf8(Bodies.generate("pt", 1000, 7).encode()));
    assertEquals(202, proxy.post(fixture, "deflate").statusCode());
    assertEquals(202, proxy.post(big, "deflate").statusCode());
    Await.until("1001 metrics at the global", () -> global.metrics.size() == 1001);
    proxy.awaitSettled();
    assertEquals(2, global.posts.size(), "one POST per body");
    assertArrayEquals(fixture, global.posts.get(0).rawBody(), "the local's own bytes");
    assertArrayEquals(big, global.posts.get(1).rawBody());
    assertEquals("deflate", global.posts.get(1).contentEncoding());
    assertEquals("application/json", global.posts.get(1).contentType());

    // One metric the global would refuse: dropped alone, the others re-batched (not the bytes sent).
    JsonArray withBad = Bodies.generate("bad", 50, 8).add(new JsonObject().put("name", "no.type").put("value", "AQAAAAAAAAA="));
    byte[] bad = Bodies.deflate(Bodies.utf8(withBad.encode()));
    assertEquals(202, proxy.post(bad, "deflate").statusCode());
    // Uncompressed: re-batched (and compressed) as before.
    byte[] plain = Bodies.utf8(Bodies.generate("plain", 20, 9).encode());
    assertEquals(202, proxy.post(plain, null).statusCode());
    Await.until("1071 metrics at the global", () -> global.metrics.size() == 1071);
    proxy.awaitSettled();
    for (int i = 2; i < global.posts.size(); i++) {
      assertFalse(Arrays.equals(bad, global.posts.get(i).rawBody()), "the body with a dropped metric is not forwarded as it came");
    }
    assertEquals(1072, proxy.metrics().received());
    assertEquals(1071, proxy.metrics().forwarded());
  }
}
