package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** A broken global costs only its own share; failures are counted, never mistaken for success. */
@ExtendWith(VertxExtension.class)
class FailingGlobalIT {

  private static int expectedFor(HashRing ring, String url, JsonArray metrics) {
    int n = 0;
    for (Object o : metrics) {
      if (ring.owner(HashRing.hashKey(Bodies.key((JsonObject) o))).equals(url)) n++;
    }
    return n;
  }

  @Test
  void globalAnswering500IsCountedAndOthersUnaffected(Vertx vertx) {
    TestGlobal good = TestGlobal.start(vertx);
    TestGlobal bad = TestGlobal.start(vertx);
    bad.status.set(500);
    run(vertx, good, bad.url(), "500", () -> bad.refusedPosts.get() > 0);
  }

  @Test
  void globalThatIsDownIsCountedAndOthersUnaffected(Vertx vertx) {
    TestGlobal good = TestGlobal.start(vertx);
    String down = "http://127.0.0.1:" + TestProxy.freePort();
    run(vertx, good, down, "io", () -> true);
  }

  @Test
  void aGlobalRefusingEverythingCostsABoundedNumberOfPostsAndDropsAsRejected(Vertx vertx) {
    TestGlobal picky = TestGlobal.start(vertx);
    picky.status.set(400);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject().put("forward_address", picky.url()));
    try {
      assertEquals(202, proxy.post(Bodies.utf8(Bodies.generate("bad", 100, 3).encode()), null).statusCode());
      proxy.awaitSettled();
      assertEquals(100, proxy.metrics().dropped("rejected"));
      assertEquals(0, proxy.metrics().dropped("retries_exhausted"), "a 4xx is never retried as such");
      int posts = picky.refusedPosts.get();
      assertTrue(posts > 1 && posts <= 1 + 64, "splitting is bounded: " + posts + " POSTs");
    } finally {
      proxy.stop();
    }
  }

  @Test
  void aBatchTheGlobalRefusesIsSplitUntilOnlyThePoisonedMetricIsDropped(Vertx vertx) {
    TestGlobal picky = TestGlobal.start(vertx);
    // Stands in for a metric only the global's decoder refuses (one the proxy's checks let through).
    picky.refuseIfContains.set("\"poison.metric\"");
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", picky.url())
        .put("batch_linger", "200ms"));
    try {
      JsonArray a = Bodies.generate("sender.a", 700, 1);
      JsonArray b = Bodies.generate("sender.b", 700, 2);
      b.getJsonObject(333).put("name", "poison.metric");
      // Two senders' bodies; with one global each valid zlib body goes as it came, a batch of its
      // own, so the refused one is the poisoned body, split (read as the request it was) until
      // only the poisoned metric is left.
      assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(a.encode())), "deflate").statusCode());
      assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(b.encode())), "deflate").statusCode());
      proxy.awaitSettled();
      assertEquals(1, proxy.metrics().dropped("rejected"), "only the poisoned metric is dropped");
      assertEquals(1399, proxy.metrics().forwarded());
      assertEquals(1399, picky.metrics.size());
      assertTrue(picky.metrics.stream().noneMatch(m -> "poison.metric".equals(m.getString("name"))));
      assertTrue(picky.refusedPosts.get() <= 2 * 12, "about two refused POSTs per halving: " + picky.refusedPosts.get());
    } finally {
      proxy.stop();
    }
  }

  private void run(Vertx vertx, TestGlobal good, String badUrl, String cause,
      java.util.function.BooleanSupplier badWasTried) {
    // Ejection off and a short retry budget: the Go proxy's one-destination-per-key behaviour,
    // where a failing global's share is retried, then dropped and counted.
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_addresses", new JsonArray().add(good.url()).add(badUrl))
        .put("eject_after_failures", 0)
        .put("forward_retry_budget", "400ms")
        .put("forward_retry_backoff", "20ms"));
    try {
      HashRing ring = HashRing.of(List.of(good.url(), badUrl));
      JsonArray metrics = Bodies.generate("fail", 2000, 7);
      int forGood = expectedFor(ring, good.url(), metrics);
      int forBad = metrics.size() - forGood;
      assertTrue(forGood > 0 && forBad > 0, "both destinations own keys");

      assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(metrics.encode())), "deflate").statusCode());
      Await.until("good global got its share", () -> good.metrics.size() == forGood);
      proxy.awaitSettled();
      assertTrue(badWasTried.getAsBoolean());
      ProxyMetrics m = proxy.metrics();
      assertEquals(forGood, m.forwarded());
      assertEquals(forBad, m.dropped("retries_exhausted"));
      assertTrue(m.count(ProxyMetrics.FORWARD_ERRORS, "cause", cause) > 0,
          "forward.error_total cause:" + cause + " counted");

      // The proxy keeps serving: a second body still reaches the good global.
      assertEquals(202, proxy.post(Bodies.utf8(metrics.encode()), null).statusCode());
      Await.until("good global got its share again", () -> good.metrics.size() == 2 * forGood);
      proxy.awaitSettled();
    } finally {
      proxy.stop();
    }
  }

  @Test
  void aGlobalAnswering404IsFailingNotRefusingItsShareGoesElsewhere(Vertx vertx) {
    TestGlobal good = TestGlobal.start(vertx);
    TestGlobal wrong = TestGlobal.start(vertx);
    wrong.status.set(404); // a wrong port, a path some other server owns
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_addresses", new JsonArray().add(good.url()).add(wrong.url()))
        .put("eject_probe_interval", "1h"));
    try {
      JsonArray metrics = Bodies.generate("misrouted", 2000, 11);
      assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(metrics.encode())), "deflate").statusCode());
      Await.until("everything delivered to the good global", () -> good.metrics.size() == 2000);
      proxy.awaitSettled();
      assertEquals(0, proxy.metrics().droppedTotal(), "a 404 is not a refusal of the data");
      assertEquals(1, proxy.metrics().count("forward.ejections", "destination", wrong.url()));
      assertTrue(wrong.refusedPosts.get() <= 8, "no halving against a 404: " + wrong.refusedPosts.get() + " POSTs");
    } finally {
      proxy.stop();
    }
  }

  @Test
  void aRefusalAnsweredAfterTheShutdownDeadlineStillLetsTheStopFinish(Vertx vertx) {
    TestGlobal picky = TestGlobal.start(vertx);
    picky.status.set(400);
    picky.delayMs.set(1500);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", picky.url())
        .put("shutdown_timeout", "500ms"));
    assertEquals(202, proxy.post(Bodies.utf8(Bodies.generate("late.refusal", 2, 5).encode()), null).statusCode());
    Await.until("the POST is in flight", () -> picky.refusedPosts.get() == 1);
    // The 400 comes back after the shutdown deadline: its halves must not wait for a POST that
    // will never start.
    proxy.stop();
    ProxyMetrics m = proxy.metrics();
    assertEquals(0, m.queued());
    assertEquals(2, m.droppedTotal());
    assertEquals(0, proxy.app.context().budget().used(), "every byte given back");
  }
}
