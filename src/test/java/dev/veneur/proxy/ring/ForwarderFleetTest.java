package dev.veneur.proxy.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import io.vertx.junit5.VertxTestContext;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The ring's supervisor role over a real Vertx, with forwarders that only record their life. */
@ExtendWith(VertxExtension.class)
class ForwarderFleetTest {
  private final RecordingForwarders forwarders = new RecordingForwarders();
  private final Set<String> running = forwarders.running;

  @Test
  void oneForwarderPerMemberStartedOnceRetiredWhenAsked(Vertx vertx, VertxTestContext tc) {
    vertx.runOnContext(v -> {
      ForwarderFleet fleet = new ForwarderFleet(vertx, forwarders);
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
            tc.verify(() -> assertEquals(4, forwarders.starts.get(), "a and b are not started twice"));
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
