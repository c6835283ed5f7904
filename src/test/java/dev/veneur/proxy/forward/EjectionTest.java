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
    assertEquals(List.of(false), reports, "out: its probe asks it back in, not its answers");
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
