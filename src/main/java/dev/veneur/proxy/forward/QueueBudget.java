package dev.veneur.proxy.forward;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * Bytes queued in the proxy, in total and per destination, against the configured caps. Importers
 * consult it before accepting a body so that overload turns into 503s at the door instead of heap
 * growth or silent drops later.
 */
public final class QueueBudget {
  private final ProxyMetrics metrics;
  private final Supplier<ProxyConfig> config;
  private final ConcurrentHashMap<String, AtomicLong> perDestination = new ConcurrentHashMap<>();

  public QueueBudget(ProxyMetrics metrics, Supplier<ProxyConfig> config) {
    this.metrics = metrics;
    this.config = config;
  }

  /** True when the whole proxy holds as much as it may; new bodies should be refused. */
  public boolean full() {
    return metrics.queuedBytes() >= config.get().maxQueuedBytes;
  }

  /** True when adding {@code bytes} for {@code destination} would pass its cap. */
  public boolean wouldOverflow(String destination, long bytes) {
    AtomicLong q = perDestination.get(destination);
    long now = q == null ? 0 : q.get();
    return now > 0 && now + bytes > config.get().maxQueuedBytesPerDestination;
  }

  public void add(String destination, long bytes) {
    perDestination.computeIfAbsent(destination, d -> new AtomicLong()).addAndGet(bytes);
  }

  /** Bytes queued per destination, for {@code /debug/state}. */
  public java.util.Map<String, Long> snapshot() {
    java.util.Map<String, Long> out = new java.util.TreeMap<>();
    perDestination.forEach((d, v) -> out.put(d, v.get()));
    return out;
  }

  public long queued(String destination) {
    AtomicLong q = perDestination.get(destination);
    return q == null ? 0 : q.get();
  }
}
