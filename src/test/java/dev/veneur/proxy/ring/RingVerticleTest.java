package dev.veneur.proxy.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.LocalCodec;
import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Await;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The ring with its forwarders as the proxy relies on them: one per member before the member
 * routes, retired when it leaves, and all of them undeployed with the ring (the proxy's stop
 * undeploys the ring and counts on its forwarders draining with it).
 */
@ExtendWith(VertxExtension.class)
class RingVerticleTest {
  private final RecordingForwarders forwarders = new RecordingForwarders();
  private final Set<String> running = forwarders.running;

  private static List<String> routing(Vertx vertx) {
    return vertx.eventBus().<dev.veneur.proxy.routing.RingSet>request(Addresses.RING_CURRENT, null).await().body()
        .forJson().members();
  }

  @Test
  void forwardersFollowMembersAndLeaveWithTheRing(Vertx vertx) {
    LocalCodec.registerAll(vertx);
    Dispatch.registerCodecs(vertx);
    ProxyContext ctx = new ProxyContext(ProxyConfig.from(new JsonObject().put("forward_address", "http://127.0.0.1:1")));
    String ring = vertx.deployVerticle(new RingVerticle(ctx, forwarders)).await();
    int before = vertx.deploymentIDs().size();

    vertx.eventBus().request(Addresses.RING_MEMBERS, new Membership("test", List.of("http://a:1", "http://b:1"))).await();
    Await.until("both members route", () -> routing(vertx).size() == 2);
    assertEquals(Set.of("http://a:1", "http://b:1"), running, "a forwarder for every routing member");

    vertx.eventBus().request(Addresses.RING_MEMBERS, new Membership("test", List.of("http://b:1", "http://c:1"))).await();
    Await.until("a left, c joined", () -> routing(vertx).equals(HashRing.of(List.of("http://b:1", "http://c:1")).members()));
    Await.until("a's forwarder retired", () -> running.equals(Set.of("http://b:1", "http://c:1")));

    vertx.undeploy(ring).await();
    assertEquals(Set.of(), running, "the forwarders are undeployed with the ring: they are its children");
    assertEquals(before - 1, vertx.deploymentIDs().size());
  }

  private String startRing(Vertx vertx, ProxyContext ctx) {
    LocalCodec.registerAll(vertx);
    Dispatch.registerCodecs(vertx);
    return vertx.deployVerticle(new RingVerticle(ctx, forwarders)).await();
  }

  private static void members(Vertx vertx, String... urls) {
    vertx.eventBus().request(Addresses.RING_MEMBERS, new Membership("test", List.of(urls))).await();
  }

  /**
   * Issue 21: a new member set none of whose forwarders can start yet must not empty the ring (the
   * issue lost 116,246 metrics as no_destination); the last good ring routes until a retry starts
   * one of the new members, then the new set applies and the old forwarders retire.
   */
  @Test
  void aSetWhoseForwardersCannotStartKeepsTheLastGoodRingUntilARetryStartsOne(Vertx vertx) {
    ProxyContext ctx = new ProxyContext(ProxyConfig.from(new JsonObject().put("forward_address", "http://127.0.0.1:1")));
    startRing(vertx, ctx);
    members(vertx, "http://a:1", "http://b:1");
    Await.until("a and b route", () -> routing(vertx).size() == 2);

    forwarders.failFirst.put("http://c:1", new java.util.concurrent.atomic.AtomicInteger(3));
    forwarders.failFirst.put("http://d:1", new java.util.concurrent.atomic.AtomicInteger(3));
    int before = forwarders.starts.get();
    members(vertx, "http://c:1", "http://d:1");
    Await.until("c and d were tried", () -> forwarders.starts.get() >= before + 2);
    assertEquals(HashRing.of(List.of("http://a:1", "http://b:1")).members(), routing(vertx),
        "the last good ring stays while no new forwarder started");
    assertEquals(Set.of("http://a:1", "http://b:1"), running, "the old forwarders are kept");

    Await.until("a retry started c and d, and the new set applies", java.time.Duration.ofSeconds(20),
        () -> routing(vertx).equals(HashRing.of(List.of("http://c:1", "http://d:1")).members()));
    Await.until("a and b retired", () -> running.equals(Set.of("http://c:1", "http://d:1")));
    assertTrue(forwarders.starts.get() >= before + 8, "each of c and d failed 3 times, then started");
  }

  /** One member that cannot start yet, or cannot be a member at all, never holds the others back. */
  @Test
  void aMemberThatCannotStartOrIsInvalidDoesNotHoldTheOthersBack(Vertx vertx) {
    ProxyContext ctx = new ProxyContext(ProxyConfig.from(new JsonObject().put("forward_address", "http://127.0.0.1:1")));
    startRing(vertx, ctx);
    forwarders.failFirst.put("http://late:1", new java.util.concurrent.atomic.AtomicInteger(2));
    members(vertx, "http://a:1", "http://late:1", "http://127.0.0.1:70000", "http://127.0.0.1/x?y=",
        "http://evil\nERROR forged:1");
    Await.until("a routes", () -> routing(vertx).equals(List.of("http://a:1")));
    Await.until("late joins once its forwarder starts", java.time.Duration.ofSeconds(20),
        () -> routing(vertx).equals(HashRing.of(List.of("http://a:1", "http://late:1")).members()));
    assertEquals(Set.of("http://a:1", "http://late:1"), running, "no forwarder for an invalid member");
    assertEquals(1, ctx.metrics().registry().counter(
        "discoverer.invalid_members#source:test,cause:port").getCount());
    assertEquals(1, ctx.metrics().registry().counter(
        "discoverer.invalid_members#source:test,cause:path").getCount());
    assertEquals(1, ctx.metrics().registry().counter(
        "discoverer.invalid_members#source:test,cause:control_character").getCount());
  }
}
