package dev.veneur.proxy.telemetry;

import com.codahale.metrics.Histogram;

/** A Dropwizard histogram whose samples the StatsD reporter sends one by one as {@code |h}. */
public final class IntervalHistogram extends Histogram {
  private final IntervalReservoir reservoir;

  public IntervalHistogram(IntervalReservoir reservoir) {
    super(reservoir);
    this.reservoir = reservoir;
  }

  public IntervalReservoir reservoir() {
    return reservoir;
  }
}
