package dev.veneur.proxy.forward;

import dev.veneur.proxy.bus.MetricChunk;
import java.util.ArrayList;
import java.util.List;

/** Metrics that travel together in one POST, with what the send window needs to know of them. */
final class Batch {
  /** A refused batch may cost at most this many extra POSTs to isolate what the global refuses. */
  static final int SPLIT_POSTS = 64;

  final List<MetricChunk> chunks;
  final int metrics;
  /** When it was cut from the queue: what waits past the retry budget may be dropped. */
  final long cutNanos;
  /** Its first attempt plus {@code forward_retry_budget}; set when it is first sent. */
  long deadlineNanos;
  int attempts;
  /**
   * Metrics left out of the body sent (by cause) because the destination's protocol cannot carry
   * them; found again at each attempt, counted dropped when the batch settles as forwarded.
   */
  java.util.Map<String, Integer> untranslated = java.util.Map.of();
  /** Extra POSTs left for isolating refused metrics; shared by the halves of one batch. */
  final int[] splitBudget;

  Batch(List<MetricChunk> chunks, int[] splitBudget) {
    this(chunks, splitBudget, System.nanoTime());
  }

  Batch(List<MetricChunk> chunks, int[] splitBudget, long cutNanos) {
    this.chunks = chunks;
    int n = 0;
    for (MetricChunk c : chunks) n += c.count;
    this.metrics = n;
    this.splitBudget = splitBudget;
    this.cutNanos = cutNanos;
  }

  /** A new batch with its own split budget. */
  static Batch of(List<MetricChunk> chunks) {
    return new Batch(chunks, new int[] {SPLIT_POSTS});
  }

  /**
   * Its chunks in two halves, sharing this batch's split budget, which pays for the two extra
   * POSTs; null if it has a single chunk (that takes re-encoding) or the budget is spent.
   */
  Batch[] halves() {
    if (chunks.size() < 2 || splitBudget[0] < 2) return null;
    splitBudget[0] -= 2;
    int half = chunks.size() / 2;
    return new Batch[] {
        new Batch(new ArrayList<>(chunks.subList(0, half)), splitBudget),
        new Batch(new ArrayList<>(chunks.subList(half, chunks.size())), splitBudget)};
  }
}
