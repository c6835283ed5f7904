package dev.veneur.proxy;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.forward.QueueBudget;
import dev.veneur.proxy.telemetry.Profiler;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import java.util.concurrent.atomic.AtomicReference;

/**
 * What every verticle of one proxy shares: the current config (swapped whole on reload), the
 * self-metrics, the queue budget, and whether the proxy is stopping. Handed to verticles at
 * deployment rather than looked up globally, so tests can run several proxies in one JVM.
 */
public final class ProxyContext {
  private final AtomicReference<ProxyConfig> config;
  private final ProxyMetrics metrics = new ProxyMetrics();
  private final QueueBudget budget;
  private volatile boolean stopping;
  private volatile Profiler profiler;
  private final java.util.concurrent.atomic.AtomicInteger connections = new java.util.concurrent.atomic.AtomicInteger();

  public ProxyContext(ProxyConfig config) {
    this.config = new AtomicReference<>(config);
    this.budget = new QueueBudget(metrics, this::config);
    metrics.registry().register("http.connections", (com.codahale.metrics.Gauge<Integer>) connections::get);
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

  public QueueBudget budget() {
    return budget;
  }

  /** The JFR recording when {@code enable_profiling} is on, else null. */
  public Profiler profiler() {
    return profiler;
  }

  public void profiler(Profiler p) {
    profiler = p;
  }

  /** Open HTTP connections across every HTTP verticle, against http_max_connections. */
  public java.util.concurrent.atomic.AtomicInteger connections() {
    return connections;
  }

  public boolean stopping() {
    return stopping;
  }

  public void stopping(boolean v) {
    stopping = v;
  }
}
