package dev.veneur.proxy.forward;

import dev.veneur.proxy.core.Timers;
import dev.veneur.proxy.bus.MetricChunk;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Batching: chunks gather until a batch is full, by metric count or by JSON bytes, or has lingered
 * long enough since its first chunk; then the batch is cut and handed on. Limits are read per chunk,
 * so a reload applies to the next one. A whole chunk (a body as a local sent it) is a batch of its own.
 */
final class BatchBuilder {
  /** How big a batch may grow and how long its first chunk may wait. */
  record Limits(int maxMetrics, long maxBytes, long lingerMs) {}

  private final Timers timers;
  private final Consumer<Batch> onBatch;
  private List<MetricChunk> pending = new ArrayList<>();
  private int metrics;
  private long rawBytes;
  private long lingerTimer = -1;

  BatchBuilder(Timers timers, Consumer<Batch> onBatch) {
    this.timers = timers;
    this.onBatch = onBatch;
  }

  void add(MetricChunk chunk, Limits limits) {
    if (chunk.whole) {
      // A body as the local sent it: it goes as it is, alone (joined with others it would have to
      // be inflated and deflated again, the cost it exists to save). What waits goes first.
      cut();
      onBatch.accept(Batch.of(List.of(chunk)));
      return;
    }
    pending.add(chunk);
    metrics += chunk.count;
    rawBytes += chunk.rawLength;
    if (metrics >= limits.maxMetrics() || rawBytes >= limits.maxBytes()) {
      cut();
    } else if (lingerTimer < 0) {
      lingerTimer = timers.set(limits.lingerMs(), () -> {
        lingerTimer = -1;
        cut();
      });
    }
  }

  /** Cuts what is pending into a batch now, if anything is. */
  void cut() {
    List<MetricChunk> chunks = takeAll();
    if (!chunks.isEmpty()) onBatch.accept(Batch.of(chunks));
  }

  /** Everything pending, not as a batch: to hand it back. */
  List<MetricChunk> takeAll() {
    if (lingerTimer >= 0) {
      timers.cancel(lingerTimer);
      lingerTimer = -1;
    }
    List<MetricChunk> out = pending;
    pending = new ArrayList<>();
    metrics = 0;
    rawBytes = 0;
    return out;
  }

  boolean isEmpty() {
    return pending.isEmpty();
  }
}
