package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.wire.FastBytes;
import dev.veneur.proxy.wire.MetricPb;

/**
 * Gathers metrics that came in by gRPC and go to one gRPC global into a protobuf {@link
 * MetricChunk}: each {@code metricpb.Metric}'s bytes, exactly as the local sent them, framed as
 * field 1 of a {@code MetricList}. Nothing is decoded, translated or compressed: the forwarder's
 * {@code MetricList} is these bytes joined.
 */
final class ProtoChunkWriter {
  private final MemoryBudget budget;
  private final FastBytes out;
  private int count;

  /**
   * @param expectBytes about how many bytes this writer's share of the message is: its buffer
   *     starts there rather than growing to it by doubling (a copy of its bytes at every step)
   */
  ProtoChunkWriter(MemoryBudget budget, int expectBytes) {
    this.budget = budget;
    this.out = new FastBytes(Math.max(1024, expectBytes));
  }

  /** Adds the metric {@code b[off, off + len)}, already checked as a v14 global reads it. */
  void add(byte[] b, int off, int len) {
    MetricPb.listEntry(out, b, off, len);
    count++;
  }

  int count() {
    return count;
  }

  /** Framed bytes so far. */
  int size() {
    return out.size();
  }

  /** The chunk of what was added (reserved in the budget), or null if nothing was; begins anew. */
  MetricChunk finish(RequestTrace trace) {
    if (count == 0) return null;
    byte[] framed = out.toByteArray();
    budget.reserve(framed.length);
    MetricChunk c = MetricChunk.protobuf(framed, count, trace);
    out.reset();
    count = 0;
    return c;
  }
}
