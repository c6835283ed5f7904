package dev.veneur.proxy.forward;

import dev.veneur.proxy.core.Timers;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * What an answer means for a batch, and whether a failed batch is tried again. Pure, so each rule
 * is tested alone.
 */
final class RetryPolicy {
  static final long MAX_BACKOFF_MS = 2_000;

  private RetryPolicy() {}

  enum Verdict {
    /** 2xx: the global has it. */
    DELIVERED,
    /**
     * 2xx, but the answer did not end well (trickled past the deadline, endless, or cut): the
     * global has the data, so sending it again would count it twice; the global misbehaves.
     */
    DELIVERED_BADLY,
    /**
     * 400, 413 or 422: a Veneur global saying it cannot decode this batch, so something in it, not
     * the global, is wrong.
     */
    REFUSED,
    /**
     * Anything else (I/O error, deadline, 429, 5xx, and also a 404 from a wrong port, a 401 from an
     * auth proxy, a redirect): the destination failing.
     */
    FAILED
  }

  static Verdict verdict(GlobalClient.Outcome o) {
    if (o.ok()) return o.timedOut() || o.error() != null ? Verdict.DELIVERED_BADLY : Verdict.DELIVERED;
    int st = o.status();
    return st == 400 || st == 413 || st == 422 ? Verdict.REFUSED : Verdict.FAILED;
  }

  /**
   * Backoff before the next attempt of a batch tried {@code attempts} times: exponential from
   * {@code forward_retry_backoff}, capped, with jitter over its upper half so a fleet of retries
   * does not arrive in step.
   */
  static long backoffMs(Duration base, int attempts) {
    long grown = base.toMillis() << Math.min(Math.max(attempts - 1, 0), 16);
    long cap = Math.min(grown, MAX_BACKOFF_MS);
    return Timers.upperHalf(cap);
  }

  /**
   * Whether a failed batch is tried again after {@code delayMs}, or dropped as
   * {@code retries_exhausted}. Every batch gets at least one retry, even when a single attempt used
   * the whole budget: that is what lets a hanging global's first batches wait for its ejection and
   * go elsewhere. A zero budget turns retries off.
   */
  static boolean mayRetry(Batch b, long nowNanos, long delayMs, Duration budget) {
    if (budget.isZero()) return false;
    return b.attempts < 2 || nowNanos + TimeUnit.MILLISECONDS.toNanos(delayMs) <= b.deadlineNanos;
  }
}
