package dev.veneur.proxy.spill;

import dev.veneur.proxy.bus.SpillMark;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A chunk's place in the spill: its segment and index. A chunk split into parts (re-routed,
 * halved) shares its record with them; the record is settled when the last part is.
 */
public final class SpillRecord implements SpillMark {
  private final Segment segment;
  private final int index;
  private final AtomicInteger parts = new AtomicInteger(1);

  SpillRecord(Segment segment, int index) {
    this.segment = segment;
    this.index = index;
  }

  @Override
  public void split(int n) {
    if (n == 0) settled();
    else if (n != 1) parts.addAndGet(n - 1);
  }

  @Override
  public void settled() {
    if (parts.decrementAndGet() == 0) segment.settled(index);
  }
}
