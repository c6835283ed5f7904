package dev.veneur.proxy.forward;

import dev.veneur.proxy.core.Timers;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * The send window: batches ready to POST (oldest first; retries and halves jump the line), batches
 * waiting out a retry backoff, and how many POSTs are in flight, never more than the window the
 * forwarder allows at the moment. Every batch here is in exactly one of those places until it is
 * taken out to be sent, swept, handed back or dropped.
 */
final class SendWindow {
  private final Timers timers;
  /** Runs when a backoff ended and its batch is ready again. */
  private final Runnable onReady;
  private final ArrayDeque<Batch> ready = new ArrayDeque<>();
  private final Map<Batch, Long> waiting = new LinkedHashMap<>();
  private int inFlight;

  SendWindow(Timers timers, Runnable onReady) {
    this.timers = timers;
    this.onReady = onReady;
  }

  /** A new batch, behind the others. */
  void add(Batch b) {
    ready.add(b);
  }

  /** A batch to try before the others: a retry, or half of a refused batch. */
  void addFirst(Batch b) {
    ready.addFirst(b);
  }

  /** Back to the front of the line after {@code delayMs}. */
  void retryAfter(Batch b, long delayMs) {
    long timer = timers.set(Math.max(1, delayMs), () -> {
      if (waiting.remove(b) == null) return;
      ready.addFirst(b);
      onReady.run();
    });
    waiting.put(b, timer);
  }

  /** The next batch to send, counted in flight, if the window has room; else null. */
  Batch next(int window) {
    if (inFlight >= window || ready.isEmpty()) return null;
    inFlight++;
    return ready.poll();
  }

  /** An exchange counted in flight (a POST, or a split the forwarder waits for) ended. */
  void ended() {
    inFlight--;
  }

  /** Counts an exchange in flight that is not a POST of a ready batch (a split in progress). */
  void begin() {
    inFlight++;
  }

  int inFlight() {
    return inFlight;
  }

  /** Nothing ready, waiting or in flight. */
  boolean idle() {
    return inFlight == 0 && ready.isEmpty() && waiting.isEmpty();
  }

  /** Takes every ready batch out, oldest first. */
  void takeReady(Consumer<Batch> sink) {
    while (!ready.isEmpty()) sink.accept(ready.poll());
  }

  /** Takes every ready and waiting batch out (cancelling their backoffs), in the order they would go. */
  void takeQueued(Consumer<Batch> sink) {
    takeReady(sink);
    for (Map.Entry<Batch, Long> w : waiting.entrySet()) {
      timers.cancel(w.getValue());
      sink.accept(w.getKey());
    }
    waiting.clear();
  }

  /** Ends every backoff now: the waiting batches go to the front, for a last chance to be sent. */
  void hurryWaiting() {
    for (Map.Entry<Batch, Long> w : waiting.entrySet()) {
      timers.cancel(w.getValue());
      ready.addFirst(w.getKey());
    }
    waiting.clear();
  }

  /** Takes out the ready batches {@code expired} says so of; returns how many metrics they held. */
  int sweepReady(Predicate<Batch> expired, Consumer<Batch> sink) {
    int metrics = 0;
    for (Iterator<Batch> it = ready.iterator(); it.hasNext();) {
      Batch b = it.next();
      if (expired.test(b)) {
        it.remove();
        metrics += b.metrics;
        sink.accept(b);
      }
    }
    return metrics;
  }
}
