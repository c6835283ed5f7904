package dev.veneur.proxy.telemetry;

import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;

/**
 * Logs a recurring event once per episode: the first occurrence at once, then at most one line per
 * period with how many were left out. Under an attack or a flapping global the log says what is
 * happening without one line per request; the counters carry the exact numbers.
 */
public final class LogThrottle {
  private final Logger log;
  private final long periodNanos;
  private final ConcurrentHashMap<String, State> states = new ConcurrentHashMap<>();

  private static final class State {
    long lastNanos;
    long suppressed;
  }

  public LogThrottle(Logger log, long periodMillis) {
    this.log = log;
    this.periodNanos = periodMillis * 1_000_000L;
  }

  public void warn(String key, String message) {
    emit(key, message, false);
  }

  public void error(String key, String message) {
    emit(key, message, true);
  }

  private void emit(String key, String message, boolean error) {
    State s = states.computeIfAbsent(key, k -> new State());
    long now = System.nanoTime();
    long left;
    synchronized (s) {
      if (s.lastNanos != 0 && now - s.lastNanos < periodNanos) {
        s.suppressed++;
        return;
      }
      s.lastNanos = now;
      left = s.suppressed;
      s.suppressed = 0;
    }
    String line = left > 0 ? message + " (and " + left + " more like it since the last report)" : message;
    if (error) log.error(line);
    else log.warn(line);
  }
}
