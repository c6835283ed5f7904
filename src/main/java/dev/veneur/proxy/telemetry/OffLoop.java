package dev.veneur.proxy.telemetry;

import io.vertx.core.Context;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A guard for calls that block (a Sentry flush, a reporter's stop, a JFR dump): they belong on a
 * worker, never on an event loop. One that runs on an event loop anyway is done (refusing it would
 * lose data) but logged as a WARN, once a minute per call, naming the thread: a bug to fix, and
 * something a test can look for.
 */
public final class OffLoop {
  static final String MARK = "blocks and ran on an event loop";
  private static final Logger LOG = LoggerFactory.getLogger(OffLoop.class);
  private static final LogThrottle WARNINGS = new LogThrottle(LOG, 60_000);

  /** Every blocking call found on an event loop, logged or not: what tests assert on. */
  private static final java.util.concurrent.atomic.AtomicLong FOUND = new java.util.concurrent.atomic.AtomicLong();

  private OffLoop() {}

  /** Blocking calls found on an event loop since the JVM started. */
  public static long found() {
    return FOUND.get();
  }

  /** @param what the blocking call, as the warning names it */
  public static void check(String what) {
    if (Context.isOnEventLoopThread()) {
      FOUND.incrementAndGet();
      WARNINGS.warn(what, what + " " + MARK + " (" + Thread.currentThread().getName()
          + "); it should run on a worker");
    }
  }
}
