package dev.veneur.proxy.forward;

import dev.veneur.proxy.support.ManualTimers;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SendWindowTest {
  private final ManualTimers timers = new ManualTimers();
  private int readyCalls;
  private final SendWindow window = new SendWindow(timers, () -> readyCalls++);

  private static Batch batch(int metrics) {
    return Batch.of(new ArrayList<>(List.of(Chunks.of(metrics, 10))));
  }

  @Test
  void neverMoreInFlightThanTheWindow() {
    Batch a = batch(1), b = batch(2), c = batch(3);
    window.add(a);
    window.add(b);
    window.add(c);
    assertSame(a, window.next(2));
    assertSame(b, window.next(2));
    assertNull(window.next(2), "two in flight with a window of two");
    assertNull(window.next(1), "a window that shrank (a failing global's one trial) waits");
    window.ended();
    window.ended();
    assertSame(c, window.next(1));
    assertEquals(1, window.inFlight());
    assertFalse(window.idle());
    window.ended();
    assertTrue(window.idle());
  }

  @Test
  void aRetryWaitsItsBackoffThenGoesFirst() {
    Batch failed = batch(1), later = batch(2);
    window.retryAfter(failed, 100);
    window.add(later);
    timers.advance(99);
    assertEquals(0, readyCalls);
    assertFalse(window.idle(), "a batch waiting out its backoff is still held");
    timers.advance(1);
    assertEquals(1, readyCalls);
    assertSame(failed, window.next(5));
    assertSame(later, window.next(5));
  }

  @Test
  void takeQueuedTakesReadyAndWaitingAndCancelsBackoffs() {
    Batch r = batch(1), w = batch(2), inFlight = batch(4);
    window.add(inFlight);
    assertSame(inFlight, window.next(1));
    window.add(r);
    window.retryAfter(w, 100);
    List<Batch> taken = new ArrayList<>();
    window.takeQueued(taken::add);
    assertEquals(List.of(r, w), taken);
    timers.advance(1_000);
    assertEquals(0, readyCalls, "a cancelled backoff does not come back");
    assertEquals(1, window.inFlight(), "what is in flight is not taken");
  }

  @Test
  void hurryWaitingPutsBackoffsFirstAtOnce() {
    Batch r = batch(1), w = batch(2);
    window.add(r);
    window.retryAfter(w, 10_000);
    window.hurryWaiting();
    assertSame(w, window.next(5));
    assertSame(r, window.next(5));
    assertEquals(0, timers.pending());
  }

  @Test
  void sweepTakesOnlyWhatExpired() {
    Batch old = new Batch(new ArrayList<>(List.of(Chunks.of(5, 10))), new int[] {0}, 0);
    Batch fresh = new Batch(new ArrayList<>(List.of(Chunks.of(7, 10))), new int[] {0}, 1_000);
    window.add(old);
    window.add(fresh);
    List<Batch> swept = new ArrayList<>();
    assertEquals(5, window.sweepReady(b -> b.cutNanos < 500, swept::add));
    assertEquals(List.of(old), swept);
    assertSame(fresh, window.next(5));
  }

  @Test
  void aSplitInProgressCountsInFlight() {
    window.begin();
    assertFalse(window.idle());
    window.add(batch(1));
    assertNull(window.next(1));
    window.ended();
    assertTrue(window.next(1) != null);
  }
}
