package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.spill.SpillWriter;
import io.vertx.core.eventbus.EventBus;

/**
 * The one way accepted metrics enter the queues, whichever listener took them ({@code /import} or
 * gRPC): kept on disk first ({@code spill_dir}), counted received, and handed to the forwarder of
 * each chunk's destination. The sender is answered only after this, so a sender that reads its
 * answer finds its metrics counted (and, with a spill, on disk).
 */
public final class Handover {
  private Handover() {}

  /**
   * @param chunks one per slot of {@code routing} (null where no metric went), reserved in the budget
   * @return how many chunks were handed on
   */
  public static int hand(EventBus bus, ProxyContext ctx, SpillWriter spill, HashRing routing, MetricChunk[] chunks) {
    if (spill != null) {
      for (MetricChunk c : chunks) if (c != null) c.spill = spill.append(c);
    }
    int n = 0;
    for (int d = 0; d < chunks.length; d++) {
      MetricChunk c = chunks[d];
      if (c == null) continue;
      n++;
      ctx.accounting().accepted(c);
      Dispatch.toForwarder(bus, ctx, routing.member(d), c, 0);
    }
    return n;
  }
}
