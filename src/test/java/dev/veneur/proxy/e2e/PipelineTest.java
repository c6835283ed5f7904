package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.RouteQuery;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(VertxExtension.class)
class PipelineTest {
  private TestGlobal a;
  private TestGlobal b;
  private TestGlobal c;
  private TestProxy proxy;

  @BeforeEach
  void start(Vertx vertx) {
    a = TestGlobal.start(vertx);
    b = TestGlobal.start(vertx);
    c = TestGlobal.start(vertx);
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_addresses", new JsonArray().add(a.url()).add(b.url()).add(c.url()))
        .put("http_instances", 2));
  }

  @AfterEach
  void stop() {
    proxy.stop();
  }

  private TestGlobal global(String url) {
    return url.equals(a.url()) ? a : url.equals(b.url()) ? b : c;
  }

  @Test
  void goFixtureArrivesAtTheRingsChoiceUnchanged() {
    byte[] plain = Bodies.resource("fixtures/veneur-v2.0.0/import.uncompressed");
    JsonArray expected = new JsonArray(new String(plain, StandardCharsets.UTF_8));
    String dest = HashRing.of(List.of(a.url(), b.url(), c.url()))
        .route("a.b.c", "histogram", "");

    assertEquals(202, proxy.post(plain, null).statusCode());
    assertEquals(202, proxy.post(Bodies.resource("fixtures/veneur-v2.0.0/import.deflate"), "deflate").statusCode());

    TestGlobal target = global(dest);
    Await.until("both copies at " + dest, () -> target.metrics.size() == 2);
    proxy.awaitSettled();
    for (JsonObject got : target.metrics) assertEquals(expected.getJsonObject(0), got);
    for (TestGlobal.Post p : target.posts) {
      assertEquals("deflate", p.contentEncoding());
      assertEquals("application/json", p.contentType());
    }
    assertEquals(2, a.metrics.size() + b.metrics.size() + c.metrics.size());
    assertEquals(2, proxy.metrics().forwarded());
  }

  @Test
  void thousandsOfMetricsEachArriveOnceAtTheRingsChoice(Vertx vertx) {
    int bodies = 6;
    int perBody = 1000;
    for (int i = 0; i < bodies; i++) {
      byte[] json = Bodies.utf8(Bodies.generate("gen" + i, perBody, i).encode());
      assertEquals(202, proxy.post(i % 2 == 0 ? Bodies.deflate(json) : json, i % 2 == 0 ? "deflate" : null)
          .statusCode());
    }
    int total = bodies * perBody;
    Await.until("all " + total + " delivered",
        () -> a.metrics.size() + b.metrics.size() + c.metrics.size() == total);
    proxy.awaitSettled();

    // Ask the ring verticle itself where each key belongs, and compare with where it arrived.
    Map<String, String> arrivedAt = new HashMap<>();
    Set<String> duplicates = new HashSet<>();
    for (TestGlobal g : List.of(a, b, c)) {
      // With 20 virtual nodes a member's share varies a lot with its (random, ephemeral) port:
      // only check that each got some; placement is checked key by key below.
      assertTrue(g.metrics.size() > total / 50, "each global gets a share: " + g.metrics.size());
      for (JsonObject m : g.metrics) {
        if (arrivedAt.put(Bodies.key(m), g.url()) != null) duplicates.add(Bodies.key(m));
      }
    }
    assertEquals(Set.of(), duplicates);
    assertEquals(total, arrivedAt.size());
    int asked = 0;
    for (Map.Entry<String, String> e : arrivedAt.entrySet()) {
      if (asked++ % 20 != 0) continue;
      JsonObject m = findMetric(e.getKey());
      String owner = vertx.eventBus().<String>request(Addresses.RING_ROUTE,
          new RouteQuery(m.getString("name"), m.getString("type"), m.getString("tagstring"))).await().body();
      assertEquals(owner, e.getValue(), "placement of " + e.getKey());
    }
    HashRing ring = HashRing.of(List.of(a.url(), b.url(), c.url()));
    for (Map.Entry<String, String> e : arrivedAt.entrySet()) {
      assertEquals(ring.owner(HashRing.hashKey(e.getKey())), e.getValue(), "placement of " + e.getKey());
    }
    assertEquals(total, proxy.metrics().received());
    assertEquals(total, proxy.metrics().forwarded());
  }

  private JsonObject findMetric(String key) {
    for (TestGlobal g : List.of(a, b, c)) {
      for (JsonObject m : g.metrics) if (Bodies.key(m).equals(key)) return m;
    }
    throw new AssertionError("no metric " + key);
  }

  @Test
  void healthcheckAnswersOk() {
    var r = proxy.get("/healthcheck");
    assertEquals(200, r.statusCode());
    assertEquals("ok\n", r.body());
  }
}
