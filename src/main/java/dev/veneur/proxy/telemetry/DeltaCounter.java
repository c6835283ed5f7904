package dev.veneur.proxy.telemetry;

import com.codahale.metrics.Counter;

/**
 * A Dropwizard counter that remembers what was last reported, so a StatsD reporter can send the
 * increase ({@code |c}) and nothing when nothing happened, and that remembers an {@code inc(0)}: the
 * Go proxy sends {@code forward.error_total:0|c} after every successful forward so the series
 * exists when nothing fails, and {@code inc(0)} is how a caller asks for that line.
 *
 * <p>The reported baseline lives here, in the registry, not in a reporter: a reporter replaced on
 * reload carries on from where the previous one stopped instead of sending the whole total again.
 */
public final class DeltaCounter extends Counter {
  private volatile boolean touched;
  private long reported;

  /** The increase since the previous call, and whether {@code inc(0)}/{@code dec(0)} happened. */
  public record Delta(long delta, boolean touched) {
    public boolean worthALine() {
      return delta != 0 || touched;
    }
  }

  @Override
  public void inc(long n) {
    super.inc(n);
    // Only a zero needs the flag (any other amount shows in the count); keeping the volatile write
    // off the common path keeps the LongAdder free of a shared cache line.
    if (n == 0 && !touched) touched = true;
  }

  @Override
  public void dec(long n) {
    super.dec(n);
    if (n == 0 && !touched) touched = true;
  }

  /** For the one reporter at a time: the delta since the last drain. */
  public synchronized Delta drain() {
    // Count first, flag second: an increment racing with this shows in the next delta; an inc(0)
    // racing with it may be folded into this report, which is what it asked for.
    long now = getCount();
    boolean t = touched;
    if (t) touched = false;
    long d = now - reported;
    reported = now;
    return new Delta(d, t);
  }
}
