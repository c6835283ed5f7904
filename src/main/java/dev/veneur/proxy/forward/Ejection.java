package dev.veneur.proxy.forward;

import io.vertx.core.Future;
import java.util.function.BooleanSupplier;
import java.util.function.IntSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The forwarder's side of ejection: strikes in a row (failures, slow answers), a queue that does
 * not drain, the ask to be taken out of the ring, the ask to be taken back, and the ring's word on
 * which it is. The ring decides; it may refuse to take out its last member, and then this global
 * stays "down" in the ring: one trial POST at a time ({@link #trialOnly()}).
 */
final class Ejection {
  private static final Logger LOG = LoggerFactory.getLogger(Ejection.class);

  /** The ring, as a forwarder talks to it: the reply says whether this destination is out. */
  interface Ring {
    Future<Boolean> report(boolean healthy);
  }

  /** What the forwarder does with the ring's word. */
  interface Listener {
    /** Out of routing (hand back, probe) or in (stop probing). */
    void exclusion(boolean out);

    /** The ring answered an ask to be taken back: an ejection soon after counts as flapping. */
    void readmissionAnswered();

    /** The ring did not hear an ask to be taken back: still out, try again at the next probe. */
    void readmissionUnheard();
  }

  private final String destination;
  private final Ring ring;
  private final Listener listener;
  /** {@code eject_after_failures}; 0 turns ejection off. */
  private final IntSupplier ejectAfter;
  /** False while the proxy stops or the forwarder leaves: nobody is ejected then. */
  private final BooleanSupplier mayEject;
  private int strikes;
  private boolean reportedDown;
  private boolean excluded;
  /** Reported for a full queue; asked again only once the queue fell below half the cap. */
  private boolean saturated;
  /**
   * The report out stands for a full queue, not failures: the global still answers, so its good
   * answers say nothing about whether it drains, and do not ask it back in (its probe does, once
   * the ring took it out). Without this, the answers to POSTs in flight while the ring was being
   * asked re-admitted it at once, 13 ms after it left, with its backlog still being re-routed, and
   * it filled up and was ejected again, over and over (15 times in one 90 s bench run).
   */
  private boolean downForSaturation;
  /** An ask to be taken back is on its way: the next dequeue need not ask again. */
  private boolean asking;

  Ejection(String destination, Ring ring, Listener listener, IntSupplier ejectAfter, BooleanSupplier mayEject) {
    this.destination = destination;
    this.ring = ring;
    this.listener = listener;
    this.ejectAfter = ejectAfter;
    this.mayEject = mayEject;
  }

  /** One more failure or slow answer in a row; at {@code eject_after_failures}, asks to be taken out. */
  void strike(String why) {
    strikes++;
    int after = ejectAfter.getAsInt();
    if (reportedDown && downForSaturation && after > 0 && strikes >= after && mayEject.getAsBoolean()) {
      // Reported for a full queue and now failing too: what it holds is no longer safer here than
      // anywhere else. From here on a failing global's rules: out, the backlog goes to the others;
      // kept by the ring, one trial POST at a time. (Not while stopping: its batches are posted
      // until the shutdown deadline, as every global's are.)
      downForSaturation = false;
      LOG.warn("{}: reported for a full queue, now failing too ({} failed or slow forwards in a row, last: {}){}",
          destination, strikes, why, excluded ? "; handing its backlog to the other globals" : "");
      listener.exclusion(excluded);
      return;
    }
    if (!reportedDown && after > 0 && strikes >= after && mayEject.getAsBoolean()) {
      reportDown(strikes + " failed or slow forwards in a row (last: " + why + ")", false);
    }
  }

  /** A good answer: the run of strikes ends; a global kept while down asks to be back in full. */
  void healthyAnswer() {
    strikes = 0;
    if (reportedDown && !excluded && !downForSaturation) askBackIn();
  }

  /**
   * The queue's size after a chunk arrived. At the cap, and much longer than the others' queues,
   * the global cannot drain what it is given: as good as failing, for everyone whose metrics wait
   * there.
   */
  void queued(long bytes, long cap, BooleanSupplier worseThanPeers) {
    if (saturated && bytes < cap / 2) saturated = false;
    if (!saturated && !reportedDown && mayEject.getAsBoolean() && ejectAfter.getAsInt() > 0 && bytes >= cap
        && worseThanPeers.getAsBoolean()) {
      saturated = true;
      reportDown("its queue reached max_queued_bytes_per_destination (" + cap + " bytes): it does not drain", true);
    }
  }

  /**
   * The queue's size after metrics left it (delivered, dropped or handed back). A global out for
   * a full queue asks back in once it has drained below half the cap, as the saturation report
   * itself is asked again only then: it takes new metrics when it has room for them.
   */
  void dequeued(long bytes, long cap) {
    if (saturated && bytes < cap / 2) saturated = false;
    // Out, or taken back by the ring on its own while still reported (every other member went
    // out too): either way the report is withdrawn once it drained. Not while the proxy stops or
    // this forwarder leaves: its metrics are being handed on then.
    if (reportedDown && downForSaturation && !asking && bytes < cap / 2 && mayEject.getAsBoolean()) {
      LOG.info("{}: drained its backlog below half of max_queued_bytes_per_destination ({} bytes); asking the"
          + " ring to re-admit it", destination, bytes);
      askBackIn();
    }
  }

  /**
   * Out of the ring for a full queue while it still answers: what it holds stays queued for it and
   * it drains that (its own keys, delivered where they belong); only new metrics go to the others.
   * Handing the backlog to the others (as for a failing global) cost a scan and a deflate of every
   * queued metric, up to {@code max_queued_bytes_per_destination} (50 MiB) at a time, on a proxy and
   * globals already at capacity, and the globals that took it then filled up in turn.
   */
  boolean keepsBacklog() {
    return excluded && downForSaturation;
  }

  /**
   * Asks the ring to take this destination out. A failing destination the ring must keep (the last
   * one) stays "down": one trial POST at a time. A saturated one it must keep just goes on: it
   * answers, and fewer POSTs would only drain it slower.
   */
  private void reportDown(String why, boolean saturation) {
    reportedDown = true;
    downForSaturation = saturation;
    // Going out for a full queue starts a new count: a saturated global's answers are slow, and
    // strikes from before would hand its backlog on after a single slow answer while it drains.
    if (saturation) strikes = 0;
    LOG.warn("{}: {}; asking the ring to eject it", destination, why);
    ring.report(false).onComplete(ar -> {
      boolean out = ar.succeeded() && ar.result();
      if (!out && saturation) {
        if (strikes < ejectAfter.getAsInt()) {
          // Nowhere else to go: withdraw the report, so the ring does not keep it marked.
          reportedDown = false;
          ring.report(true);
        }
        // Kept, and failing as well if still reported: a failing global's rules from here on.
        downForSaturation = false;
      }
      apply(out);
    });
  }

  /** Asks the ring to take this destination back (it answers again, or fast again). */
  void askBackIn() {
    asking = true;
    ring.report(true).onComplete(ar -> {
      asking = false;
      if (ar.failed()) {
        listener.readmissionUnheard();
        return;
      }
      reportedDown = false;
      downForSaturation = false;
      strikes = 0;
      listener.readmissionAnswered();
      apply(ar.result());
    });
  }

  /** The ring's word, as an answer to an ask or as its own message after any ring change. */
  void apply(boolean out) {
    excluded = out;
    listener.exclusion(out);
  }

  boolean excluded() {
    return excluded;
  }

  /** Failing, but the ring keeps it: one trial POST at a time, and expired batches are dropped. */
  boolean trialOnly() {
    // A saturated global the ring keeps answers: fewer POSTs would only drain it slower.
    return reportedDown && !excluded && !downForSaturation;
  }

  int strikes() {
    return strikes;
  }
}
