package dev.veneur.proxy.core;

import io.vertx.core.Vertx;

/**
 * Timers as the forwarder's and the ingest side's parts use them: Vert.x's, on the verticle's event
 * loop, in the proxy; a hand-driven clock in unit tests, so the parts' timing is tested without
 * sleeping.
 */
public interface Timers {
  /** Runs {@code action} once after {@code delayMs} (at least 1); returns an id for {@link #cancel}. */
  long set(long delayMs, Runnable action);

  void cancel(long id);

  /** The clock the timers run on, in nanoseconds (only differences mean anything). */
  default long nowNanos() {
    return System.nanoTime();
  }

  /**
   * Somewhere in the upper half of {@code ms}, at random: retries and probes of many forwarders
   * (and many proxies) spread out instead of arriving in step.
   */
  static long upperHalf(long ms) {
    return ms / 2 + java.util.concurrent.ThreadLocalRandom.current().nextLong(ms / 2 + 1);
  }

  static Timers of(Vertx vertx) {
    return new Timers() {
      @Override
      public long set(long delayMs, Runnable action) {
        return vertx.setTimer(Math.max(1, delayMs), t -> action.run());
      }

      @Override
      public void cancel(long id) {
        vertx.cancelTimer(id);
      }
    };
  }
}
