package dev.veneur.proxy.forward;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class PeersTest {
  @Test
  void slowIsRelativeToTheMedianOfTheOthers() {
    assertTrue(Peers.slowerThan(301, List.of(100L, 90L, 5_000L)), "median 100, one slow peer does not lift it");
    assertFalse(Peers.slowerThan(300, List.of(100L, 90L, 5_000L)));
    assertFalse(Peers.slowerThan(10_000, List.of(5_000L, 6_000L)), "everyone slow: the host is, not this global");
    assertFalse(Peers.slowerThan(Long.MAX_VALUE / 4, List.of()), "no other global: nowhere to go");
  }

  @Test
  void saturatedIsRelativeToTheMedianQueueOfTheOthers() {
    assertTrue(Peers.drainsWorse(4_001, List.of(1_000L, 900L, 1_100L)));
    assertFalse(Peers.drainsWorse(4_000, List.of(1_000L, 900L, 1_100L)));
    assertFalse(Peers.drainsWorse(1_000_000, List.of(800_000L, 900_000L)), "every queue long: the load is");
    assertFalse(Peers.drainsWorse(1_000_000, List.of()));
    assertTrue(Peers.drainsWorse(1, List.of(0L, 0L)), "the others empty");
  }
}
