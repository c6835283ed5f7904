package dev.veneur.proxy.forward;

import java.util.ArrayList;
import java.util.List;

/**
 * Whether one global is worse than the others, the test behind ejecting it for slowness or for
 * saturation. Always relative: when every global is slow or every queue is long, it is the proxy's
 * host, its network or the load that is the matter, and ejecting one would only misplace series and
 * move the backlog. With no other global there is nowhere to send its keys, so never.
 */
final class Peers {
  private Peers() {}

  /** More than three times the median recent answer time of the others. */
  static boolean slowerThan(long elapsedNanos, List<Long> peerLatencies) {
    Long median = median(peerLatencies);
    return median != null && elapsedNanos > 3 * median;
  }

  /** Holds more than four times the median queue of the others. */
  static boolean drainsWorse(long queuedBytes, List<Long> peerQueues) {
    Long median = median(peerQueues);
    return median != null && queuedBytes > 4 * median;
  }

  /**
   * Whether every other global is in the ring: a saturation ejection waits while another is out.
   * The one out handed its backlog to the others, so their queues are long for a reason that is
   * not theirs; ejecting them for it moved the backlog round and round (all three globals of a
   * bench, in turn, each move a re-split of 50 MiB). Failures still eject at any time. As Envoy's
   * max_ejection_percent keeps outlier detection from emptying a cluster.
   */
  static boolean noneOut(java.util.Map<String, dev.veneur.proxy.core.ProxyContext.DestinationState> all, String self) {
    for (var e : all.entrySet()) {
      if (!e.getKey().equals(self) && e.getValue().excluded) return false;
    }
    return true;
  }

  private static Long median(List<Long> values) {
    if (values.isEmpty()) return null;
    List<Long> sorted = new ArrayList<>(values);
    sorted.sort(null);
    return sorted.get(sorted.size() / 2);
  }

  /**
   * A figure of every other global in the ring (not excluded); with {@code answered}, only of those
   * that answered at least once.
   */
  static List<Long> others(java.util.Map<String, dev.veneur.proxy.core.ProxyContext.DestinationState> all, String self,
      java.util.function.ToLongFunction<dev.veneur.proxy.core.ProxyContext.DestinationState> figure, boolean answered) {
    List<Long> out = new java.util.ArrayList<>();
    all.forEach((d, s) -> {
      if (!d.equals(self) && !s.excluded && (!answered || s.latencyEwmaNanos > 0)) out.add(figure.applyAsLong(s));
    });
    return out;
  }
}
