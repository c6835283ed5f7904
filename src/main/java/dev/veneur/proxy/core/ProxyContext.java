package dev.veneur.proxy.core;

import com.codahale.metrics.Gauge;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.telemetry.Profiler;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * What every verticle of one proxy shares: the current config (swapped whole on reload), the
 * self-metrics, the memory budget and the accounting that settles every metric, and whether the
 * proxy is stopping. Handed to verticles at deployment rather than looked up globally, so tests
 * can run several proxies in one JVM.
 */
public final class ProxyContext {
  private final AtomicReference<ProxyConfig> config;
  private final ProxyMetrics metrics = new ProxyMetrics();
  private final MemoryBudget budget;
  private final Accounting accounting;
  private final Map<String, DestinationState> destinations = new ConcurrentHashMap<>();
  private final AtomicInteger connections = new AtomicInteger();
  private volatile boolean stopping;
  private volatile Profiler profiler;
  private volatile dev.veneur.proxy.spill.Spill spill;

  /** What one forwarder holds, published for /debug/state and the gauges. */
  public static final class DestinationState {
    public final AtomicLong queuedMetrics = new AtomicLong();
    public final AtomicLong queuedBytes = new AtomicLong();
    public final AtomicInteger inFlight = new AtomicInteger();
    public volatile boolean excluded;
    /** Recent answer time of its POSTs (a moving average), 0 before the first answer. */
    public volatile long latencyEwmaNanos;
  }

  public ProxyContext(ProxyConfig config) {
    this.config = new AtomicReference<>(config);
    this.budget = new MemoryBudget(() -> this.config.get().memoryBudget);
    this.accounting = new Accounting(metrics, budget);
    var reg = metrics.registry();
    reg.register("http.connections", (Gauge<Integer>) connections::get);
    reg.register("memory.budget_bytes", (Gauge<Long>) budget::limit);
    reg.register("memory.used_bytes", (Gauge<Long>) budget::used);
    reg.register("memory.waiting_requests", (Gauge<Integer>) budget::waiting);
    reg.register("memory.receiving_bytes", (Gauge<Long>) budget::receiving);
  }

  public ProxyConfig config() {
    return config.get();
  }

  public void config(ProxyConfig next) {
    config.set(next);
  }

  public ProxyMetrics metrics() {
    return metrics;
  }

  public MemoryBudget budget() {
    return budget;
  }

  public Accounting accounting() {
    return accounting;
  }

  /** Per-destination state, keyed by destination; a forwarder registers itself while it runs. */
  public Map<String, DestinationState> destinations() {
    return destinations;
  }

  /** {@code spill_dir}, or null when it is off. */
  public dev.veneur.proxy.spill.Spill spill() {
    return spill;
  }

  public void spill(dev.veneur.proxy.spill.Spill s) {
    spill = s;
    if (s != null) {
      metrics.registry().register("spill.bytes_written", (Gauge<Long>) s::bytesWritten);
      metrics.registry().register("spill.errors", (Gauge<Long>) s::errors);
      metrics.registry().register("spill.failing", (Gauge<Integer>) () -> s.healthy() ? 0 : 1);
      metrics.registry().register("spill.bytes_on_disk", (Gauge<Long>) s::bytesOnDisk);
      metrics.registry().register("spill.segments", (Gauge<Integer>) s::segments);
      metrics.registry().register("spill.metrics_not_kept", (Gauge<Long>) s::metricsNotKept);
    }
  }

  /** The JFR recording when {@code enable_profiling} is on, else null. */
  public Profiler profiler() {
    return profiler;
  }

  public void profiler(Profiler p) {
    profiler = p;
  }

  /** Open HTTP connections across every HTTP verticle, against http_max_connections. */
  public AtomicInteger connections() {
    return connections;
  }

  public boolean stopping() {
    return stopping || Fatal.exiting();
  }

  public void stopping(boolean v) {
    stopping = v;
  }
}
