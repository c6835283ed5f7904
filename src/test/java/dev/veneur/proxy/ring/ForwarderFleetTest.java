package dev.veneur.proxy.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import io.vertx.junit5.VertxTestContext;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The ring's supervisor role over a real Vertx, with forwarders that only record their life. */
@ExtendWith(VertxExtension.class)
class ForwarderFleetTest {
  private final Set<String> running = ConcurrentHashMap.newKeySet();
  private final AtomicInteger starts = new AtomicInteger();

  private final class Recorder extends VerticleBase {
    private final String member;

    Recorder(String member) {
      this.member = member;
    }

    @Override
    public Future<?> start() {
      starts.incrementAndGet();
      if (member.contains("broken")) return Future.failedFuture("cannot start");
      running.add(member);
      return Future.succeededFuture();
    }

    @Override
    public Future<?> stop() {
      running.remove(member);
      return Future.succeededFuture();
    }
  }

  @Test
  void oneForwarderPerMemberStartedOnceRetiredWhenAsked(Vertx vertx, VertxTestContext tc) {
    vertx.runOnContext(v -> {
      ForwarderFleet fleet = new ForwarderFleet(vertx, Recorder::new);
      fleet.open(List.of("http://a:1", "http://b:1", "http://broken:1"))
          .compose(x -> {
            tc.verify(() -> {
              assertEquals(Set.of("http://a:1", "http://b:1"), running);
              assertTrue(fleet.has("http://a:1"));
              assertFalse(fleet.has("http://broken:1"), "a forwarder that failed to start is not counted");
              assertEquals(Set.of("http://a:1", "http://b:1"), Set.copyOf(fleet.members()));
            });
            return fleet.open(List.of("http://a:1", "http://b:1", "http://c:1"));
          })
          .compose(x -> {
            tc.verify(() -> assertEquals(4, starts.get(), "a and b are not started twice"));
            return fleet.retire("http://a:1");
          })
          .compose(x -> fleet.retire("http://never:1"))
          .onComplete(tc.succeeding(x -> tc.verify(() -> {
            assertEquals(Set.of("http://b:1", "http://c:1"), running);
            assertFalse(fleet.has("http://a:1"));
            tc.completeNow();
          })));
    });
  }
}
