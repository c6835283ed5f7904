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
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The ring with its forwarders as the proxy relies on them: one per member before the member
 * routes, retired when it leaves, and all of them undeployed with the ring (the proxy's stop
 * undeploys the ring and counts on its forwarders draining with it).
 */
@ExtendWith(VertxExtension.class)
class RingVerticleTest {
  private final Set<String> running = ConcurrentHashMap.newKeySet();

  private final class Recorder extends VerticleBase {
    private final String member;

    Recorder(String member) {
      this.member = member;
    }

    @Override
    public Future<?> start() {
      running.add(member);
      return Future.succeededFuture();
    }

    @Override
    public Future<?> stop() {
      running.remove(member);
      return Future.succeededFuture();
    }
  }

  private static List<String> routing(Vertx vertx) {
    return vertx.eventBus().<HashRing>request(Addresses.RING_CURRENT, null).await().body().members();
  }

  @Test
  void forwardersFollowMembersAndLeaveWithTheRing(Vertx vertx) {
    LocalCodec.registerAll(vertx);
    Dispatch.registerCodecs(vertx);
    ProxyContext ctx = new ProxyContext(ProxyConfig.from(new JsonObject().put("forward_address", "http://127.0.0.1:1")));
    String ring = vertx.deployVerticle(new RingVerticle(ctx, Recorder::new)).await();
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
