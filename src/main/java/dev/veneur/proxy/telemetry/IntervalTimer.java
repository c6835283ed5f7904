package dev.veneur.proxy.telemetry;

import com.codahale.metrics.Timer;

/** A Dropwizard timer (nanoseconds) whose samples the StatsD reporter sends one by one as {@code |ms}. */
public final class IntervalTimer extends Timer {
  private final IntervalReservoir reservoir;

  public IntervalTimer(IntervalReservoir reservoir) {
    super(reservoir);
    this.reservoir = reservoir;
  }

  public IntervalReservoir reservoir() {
    return reservoir;
  }
}
