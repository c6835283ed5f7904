package dev.veneur.proxy.forward;

import dev.veneur.proxy.support.ManualTimers;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class HealthProbeTest {
  private final ManualTimers timers = new ManualTimers();
  /** What the next probes answer; an empty queue answers "down". */
  private final ArrayDeque<Boolean> answers = new ArrayDeque<>();
  private int probes;
  private int healthy;
  private final HealthProbe probe = new HealthProbe(timers, () -> 1_000, done -> {
    probes++;
    done.accept(!answers.isEmpty() && answers.poll());
  }, () -> healthy++);

  @Test
  void backsOffWhileDownAndStopsWhenHealthy() {
    probe.start(0);
    assertEquals(1_000, probe.delayMs());
    timers.advance(1_000);
    assertEquals(1, probes);
    assertEquals(2_000, probe.delayMs(), "a failed probe doubles the interval");
    timers.advance(2_000);
    assertEquals(2, probes);
    answers.add(true);
    timers.advance(4_000);
    assertEquals(3, probes);
    assertEquals(1, healthy);
    assertFalse(probe.active(), "it ends by itself when the global answers");
    timers.advance(60_000);
    assertEquals(3, probes);
  }

  @Test
  void intervalIsJitteredAndCapped() {
    probe.start(0);
    timers.advance(200_000);
    assertEquals(HealthProbe.MAX_INTERVAL_MS, probe.delayMs());
    for (long d : timers.delays()) assertTrue(d >= 500 && d <= HealthProbe.MAX_INTERVAL_MS, "delay " + d);
  }

  @Test
  void startWhileActiveDoesNotStartASecondChain() {
    probe.start(0);
    probe.start(0);
    assertEquals(1, timers.pending());
  }

  @Test
  void stopEndsProbingEvenWithAProbeInFlight() {
    java.util.List<java.util.function.Consumer<Boolean>> inFlight = new java.util.ArrayList<>();
    HealthProbe p = new HealthProbe(timers, () -> 1_000, inFlight::add, () -> healthy++);
    p.start(0);
    timers.advance(1_000);
    assertEquals(1, inFlight.size());
    p.stop();
    inFlight.get(0).accept(true);
    assertEquals(0, healthy, "an answer after stop is ignored");
    assertEquals(0, timers.pending());
  }

  @Test
  void aFlappingGlobalStartsFromItsLastInterval() {
    probe.start(0);
    timers.advance(1_000 + 2_000);
    answers.add(true);
    timers.advance(4_000);
    assertEquals(1, healthy);
    long readmitted = TimeUnit.SECONDS.toNanos(10);
    probe.readmitted(readmitted);
    probe.start(readmitted + TimeUnit.SECONDS.toNanos(5));
    assertEquals(8_000, probe.delayMs(), "ejected again 5 s after re-admission: the backoff goes on growing");
    probe.stop();
    probe.start(readmitted + HealthProbe.FLAP_WINDOW_NANOS + 1);
    assertEquals(1_000, probe.delayMs(), "ejected long after: from the bottom");
  }
}
