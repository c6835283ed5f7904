package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.wire.MetricPb;
import java.util.Arrays;

/**
 * A protobuf chunk in two by position, for a forwarder isolating what its global refused: its
 * framed metrics are already separate, so the halves are two ranges of its bytes, cut without
 * reading any metric.
 */
public final class ProtoSplit {
  private ProtoSplit() {}

  /**
   * The first {@code firstCount} metrics and the rest, as two chunks (null where empty) reserved
   * in the budget, keeping the original's request and spill record; the original stays its holder's.
   */
  public static MetricChunk[] halves(MetricChunk chunk, int firstCount, MemoryBudget budget) {
    byte[] b = chunk.payload;
    int cut = MetricPb.framedEnd(b, 0, b.length, firstCount);
    MetricChunk[] out = new MetricChunk[2];
    if (firstCount > 0) out[0] = part(chunk, Arrays.copyOfRange(b, 0, cut), firstCount, budget);
    if (chunk.count - firstCount > 0) out[1] = part(chunk, Arrays.copyOfRange(b, cut, b.length), chunk.count - firstCount, budget);
    return out;
  }

  private static MetricChunk part(MetricChunk of, byte[] framed, int count, MemoryBudget budget) {
    budget.reserve(framed.length);
    MetricChunk c = MetricChunk.protobuf(framed, count, of.trace);
    c.spill = of.spill;
    return c;
  }
}
