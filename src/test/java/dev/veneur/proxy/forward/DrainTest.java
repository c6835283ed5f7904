package dev.veneur.proxy.forward;

import dev.veneur.proxy.support.ManualTimers;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Future;
import org.junit.jupiter.api.Test;

class DrainTest {
  private final ManualTimers timers = new ManualTimers();
  private final Drain drain = new Drain(timers);

  @Test
  void idleChecksCountOnlyOnceDrainingBegan() {
    drain.check(true);
    assertFalse(drain.draining());
    Future<Void> done = drain.whenIdle();
    drain.check(false);
    assertFalse(done.isComplete());
    drain.check(true);
    assertTrue(done.succeeded());
    assertFalse(drain.closing(), "leaving the ring never closes: it hands its queue back instead");
  }

  @Test
  void stoppingClosesAtTheDeadlineAndStillWaitsForWhatIsInFlight() {
    int[] deadlines = new int[1];
    Future<Void> done = drain.whenIdleOrDeadline(5_000, () -> deadlines[0]++);
    timers.advance(4_999);
    assertFalse(drain.closing());
    timers.advance(1);
    assertTrue(drain.closing());
    assertEquals(1, deadlines[0]);
    assertFalse(done.isComplete(), "POSTs in flight get their own deadline");
    drain.check(true);
    assertTrue(done.succeeded());
  }

  @Test
  void idleBeforeTheDeadlineCancelsIt() {
    int[] deadlines = new int[1];
    Future<Void> done = drain.whenIdleOrDeadline(5_000, () -> deadlines[0]++);
    drain.check(true);
    assertTrue(done.succeeded());
    timers.advance(10_000);
    assertEquals(0, deadlines[0]);
    assertFalse(drain.closing());
  }
}
