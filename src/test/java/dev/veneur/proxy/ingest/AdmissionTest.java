package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.support.ManualTimers;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Budget admission, shared by /import bodies and gRPC calls, on a hand-moved clock. */
class AdmissionTest {
  static final long WAIT_MS = 1_000;
  static final long DEADLINE_MS = 10_000;

  final ManualTimers clock = new ManualTimers();
  final MemoryBudget budget = new MemoryBudget(() -> 1_000);

  /** A source and its listener, recording what happened to them. */
  final class Request implements Admission.Source, Admission.Listener {
    final List<String> events = new ArrayList<>();
    boolean paused;
    final Admission admission;

    Request(long growth) {
      this(growth, WAIT_MS);
    }

    Request(long growth, long waitMs) {
      // The budget resumes a waiter through this executor: at once, on the test's thread.
      admission = new Admission(budget, clock, Runnable::run, waitMs * 1_000_000, growth, this);
      admission.begin(this, DEADLINE_MS);
    }

    @Override
    public void pause() {
      paused = true;
      events.add("pause");
    }

    @Override
    public void resume() {
      paused = false;
      events.add("resume");
    }

    @Override
    public void overloaded() {
      events.add("overloaded");
    }

    @Override
    public void tooSlow() {
      events.add("tooSlow");
    }

    void read(long n) {
      admission.arrived(n);
      admission.checkMemory();
    }
  }

  @Test
  void readsAreReservedAsTheyArriveAndAWholeBodyStaysReservedForItsDecoder() {
    Request r = new Request(1);
    r.read(100);
    r.read(50);
    assertEquals(150, budget.used());
    assertEquals(150, budget.receiving());
    assertEquals(150, r.admission.complete());
    assertEquals(150, budget.used(), "a whole body stays reserved until the decoder is done with it");
    assertEquals(0, budget.receiving());
    clock.advance(DEADLINE_MS * 2);
    assertEquals(List.of(), r.events, "a completed request hears nothing of its deadline");
    assertEquals(0, clock.pending(), "no timer outlives the request");
  }

  @Test
  void aRequestEndedEarlyGivesEverythingBack() {
    Request r = new Request(2);
    r.read(100);
    assertEquals(200, budget.used(), "growth 2: a byte is reserved as two");
    r.admission.consumed(40);
    assertEquals(120, budget.used(), "a consumed message gives back what it cost");
    r.admission.finish();
    assertEquals(0, budget.used());
    assertEquals(0, budget.receiving());
    assertEquals(0, clock.pending());
  }

  @Test
  void aFullBudgetPausesTheSourceUntilRoomIsMade() {
    budget.reserve(1_000); // queued data fills it: nobody may lead
    Request r = new Request(1);
    r.read(10);
    assertTrue(r.paused);
    assertTrue(r.admission.paused());
    clock.advance(WAIT_MS / 2);
    budget.release(500);
    assertFalse(r.paused, "resumed when memory was released");
    assertEquals(List.of("pause", "resume"), r.events);
    clock.advance(WAIT_MS * 2);
    assertEquals(List.of("pause", "resume"), r.events, "the wait's timer went with the wait");
    r.admission.complete();
  }

  @Test
  void memoryWaitTimeoutCountsEveryWaitOfTheRequest() {
    budget.reserve(1_000);
    Request r = new Request(1);
    r.read(10);
    clock.advance(600);
    budget.release(100); // resumed...
    budget.reserve(100); // ...and full again at the next read
    r.read(10);
    assertEquals(List.of("pause", "resume", "pause"), r.events);
    clock.advance(399);
    assertEquals(List.of("pause", "resume", "pause"), r.events);
    clock.advance(1);
    assertEquals(List.of("pause", "resume", "pause", "overloaded"), r.events,
        "600 + 400 ms waited in all: memory_wait_timeout is spent");
    r.admission.finish();
    assertEquals(1_000, budget.used(), "its 20 bytes went back");
  }

  @Test
  void theDeadlineSaysWhoseFaultItWas() {
    Request slow = new Request(1);
    slow.read(10);
    clock.advance(DEADLINE_MS);
    assertEquals(List.of("tooSlow"), slow.events, "free to send and did not: the sender's fault");
    slow.admission.finish();

    budget.reserve(1_000);
    // memory_wait_timeout longer than the deadline: the deadline comes while it is paused.
    Request held = new Request(1, DEADLINE_MS * 2);
    held.read(10);
    assertTrue(held.admission.paused());
    clock.advance(DEADLINE_MS - 1);
    assertEquals(List.of("pause"), held.events);
    clock.advance(1);
    assertEquals(List.of("pause", "overloaded"), held.events, "held back for memory: the proxy's fault");
    held.admission.finish();
    clock.advance(DEADLINE_MS * 2);
    assertEquals(List.of("pause", "overloaded"), held.events, "its memory wait ended with it");
    assertEquals(0, budget.waiting());
  }

  @Test
  void partialBodiesThatFillTheBudgetLetOneReadOn() {
    // Two senders' partial bodies fill the budget between them: if both paused, neither could
    // finish and free anything. The first to find it full leads and reads on; the other waits.
    Request a = new Request(1);
    Request b = new Request(1);
    a.read(600);
    b.read(400);
    assertFalse(b.paused, "b found it full first: b leads");
    a.read(10);
    assertTrue(a.paused, "one leader at a time");
    b.read(100);
    assertFalse(b.paused);
    budget.release(b.admission.complete()); // b decoded and let go
    assertFalse(a.paused, "a is resumed, and leads next");
    assertEquals(List.of("pause", "resume"), a.events);
    a.admission.finish();
    assertEquals(0, budget.used());
  }

  @Test
  void aFinishedRequestIgnoresLateReadsAndWakeUps() {
    budget.reserve(1_000);
    Request r = new Request(1);
    r.read(10);
    r.admission.finish();
    r.read(10);
    budget.release(1_000);
    clock.advance(DEADLINE_MS * 2);
    assertEquals(List.of("pause"), r.events);
    assertEquals(0, budget.used());
    assertEquals(0, budget.waiting());
  }

  @Test
  void aRequestEndedWhileWaitingPassesTheWakeUpOn() {
    budget.reserve(995); // queued data: nobody may lead
    Request first = new Request(1);
    first.read(10);
    Request second = new Request(1);
    second.read(1);
    assertTrue(first.paused && second.paused);
    // Refused at its wait timeout, say: its 10 bytes go back, which is room enough for a waiter.
    first.admission.finish();
    assertEquals(List.of("pause"), first.events, "an ended request is never resumed");
    assertEquals(List.of("pause", "resume"), second.events, "the next in line is woken instead");
    second.admission.finish();
    assertEquals(995, budget.used());
  }
}
