package dev.veneur.proxy.forward;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.core.ProxyContext;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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

  @Test
  void oneSaturationEjectionAtATime() {
    Map<String, ProxyContext.DestinationState> all = new LinkedHashMap<>();
    for (String d : List.of("a", "b", "c")) all.put(d, new ProxyContext.DestinationState());
    assertTrue(Peers.noneOut(all, "b"));
    all.get("b").excluded = true;
    assertTrue(Peers.noneOut(all, "b"), "itself out does not count");
    assertFalse(Peers.noneOut(all, "a"), "b is out: a's long queue may be b's backlog");
    all.get("b").excluded = false;
    assertTrue(Peers.noneOut(all, "a"));
  }

  @Test
  void peersAreTheOtherGlobalsStillInTheRing() {
    Map<String, ProxyContext.DestinationState> all = new LinkedHashMap<>();
    ProxyContext.DestinationState self = state(500, false);
    all.put("http://self", self);
    all.put("http://a", state(100, false));
    all.put("http://out", state(50, true));
    all.put("http://new", state(0, false));
    assertEquals(List.of(100L, 0L), Peers.others(all, "http://self", s -> s.latencyEwmaNanos, false),
        "itself and an ejected global are not peers");
    assertEquals(List.of(100L), Peers.others(all, "http://self", s -> s.latencyEwmaNanos, true),
        "for latency, only globals that answered once");
  }

  private static ProxyContext.DestinationState state(long latency, boolean excluded) {
    ProxyContext.DestinationState s = new ProxyContext.DestinationState();
    s.latencyEwmaNanos = latency;
    s.excluded = excluded;
    return s;
  }
}
