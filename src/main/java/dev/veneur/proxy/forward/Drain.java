package dev.veneur.proxy.forward;

import dev.veneur.proxy.core.Timers;
import io.vertx.core.Future;
import io.vertx.core.Promise;

/**
 * How a forwarder ends. Leaving the ring, it sends nothing more itself (its queue goes back to be
 * routed) and ends when its POSTs in flight have. Stopping the proxy, it goes on sending its queue
 * until {@code shutdown_timeout}; from that deadline it is closing: no new POST starts, what still
 * waits is dropped, and it ends when the POSTs in flight have, each by its own deadline, so a batch
 * the global confirms is counted forwarded.
 */
final class Drain {
  private final Timers timers;
  private Promise<Void> done;
  private boolean closing;

  Drain(Timers timers) {
    this.timers = timers;
  }

  /** Leaving the ring: ends when {@link #check} finds the forwarder idle. */
  Future<Void> whenIdle() {
    if (done == null) done = Promise.promise();
    return done.future();
  }

  /** Stopping the proxy: {@code onDeadline} runs after {@code shutdownMs}, unless idle before. */
  Future<Void> whenIdleOrDeadline(long shutdownMs, Runnable onDeadline) {
    Future<Void> f = whenIdle();
    long timer = timers.set(Math.max(1, shutdownMs), () -> {
      if (done.future().isComplete()) return;
      closing = true;
      onDeadline.run();
    });
    f.onComplete(v -> timers.cancel(timer));
    return f;
  }

  /** Whether draining has begun. */
  boolean draining() {
    return done != null;
  }

  /** Past the shutdown deadline: no new POST may start. */
  boolean closing() {
    return closing;
  }

  /** Called whenever the forwarder's state changed: completes the drain once it holds nothing. */
  void check(boolean idle) {
    if (done != null && idle) done.tryComplete();
  }
}
