package dev.veneur.proxy.telemetry;

import com.codahale.metrics.Reservoir;
import com.codahale.metrics.Snapshot;
import com.codahale.metrics.UniformSnapshot;
import java.util.Arrays;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The samples recorded since the last {@link #drain()}, for a reporter that sends every sample as a
 * DogStatsD timing or histogram line, as the Go proxy did. At most {@code capacity} values are kept:
 * past that, each new value replaces a kept one with probability {@code capacity / seen} (Vitter's
 * algorithm R), so what is kept is a uniform sample of the interval and the reporter can send it with
 * the sample rate {@code kept / seen}; the agent weighs each line by {@code 1 / rate} and its counts
 * stay right. Memory is bounded (capacity longs) whether or not a reporter drains it.
 *
 * <p>Thread-safe: {@link #update} is called from any event loop, {@link #drain} from the reporter.
 * The critical section is a few instructions, far below the cost of the request being timed.
 *
 * <p>{@link #getSnapshot()} (for Dropwizard consumers) describes the current interval only, so it
 * is empty right after a report.
 */
public final class IntervalReservoir implements Reservoir {
  private final long[] values;
  private int kept;
  private long seen;

  /** What one interval recorded: the kept samples, and how many were recorded in all. */
  public record Drained(long[] samples, long seen) {
    /** The DogStatsD sample rate of each kept sample: 1 when nothing was left out. */
    public double rate() {
      return seen <= samples.length ? 1.0 : (double) samples.length / seen;
    }
  }

  public IntervalReservoir(int capacity) {
    if (capacity < 1) throw new IllegalArgumentException("capacity must be at least 1: " + capacity);
    this.values = new long[capacity];
  }

  @Override
  public void update(long value) {
    synchronized (this) {
      long n = ++seen;
      if (kept < values.length) {
        values[kept++] = value;
      } else {
        long j = ThreadLocalRandom.current().nextLong(n);
        if (j < values.length) values[(int) j] = value;
      }
    }
  }

  /** Takes this interval's samples and starts the next interval empty. */
  public Drained drain() {
    synchronized (this) {
      Drained d = new Drained(Arrays.copyOf(values, kept), seen);
      kept = 0;
      seen = 0;
      return d;
    }
  }

  public int capacity() {
    return values.length;
  }

  @Override
  public int size() {
    synchronized (this) {
      return kept;
    }
  }

  @Override
  public Snapshot getSnapshot() {
    long[] copy;
    synchronized (this) {
      copy = Arrays.copyOf(values, kept);
    }
    return new UniformSnapshot(copy);
  }
}
