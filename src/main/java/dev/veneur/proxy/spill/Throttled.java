package dev.veneur.proxy.spill;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;

/**
 * At most one log line per key and period, saying how many were left out since the last. The
 * spill's failures (a full disk fails every write and every settle mark) would otherwise log once
 * per chunk. (telemetry.LogThrottle does more, but it sits in the same layer as this package,
 * which may use only lower ones: docs/architecture.md.)
 */
final class Throttled {
  private final Logger log;
  private final long periodNanos;
  private final ConcurrentHashMap<String, AtomicLong[]> keys = new ConcurrentHashMap<>();

  Throttled(Logger log, long periodMillis) {
    this.log = log;
    this.periodNanos = periodMillis * 1_000_000L;
  }

  void warn(String key, String message) {
    emit(key, message, false);
  }

  void error(String key, String message) {
    emit(key, message, true);
  }

  /** Counts as a line for {@code key} just written: the next goes out a period from now. */
  void quiet(String key) {
    keys.computeIfAbsent(key, k -> new AtomicLong[] {new AtomicLong(), new AtomicLong()})[0].set(
        Math.max(1, System.nanoTime()));
  }

  private void emit(String key, String message, boolean error) {
    // [0]: when the last line went out (0: never), [1]: lines left out since.
    AtomicLong[] s = keys.computeIfAbsent(key, k -> new AtomicLong[] {new AtomicLong(), new AtomicLong()});
    long now = System.nanoTime();
    long last = s[0].get();
    if (last != 0 && now - last < periodNanos || !s[0].compareAndSet(last, now == 0 ? 1 : now)) {
      s[1].incrementAndGet();
      return;
    }
    long left = s[1].getAndSet(0);
    String line = left == 0 ? message : message + " (" + left + " more like it in the last "
        + periodNanos / 1_000_000_000L + " s)";
    if (error) log.error(line);
    else log.warn(line);
  }
}
