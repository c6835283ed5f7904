package dev.veneur.proxy.forward;

import dev.veneur.proxy.core.Timers;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Probes an ejected global's {@code /healthcheck} until it answers (fast) again, on a backoff: from
 * {@code eject_probe_interval}, doubling after each failed probe up to 30 s, with jitter so the
 * probes of many proxies spread out. A global ejected again soon after it was re-admitted (it
 * flaps) starts from where its backoff was, not from the bottom.
 */
final class HealthProbe {
  static final long MAX_INTERVAL_MS = 30_000;
  /** Re-admitted and ejected again within this: the backoff keeps growing (flap damping). */
  static final long FLAP_WINDOW_NANOS = TimeUnit.SECONDS.toNanos(60);

  /** One probe: calls back with whether the global answered, fast enough. */
  interface Check {
    void run(Consumer<Boolean> healthy);
  }

  private final Timers timers;
  private final LongSupplier baseMs;
  private final Check check;
  private final Runnable onHealthy;
  private boolean active;
  private long timer = -1;
  private long delayMs;
  private long readmittedAt;

  HealthProbe(Timers timers, LongSupplier baseMs, Check check, Runnable onHealthy) {
    this.timers = timers;
    this.baseMs = baseMs;
    this.check = check;
    this.onHealthy = onHealthy;
  }

  /** Starts probing, unless it already is. Ends by itself when a probe succeeds. */
  void start(long nowNanos) {
    if (active) return;
    active = true;
    long base = baseMs.getAsLong();
    boolean flapping = readmittedAt != 0 && nowNanos - readmittedAt < FLAP_WINDOW_NANOS;
    delayMs = flapping ? Math.min(Math.max(delayMs * 2, base), MAX_INTERVAL_MS) : base;
    schedule();
  }

  void stop() {
    active = false;
    if (timer >= 0) timers.cancel(timer);
    timer = -1;
  }

  /** The ring took the global back: an ejection soon after this counts as flapping. */
  void readmitted(long nowNanos) {
    readmittedAt = nowNanos;
  }

  boolean active() {
    return active;
  }

  /** The current interval before jitter, for tests and logs. */
  long delayMs() {
    return delayMs;
  }

  private void schedule() {
    timer = timers.set(jitter(delayMs), () -> {
      timer = -1;
      if (!active) return;
      check.run(healthy -> {
        if (!active) return;
        if (healthy) {
          active = false;
          onHealthy.run();
          return;
        }
        delayMs = Math.min(delayMs * 2, MAX_INTERVAL_MS);
        schedule();
      });
    });
  }

  /** {@link Timers#upperHalf}, at least 1. */
  static long jitter(long ms) {
    return Math.max(1, Timers.upperHalf(ms));
  }
}
