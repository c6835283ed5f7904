package dev.veneur.proxy.support;

import dev.veneur.proxy.core.Timers;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/** A clock the test moves by hand: timers fire in due order when it passes their time. */
public final class ManualTimers implements Timers {
  private record Due(long at, long id, Runnable action) {}

  private final TreeMap<Long, List<Due>> due = new TreeMap<>();
  private final List<Long> delays = new ArrayList<>();
  private long now;
  private long nextId;

  @Override
  public long set(long delayMs, Runnable action) {
    long id = nextId++;
    delays.add(delayMs);
    due.computeIfAbsent(now + Math.max(1, delayMs), k -> new ArrayList<>()).add(new Due(now + delayMs, id, action));
    return id;
  }

  @Override
  public long nowNanos() {
    return now * 1_000_000L;
  }

  @Override
  public void cancel(long id) {
    due.values().forEach(l -> l.removeIf(d -> d.id() == id));
    due.values().removeIf(List::isEmpty);
  }

  /** Moves the clock on by {@code ms}, running what falls due on the way (also timers they set). */
  public void advance(long ms) {
    long until = now + ms;
    while (!due.isEmpty() && due.firstKey() <= until) {
      var first = due.pollFirstEntry();
      now = first.getKey();
      for (Due d : first.getValue()) d.action().run();
    }
    now = until;
  }

  public int pending() {
    return due.values().stream().mapToInt(List::size).sum();
  }

  /** Every delay asked for, in order. */
  public List<Long> delays() {
    return delays;
  }
}
