package dev.veneur.proxy.telemetry;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;

/**
 * Logs a recurring event once per episode: the first occurrence at once, then at most one line per
 * period (per key) with how many were left out. Under an attack or a flapping global the log says
 * what is happening without one line per request; the counters carry the exact numbers.
 *
 * <p>An episode's tail is not lost: when events were left out, one line goes out when the period
 * ends even if no event follows (the last event left out, with how many more there were), written
 * by a daemon thread of this class rather than by the thread that reported the event. So a burst
 * costs at most two log lines per period and key, and the caller (an event loop) writes at most
 * one of them.
 *
 * <p>Thread-safe; one instance is meant to be shared by every thread logging the same events.
 */
public final class LogThrottle {
  /** Runs a task after a delay: the shared daemon thread, or a test's hand. */
  interface Scheduler {
    void schedule(Runnable task, long delayNanos);
  }

  private static final class SharedTimer {
    static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "veneur-log-throttle");
      t.setDaemon(true);
      return t;
    });
  }

  private static final Scheduler DAEMON =
      (task, delayNanos) -> SharedTimer.TIMER.schedule(task, delayNanos, TimeUnit.NANOSECONDS);

  private final Logger log;
  private final long periodNanos;
  private final LongSupplier clock;
  private final Scheduler scheduler;
  private final ConcurrentHashMap<String, State> states = new ConcurrentHashMap<>();

  private static final class State {
    /** When the last line for this key went out; 0: never. */
    long lastNanos;
    long suppressed;
    /** The last event left out, for the line that ends the period. */
    String lastMessage;
    boolean lastError;
    boolean flushScheduled;
  }

  public LogThrottle(Logger log, long periodMillis) {
    this(log, periodMillis, System::nanoTime, DAEMON);
  }

  LogThrottle(Logger log, long periodMillis, LongSupplier clock, Scheduler scheduler) {
    this.log = log;
    this.periodNanos = periodMillis * 1_000_000L;
    this.clock = clock;
    this.scheduler = scheduler;
  }

  public void warn(String key, String message) {
    emit(key, message, false);
  }

  public void error(String key, String message) {
    emit(key, message, true);
  }

  /** Events left out since the last line for {@code key} (for tests and debugging). */
  public long suppressed(String key) {
    State s = states.get(key);
    if (s == null) return 0;
    synchronized (s) {
      return s.suppressed;
    }
  }

  private void emit(String key, String message, boolean error) {
    State s = states.computeIfAbsent(key, k -> new State());
    long now = clock.getAsLong();
    long left = -1;
    long flushIn = -1;
    synchronized (s) {
      if (s.lastNanos != 0 && now - s.lastNanos < periodNanos) {
        s.suppressed++;
        s.lastMessage = message;
        s.lastError = error;
        if (!s.flushScheduled) {
          s.flushScheduled = true;
          flushIn = s.lastNanos + periodNanos - now;
        }
      } else {
        left = s.suppressed;
        s.lastNanos = now;
        s.suppressed = 0;
        s.lastMessage = null;
      }
    }
    if (left >= 0) {
      write(error, left > 0 ? message + " (and " + left + " more like it since the last report)" : message);
      return;
    }
    if (flushIn >= 0) scheduler.schedule(() -> endOfPeriod(key, s), flushIn);
  }

  /** The period after a line ended: what was left out in it gets one line now. */
  private void endOfPeriod(String key, State s) {
    String message;
    boolean error;
    long more;
    synchronized (s) {
      s.flushScheduled = false;
      if (s.suppressed == 0) return;
      message = s.lastMessage;
      error = s.lastError;
      more = s.suppressed - 1;
      s.lastNanos = clock.getAsLong();
      s.suppressed = 0;
      s.lastMessage = null;
    }
    write(error, more > 0 ? message + " (and " + more + " more like it since the last report)" : message);
  }

  private void write(boolean error, String line) {
    if (error) log.error(line);
    else log.warn(line);
  }
}
