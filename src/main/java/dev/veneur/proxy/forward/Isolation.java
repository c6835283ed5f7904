package dev.veneur.proxy.forward;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Halves;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.telemetry.LogThrottle;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBus;
import java.util.ArrayList;
import java.util.List;

/**
 * A refused batch (a 4xx other than 429) holds some metric the global will not take: the batch goes
 * again in halves, first in line, until the refused metrics are alone, and only they are dropped
 * ({@code rejected}), never their neighbours. A batch of several chunks halves by its chunks; a
 * single chunk is cut in two by an HTTP verticle ({@link Addresses#INGEST_SPLIT}), since that takes
 * inflating and deflating. Each batch carries a split budget, so a global that refuses everything
 * cannot make the halving go on forever.
 */
final class Isolation {
  /** What the forwarder does with the outcome. */
  interface Queue {
    void drop(Batch batch, String cause);

    /** {@code only}, the batch's one chunk, is replaced by {@code halves}, now held here. */
    void replaced(Batch batch, MetricChunk only, Halves halves);

    void pump();
  }

  private final EventBus bus;
  private final MemoryBudget budget;
  private final SendWindow window;
  private final LogThrottle logs;
  private final String url;
  private final Queue queue;

  Isolation(EventBus bus, MemoryBudget budget, SendWindow window, LogThrottle logs, String url, Queue queue) {
    this.bus = bus;
    this.budget = budget;
    this.window = window;
    this.logs = logs;
    this.url = url;
    this.queue = queue;
  }

  /** {@code batch} was refused, the global saying {@code what}. */
  void refused(Batch batch, String what) {
    if (batch.metrics <= 1 || batch.splitBudget[0] < 2) {
      logs.warn("rejected", url + " refused " + batch.metrics + " metric(s) (" + what + "); dropped as rejected");
      queue.drop(batch, "rejected");
      return;
    }
    logs.warn("splitting", url + " refused a batch of " + batch.metrics + " metrics (" + what
        + "); sending it again in halves to isolate the metrics it refuses");
    Batch[] halves = batch.halves();
    if (halves != null) {
      window.addFirst(halves[1]);
      window.addFirst(halves[0]);
      return;
    }
    batch.splitBudget[0] -= 2;
    MetricChunk only = batch.chunks.get(0);
    // Counted in the window while the split is out, so a drain waits for it.
    window.begin();
    bus.<Halves>request(Addresses.INGEST_SPLIT, only, new DeliveryOptions().setSendTimeout(Addresses.SPLIT_TIMEOUT_MS))
        .onComplete(ar -> {
          window.ended();
          if (ar.succeeded()) land(ar.result().body());
          if (ar.failed() || ar.result().body().first() == null || ar.result().body().second() == null) {
            if (ar.succeeded()) release(ar.result().body());
            logs.warn("rejected", url + " refused " + batch.metrics + " metric(s) (" + what
                + ") and the batch could not be split; dropped as rejected");
            queue.drop(batch, "rejected");
          } else {
            Halves h = ar.result().body();
            queue.replaced(batch, only, h);
            window.addFirst(new Batch(new ArrayList<>(List.of(h.second())), batch.splitBudget));
            window.addFirst(new Batch(new ArrayList<>(List.of(h.first())), batch.splitBudget));
          }
          queue.pump();
        });
  }

  /** The halves were in transit from the HTTP verticle that split them: they are ours now. */
  private static void land(Halves h) {
    if (h.first() != null) h.first().land();
    if (h.second() != null) h.second().land();
  }

  private void release(Halves h) {
    if (h.first() != null) budget.release(h.first().bytes());
    if (h.second() != null) budget.release(h.second().bytes());
  }
}
