package dev.veneur.proxy.forward;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Promise;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The ejection handshake against a ring the test answers by hand. */
class EjectionTest {
  /** Reports in the order sent: true for "healthy". */
  private final List<Boolean> reports = new ArrayList<>();
  private final List<Promise<Boolean>> answers = new ArrayList<>();
  private final List<String> heard = new ArrayList<>();
  private int ejectAfter = 3;
  private boolean mayEject = true;

  private final Ejection ejection = new Ejection("http://g:1", healthy -> {
    reports.add(healthy);
    Promise<Boolean> p = Promise.promise();
    answers.add(p);
    return p.future();
  }, new Ejection.Listener() {
    @Override
    public void exclusion(boolean out) {
      heard.add(out ? "out" : "in");
    }

    @Override
    public void readmissionAnswered() {
      heard.add("readmission answered");
    }

    @Override
    public void readmissionUnheard() {
      heard.add("readmission unheard");
    }
  }, () -> ejectAfter, () -> mayEject);

  private Promise<Boolean> lastAsk() {
    return answers.get(answers.size() - 1);
  }

  /** Its queue reached the cap, worse than its peers', and the ring took it out. */
  private void ejectedForAFullQueue() {
    ejection.queued(1_000, 1_000, () -> true);
    lastAsk().complete(true);
  }

  @Test
  void asksToBeTakenOutAfterStrikesInARowThenBackIn() {
    ejection.strike("a");
    ejection.strike("b");
    ejection.healthyAnswer();
    ejection.strike("c");
    ejection.strike("d");
    assertEquals(List.of(), reports, "a good answer between ends the run");
    ejection.strike("e");
    assertEquals(List.of(false), reports);
    ejection.strike("f");
    assertEquals(1, reports.size(), "asked once, not per strike");
    lastAsk().complete(true);
    assertEquals(List.of("out"), heard);
    assertTrue(ejection.excluded());
    assertFalse(ejection.trialOnly());

    ejection.askBackIn();
    lastAsk().complete(false);
    assertEquals(List.of("out", "readmission answered", "in"), heard);
    assertFalse(ejection.excluded());
    assertEquals(0, ejection.strikes());
  }

  @Test
  void theLastGlobalTheRingKeepsIsTrialOnlyUntilItAnswers() {
    ejectAfter = 1;
    ejection.strike("down");
    lastAsk().complete(false);
    assertTrue(ejection.trialOnly(), "still in the ring, still failing: one POST at a time");
    ejection.strike("down again");
    assertEquals(1, reports.size(), "already reported");
    ejection.healthyAnswer();
    assertEquals(List.of(false, true), reports);
    lastAsk().complete(false);
    assertFalse(ejection.trialOnly());
  }

  @Test
  void anUnheardReadmissionKeepsItOut() {
    ejectAfter = 1;
    ejection.strike("x");
    lastAsk().complete(true);
    ejection.askBackIn();
    lastAsk().fail("timeout");
    assertEquals(List.of("out", "readmission unheard"), heard);
    assertTrue(ejection.excluded());
  }

  @Test
  void saturationAsksOnceAndIsWithdrawnWhenTheRingMustKeepIt() {
    ejection.queued(999, 1_000, () -> true);
    assertEquals(List.of(), reports);
    ejection.queued(1_000, 1_000, () -> false);
    assertEquals(List.of(), reports, "no worse than the others: the load, not this global");
    ejection.queued(1_000, 1_000, () -> true);
    assertEquals(List.of(false), reports);
    lastAsk().complete(false);
    assertEquals(List.of(false, true), reports, "kept (the only one): the report is withdrawn");
    assertFalse(ejection.trialOnly(), "a saturated global that answers keeps its full window");
    ejection.queued(2_000, 1_000, () -> true);
    assertEquals(2, reports.size(), "not asked again until the queue fell below half the cap");
    ejection.queued(499, 1_000, () -> true);
    ejection.queued(1_000, 1_000, () -> true);
    assertEquals(List.of(false, true, false), reports);
  }

  @Test
  void goodAnswersWhileTheRingIsAskedDoNotUndoASaturationEjection() {
    ejection.queued(1_000, 1_000, () -> true);
    assertEquals(List.of(false), reports);
    // POSTs in flight answer 202 before the ring's word arrives: a full queue is not cured by that.
    ejection.healthyAnswer();
    ejection.healthyAnswer();
    assertEquals(List.of(false), reports, "not asked back in by good answers");
    lastAsk().complete(true);
    assertEquals(List.of("out"), heard);
    ejection.healthyAnswer();
    assertEquals(List.of(false), reports, "out: its drained queue asks it back in, not its answers");
    ejection.askBackIn();
    lastAsk().complete(false);
    assertEquals(List.of("out", "readmission answered", "in"), heard);

    // A failing global the ring keeps is still asked back in by its first good answer.
    ejectAfter = 1;
    ejection.strike("down");
    lastAsk().complete(false);
    assertTrue(ejection.trialOnly());
    ejection.healthyAnswer();
    assertEquals(List.of(false, true, false, true), reports);
  }

  @Test
  void outForAFullQueueItKeepsItsBacklogAndAsksBackInOnceDrainedBelowHalf() {
    ejection.queued(1_000, 1_000, () -> true);
    assertFalse(ejection.keepsBacklog(), "not out until the ring says so");
    lastAsk().complete(true);
    assertEquals(List.of("out"), heard);
    assertTrue(ejection.keepsBacklog(), "out for a full queue: it drains what it holds");
    assertTrue(ejection.excluded());
    assertFalse(ejection.trialOnly(), "its full window, to drain faster");
    ejection.dequeued(900, 1_000);
    ejection.dequeued(500, 1_000);
    assertEquals(List.of(false), reports, "not asked back in at half the cap or above");
    ejection.dequeued(499, 1_000);
    assertEquals(List.of(false, true), reports);
    ejection.dequeued(100, 1_000);
    assertEquals(2, reports.size(), "one ask at a time");
    lastAsk().complete(false);
    assertEquals(List.of("out", "readmission answered", "in"), heard);
    assertFalse(ejection.keepsBacklog());
    ejection.dequeued(0, 1_000);
    assertEquals(2, reports.size(), "in again: nothing to ask");

    // Back in and full again: the saturation report is made again (its flag was reset below half).
    ejection.queued(1_000, 1_000, () -> true);
    assertEquals(List.of(false, true, false), reports);
  }

  @Test
  void anUnheardAskLetsTheNextDequeueAskAgain() {
    ejectedForAFullQueue();
    ejection.dequeued(10, 1_000);
    lastAsk().fail("no ring");
    assertEquals(List.of("out", "readmission unheard"), heard);
    assertTrue(ejection.keepsBacklog());
    ejection.dequeued(5, 1_000);
    assertEquals(List.of(false, true, true), reports);
  }

  @Test
  void aGlobalThatDrainsWhileTheProxyStopsOrItLeavesIsNotAskedBackIn() {
    ejectedForAFullQueue();
    mayEject = false;
    ejection.dequeued(0, 1_000);
    assertEquals(List.of(false), reports, "leaving or stopping: its metrics are handed on, not taken back");
    mayEject = true;
    ejection.dequeued(0, 1_000);
    assertEquals(List.of(false, true), reports);
  }

  @Test
  void aSaturatedGlobalTheRingTakesBackOnItsOwnKeepsItsWindowAndWithdrawsOnceDrained() {
    ejectedForAFullQueue();
    // Every other member went out too: the ring routes to all again and says so.
    ejection.apply(false);
    assertFalse(ejection.excluded());
    assertFalse(ejection.trialOnly(), "it answers: one POST at a time would only drain it slower");
    ejection.healthyAnswer();
    assertEquals(List.of(false), reports, "a full queue is not cured by good answers");
    ejection.dequeued(499, 1_000);
    assertEquals(List.of(false, true), reports, "drained: the report is withdrawn");
    lastAsk().complete(false);
    assertFalse(ejection.trialOnly());
    ejection.dequeued(0, 1_000);
    assertEquals(2, reports.size());
  }

  @Test
  void aSaturatedGlobalTheRingKeepsThatFailsIsTrialOnly() {
    ejectAfter = 2;
    ejectedForAFullQueue();
    ejection.apply(false);
    ejection.strike("a");
    ejection.strike("b");
    assertTrue(ejection.trialOnly(), "failing now: one trial POST at a time");
    assertEquals(List.of("out", "in", "in"), heard);
    ejection.healthyAnswer();
    assertEquals(List.of(false, true), reports, "its first good answer asks it back in full");
  }

  @Test
  void strikesFromBeforeASaturationEjectionDoNotCountWhileItDrains() {
    ejectAfter = 3;
    ejection.strike("slow");
    ejection.strike("slow");
    ejectedForAFullQueue();
    ejection.strike("slow while draining");
    assertTrue(ejection.keepsBacklog(), "a new count from the ejection on");
    assertEquals(List.of("out"), heard);
  }

  @Test
  void whileStoppingAFailingSaturatedGlobalKeepsItsBacklog() {
    ejectAfter = 1;
    ejectedForAFullQueue();
    mayEject = false;
    ejection.strike("a failure during the shutdown");
    assertTrue(ejection.keepsBacklog(), "posted until the shutdown deadline, not handed to stopping globals");
    assertEquals(List.of("out"), heard);
  }

  @Test
  void outForAFullQueueThenFailingHandsItsBacklogOn() {
    ejectAfter = 3;
    ejectedForAFullQueue();
    ejection.strike("a");
    ejection.strike("b");
    assertEquals(List.of("out"), heard, "a strike or two while it drains: still its backlog");
    assertTrue(ejection.keepsBacklog());
    ejection.strike("c");
    assertEquals(List.of("out", "out"), heard, "told again: out, and now as a failing global");
    assertTrue(ejection.excluded());
    assertFalse(ejection.keepsBacklog(), "its backlog goes to the others");
    ejection.dequeued(0, 1_000);
    ejection.healthyAnswer();
    assertEquals(List.of(false), reports, "a failing global's probe asks it back in, not its queue or answers");
    ejection.askBackIn();
    lastAsk().complete(false);
    assertFalse(ejection.excluded());
  }

  @Test
  void aGoodAnswerBetweenStrikesKeepsTheBacklogWhereItIs() {
    ejectAfter = 2;
    ejectedForAFullQueue();
    ejection.strike("slow");
    ejection.healthyAnswer();
    ejection.strike("slow");
    assertTrue(ejection.keepsBacklog(), "strikes in a row, as for ejecting a global that answers");
  }

  @Test
  void aSaturationReportTheRingDeclinesWhileFailingLeavesItTrialOnlyUntilItAnswers() {
    ejection.queued(1_000, 1_000, () -> true);
    ejectAfter = 1;
    ejection.strike("and failing");
    lastAsk().complete(false);
    assertTrue(ejection.trialOnly(), "kept by the ring, failing: one POST at a time");
    ejection.healthyAnswer();
    assertEquals(List.of(false, true), reports, "its first good answer asks it back in full");
  }

  @Test
  void nobodyIsEjectedWhileStoppingOrWithEjectionOff() {
    mayEject = false;
    for (int i = 0; i < 10; i++) ejection.strike("x");
    ejection.queued(10_000, 1_000, () -> true);
    mayEject = true;
    ejectAfter = 0;
    for (int i = 0; i < 10; i++) ejection.strike("x");
    ejection.queued(10_000, 1_000, () -> true);
    assertEquals(List.of(), reports);
  }

  @Test
  void theRingsOwnWordIsApplied() {
    ejection.apply(true);
    assertTrue(ejection.excluded());
    ejection.apply(false);
    assertEquals(List.of("out", "in"), heard);
  }
}
