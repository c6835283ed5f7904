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
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Faulty globals over real sockets: nothing accepted may be lost or duplicated. */
@ExtendWith(VertxExtension.class)
class ResilienceIT {

  private static JsonObject faultConfig(TestGlobal... globals) {
    JsonArray urls = new JsonArray();
    for (TestGlobal g : globals) urls.add(g.url());
    return new JsonObject()
        .put("forward_addresses", urls)
        .put("forward_timeout", "300ms")
        .put("forward_retry_budget", "4s")
        .put("forward_retry_backoff", "50ms")
        .put("eject_after_failures", 3)
        .put("eject_probe_interval", "100ms");
  }

  /** Posts bodies of generated metrics; returns every key sent. */
  private static Set<String> send(TestProxy proxy, String prefix, int bodies, int perBody) {
    Set<String> keys = new java.util.HashSet<>();
    for (int i = 0; i < bodies; i++) {
      JsonArray body = Bodies.generate(prefix + i, perBody, i);
      for (Object o : body) keys.add(Bodies.key((JsonObject) o));
      assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(body.encode())), "deflate").statusCode());
    }
    return keys;
  }

  /** Every key sent arrived exactly once across the globals. */
  private static void assertExactlyOnce(Set<String> sent, TestGlobal... globals) {
    Map<String, Integer> seen = new HashMap<>();
    for (TestGlobal g : globals) {
      for (JsonObject m : g.metrics) seen.merge(Bodies.key(m), 1, Integer::sum);
    }
    for (String k : sent) assertEquals(1, seen.getOrDefault(k, 0), "deliveries of " + k);
  }

  private static int delivered(TestGlobal... globals) {
    int n = 0;
    for (TestGlobal g : globals) n += g.metrics.size();
    return n;
  }

  @Test
  void aGlobalFailingForTwoSecondsLosesAndDuplicatesNothing(Vertx vertx) {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal flaky = TestGlobal.start(vertx);
    // A budget well past the 2 s outage plus one maximal backoff (2 s), so no retry schedule can
    // run out of budget before the global is back.
    TestProxy proxy = TestProxy.start(vertx, faultConfig(a, flaky).put("eject_after_failures", 0)
        .put("forward_retry_budget", "8s"));
    try {
      flaky.status.set(500);
      vertx.setTimer(2000, t -> flaky.status.set(202));
      Set<String> sent = send(proxy, "blip", 10, 500);
      Await.until("all delivered", Duration.ofSeconds(30), () -> delivered(a, flaky) >= sent.size());
      proxy.awaitSettled();
      assertExactlyOnce(sent, a, flaky);
      assertEquals(sent.size(), delivered(a, flaky), "no duplicates");
      assertTrue(flaky.refusedPosts.get() > 0, "the global did fail");
      assertEquals(0, proxy.metrics().droppedTotal());
      // Each key still at its ring owner: retries go to the same global.
      HashRing ring = HashRing.of(List.of(a.url(), flaky.url()));
      for (JsonObject m : flaky.metrics) assertEquals(flaky.url(), ring.owner(HashRing.hashKey(Bodies.key(m))));
    } finally {
      proxy.stop();
    }
  }

  @Test
  void aHangingGlobalIsEjectedThenReadmittedWhenItAnswers(Vertx vertx) {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    TestGlobal hung = TestGlobal.start(vertx);
    hung.status.set(0);
    TestProxy proxy = TestProxy.start(vertx, faultConfig(a, b, hung));
    try {
      HashRing full = HashRing.of(List.of(a.url(), b.url(), hung.url()));
      Set<String> sent = send(proxy, "hang", 6, 500);
      // a and b get their own share without waiting on the hung global.
      long ownOfA = sent.stream().filter(k -> full.owner(HashRing.hashKey(k)).equals(a.url())).count();
      Await.until("a receives its own keys", () -> a.metrics.stream()
          .filter(m -> full.owner(HashRing.hashKey(Bodies.key(m))).equals(a.url())).count() == ownOfA);

      Await.until("hung global ejected", () -> proxy.metrics().count("forward.ejections", "destination", hung.url()) == 1);
      Await.until("its share delivered elsewhere", Duration.ofSeconds(30), () -> delivered(a, b) == sent.size());
      proxy.awaitSettled();
      assertExactlyOnce(sent, a, b, hung);
      assertEquals(0, proxy.metrics().droppedTotal());
      assertTrue(proxy.metrics().count(ProxyMetrics.FORWARD_ERRORS, "cause", "io") > 0);
      assertEquals(Set.of(a.url(), b.url()), Set.copyOf(proxy.ringMembers()));
      var state = new JsonObject(proxy.get("/debug/state").body());
      assertEquals(new JsonArray().add(hung.url()), state.getJsonArray("ejected"));
      assertEquals(state.getJsonObject("accounting").getLong("received"),
          state.getJsonObject("accounting").getLong("forwarded_plus_dropped_plus_queued"));

      hung.status.set(202);
      Await.until("re-admitted", () -> proxy.metrics().count("forward.readmissions", "destination", hung.url()) == 1);
      Await.equal("routing ring whole again", Set.of(a.url(), b.url(), hung.url()), () -> Set.copyOf(proxy.ringMembers()));
      Set<String> more = send(proxy, "after", 2, 500);
      long ownOfHung = more.stream().filter(k -> full.owner(HashRing.hashKey(k)).equals(hung.url())).count();
      Await.until("the re-admitted global gets its share", () -> hung.metrics.size() == ownOfHung);
      proxy.awaitSettled();
    } finally {
      proxy.stop();
    }
  }

  @Test
  void aGlobalKilledForGoodLosesNothing(Vertx vertx) {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    TestGlobal doomed = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, faultConfig(a, b, doomed));
    try {
      Set<String> before = send(proxy, "alive", 2, 500);
      Await.until("first bodies delivered", () -> delivered(a, b, doomed) == before.size());
      // Killed for good; the static list (like Consul) still names it.
      doomed.stop();
      Set<String> after = send(proxy, "dead", 8, 500);
      Await.until("everything delivered to the living", Duration.ofSeconds(30),
          () -> delivered(a, b) + doomedBefore(doomed) == before.size() + after.size());
      proxy.awaitSettled();
      assertEquals(0, proxy.metrics().droppedTotal());
      assertEquals(1, proxy.metrics().count("forward.ejections", "destination", doomed.url()));
      java.util.Set<String> all = new java.util.HashSet<>(before);
      all.addAll(after);
      assertExactlyOnce(all, a, b, doomed);
    } finally {
      proxy.stop();
    }
  }

  private static int doomedBefore(TestGlobal doomed) {
    return doomed.metrics.size();
  }

  @Test
  void whenEveryGlobalIsEquallySlowNoneIsEjectedForIt(Vertx vertx) {
    // What a starved proxy host or a slow network looks like from inside: every global answers
    // after 800 ms, past eject_slow_after. Ejecting them would only move series around.
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    a.delayMs.set(800);
    b.delayMs.set(800);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_addresses", new JsonArray().add(a.url()).add(b.url()))
        .put("eject_slow_after", "300ms")
        .put("batch_max_metrics", 200));
    try {
      Set<String> sent = send(proxy, "all.slow", 10, 200);
      Await.until("everything delivered", Duration.ofSeconds(60), () -> delivered(a, b) == sent.size());
      proxy.awaitSettled();
      assertExactlyOnce(sent, a, b);
      assertEquals(0, proxy.metrics().count("forward.ejections", "destination", a.url()));
      assertEquals(0, proxy.metrics().count("forward.ejections", "destination", b.url()));
      // And the same slowness on one global alone does eject it.
      b.delayMs.set(0);
      Set<String> more = send(proxy, "one.slow", 20, 200);
      Await.until("the slow one ejected", Duration.ofSeconds(30),
          () -> proxy.metrics().count("forward.ejections", "destination", a.url()) == 1);
      Await.until("everything delivered", Duration.ofSeconds(60),
          () -> delivered(a, b) == sent.size() + more.size());
      proxy.awaitSettled();
      assertEquals(0, proxy.metrics().droppedTotal());
    } finally {
      proxy.stop();
    }
  }
}
