package dev.veneur.proxy.telemetry;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Histogram;
import com.codahale.metrics.MetricRegistry;
import com.codahale.metrics.Timer;

/**
 * A plain Dropwizard registry whose by-name factories make the metric kinds the StatsD reporter can
 * send as the Go proxy did: {@code timer(name)} an {@link IntervalTimer}, {@code histogram(name)} an
 * {@link IntervalHistogram} (both over an {@link IntervalReservoir} of {@code samplesPerInterval}),
 * {@code counter(name)} a {@link DeltaCounter}. Code that asks the registry by name, as every call
 * site does, gets them without knowing; the registry stays the one place metrics live.
 */
public final class IntervalRegistry extends MetricRegistry {
  private final int samplesPerInterval;

  public IntervalRegistry(int samplesPerInterval) {
    if (samplesPerInterval < 1) throw new IllegalArgumentException("samplesPerInterval < 1");
    this.samplesPerInterval = samplesPerInterval;
  }

  public int samplesPerInterval() {
    return samplesPerInterval;
  }

  @Override
  public Counter counter(String name) {
    return counter(name, DeltaCounter::new);
  }

  @Override
  public Histogram histogram(String name) {
    return histogram(name, () -> new IntervalHistogram(new IntervalReservoir(samplesPerInterval)));
  }

  @Override
  public Timer timer(String name) {
    return timer(name, () -> new IntervalTimer(new IntervalReservoir(samplesPerInterval)));
  }

  /** A gauge set on events (see {@link EventGauge}); one per name, shared after. */
  public EventGauge eventGauge(String name) {
    return gauge(name, EventGauge::new);
  }
}
