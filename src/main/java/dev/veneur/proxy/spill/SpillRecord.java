package dev.veneur.proxy.spill;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * A chunk's place in the spill: its segment and index. A chunk split into parts (re-routed,
 * halved) shares its record with them; the record is settled when the last part is.
 */
public final class SpillRecord {
  private final Segment segment;
  private final int index;
  private final AtomicInteger parts = new AtomicInteger(1);

  SpillRecord(Segment segment, int index) {
    this.segment = segment;
    this.index = index;
  }

  /** The chunk was replaced by {@code n} parts carrying this record. */
  public void split(int n) {
    if (n == 0) settled();
    else if (n != 1) parts.addAndGet(n - 1);
  }

  /** A part (or the chunk) was delivered or dropped for good. */
  public void settled() {
    if (parts.decrementAndGet() == 0) segment.settled(index);
  }
}
