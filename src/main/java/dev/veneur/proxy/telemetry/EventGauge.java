package dev.veneur.proxy.telemetry;

import com.codahale.metrics.Gauge;

/**
 * A gauge that is set when something happens (a forward, a discovery answer), as the Go proxy's
 * gauges were: the StatsD reporter sends it only in intervals where it was set, with the last value
 * set, so a series stops when its events stop instead of repeating a stale value. {@link #getValue()}
 * keeps returning the last value for in-process readers.
 */
public final class EventGauge implements Gauge<Long> {
  private volatile long value;
  private volatile boolean dirty;

  public void set(long v) {
    value = v;
    dirty = true;
  }

  @Override
  public Long getValue() {
    return value;
  }

  /** True when set since the previous call (the reporter's question); clears the mark. */
  public synchronized boolean takeDirty() {
    if (!dirty) return false;
    dirty = false;
    return true;
  }
}
