package dev.veneur.proxy.core;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import java.util.List;

/**
 * Where every metric the proxy accepts is settled, in one place: counted received and queued when
 * its chunk is accepted, then exactly once forwarded or dropped with a cause, and its chunk's bytes
 * given back to the memory budget at that moment. Re-routing replaces a chunk by its parts without
 * touching the counts. So {@code received = forwarded + dropped + queued} holds at every instant
 * (up to the few nanoseconds between two counter updates), and {@code queued} and
 * {@code queued_bytes} can only reach zero, never pass it.
 */
public final class Accounting {
  private final ProxyMetrics metrics;
  private final MemoryBudget budget;

  public Accounting(ProxyMetrics metrics, MemoryBudget budget) {
    this.metrics = metrics;
    this.budget = budget;
  }

  /** A chunk's metrics enter the queue (its bytes were reserved when it was built). */
  public void accepted(MetricChunk c) {
    metrics.accepted(c.count, c.bytes());
  }

  /** Metrics of an accepted body that are dropped at once (the global would refuse them). */
  public void droppedOnArrival(int count, String cause) {
    if (count > 0) metrics.rejectedOnArrival(count, cause);
  }

  public void forwarded(List<MetricChunk> chunks) {
    forwardedExcept(chunks, java.util.Map.of());
  }

  /**
   * As {@link #forwarded(List)}, except metrics the destination's protocol could not carry (left
   * out of the body when it was translated), which are dropped by cause: {@code untranslated_<cause>}.
   */
  public void forwardedExcept(List<MetricChunk> chunks, java.util.Map<String, Integer> untranslated) {
    int count = 0;
    long bytes = 0;
    for (MetricChunk c : chunks) {
      count += c.count;
      bytes += c.bytes();
      budget.release(c.bytes());
      if (c.trace != null) c.trace.settled();
      if (c.spill != null) c.spill.settled();
    }
    metrics.deliveredExcept(count, bytes, untranslated);
  }

  public void dropped(List<MetricChunk> chunks, String cause) {
    for (MetricChunk c : chunks) dropped(c, cause);
  }

  public void dropped(MetricChunk c, String cause) {
    metrics.dropped(c.count, c.bytes(), cause);
    budget.release(c.bytes());
    if (c.trace != null) c.trace.settled();
    // What a stop could not deliver stays in spill_dir, for the next start to send.
    if (c.spill != null && !"shutdown".equals(cause)) c.spill.settled();
  }

  /** A chunk found in spill_dir after a crash or stop, sent again (its bytes are reserved). */
  public void replayed(MetricChunk c) {
    metrics.accepted(c.count, c.bytes());
    metrics.registry().counter(REPLAYED).inc(c.count);
  }

  public static final String REPLAYED = "metrics.replayed_total";

  /**
   * A chunk was split (re-routed or halved) into parts holding the same metrics; the parts' bytes
   * were reserved when they were built. Metrics the parts lack (none, unless the split itself
   * failed partway) are dropped with {@code cause}.
   */
  public void replaced(MetricChunk old, MetricChunk[] parts, String cause) {
    int count = 0;
    long bytes = 0;
    int n = 0;
    for (MetricChunk p : parts) {
      if (p == null) continue;
      count += p.count;
      bytes += p.bytes();
      n++;
    }
    if (old.trace != null) old.trace.split(n);
    if (old.spill != null) old.spill.split(n);
    metrics.requeued(bytes - old.bytes());
    budget.release(old.bytes());
    if (count != old.count) metrics.dropped(old.count - count, 0, cause);
  }
}
