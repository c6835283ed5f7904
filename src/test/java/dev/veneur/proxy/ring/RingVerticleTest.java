package dev.veneur.proxy.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
    return vertx.eventBus().<HashRing>request(Addresses.RING_CURRENT, null).await().body().members();
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
}
