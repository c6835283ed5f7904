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
  /** Open connections by remote IP, against the per-client cap; an IP leaves at zero. */
  private final Map<String, Integer> byClient = new ConcurrentHashMap<>();
  private volatile Descriptors descriptors;
  /** Globals the descriptor plan was made for (the last member count). */
  private volatile int planGlobals = 1;
  /** The admin listener's address once bound, else null. */
  private volatile String adminAddress;
  /** Connections the admin listener may hold; counted in the descriptor reserve. */
  public static final int ADMIN_MAX_CONNECTIONS = 16;
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(ProxyContext.class);

  /** What one forwarder holds, published for /debug/state and the gauges. */
  public static final class DestinationState {
    public final AtomicLong queuedMetrics = new AtomicLong();
    public final AtomicLong queuedBytes = new AtomicLong();
    public final AtomicInteger inFlight = new AtomicInteger();
    public volatile boolean excluded;
    /** Metrics this destination passed back to be routed again (ejected, failing while out, leaving). */
    public final AtomicLong handedBackMetrics = new AtomicLong();
    /** Recent answer time of its POSTs (a moving average), 0 before the first answer. */
    public volatile long latencyEwmaNanos;
  }

  public ProxyContext(ProxyConfig config) {
    this.config = new AtomicReference<>(config);
    this.budget = new MemoryBudget(() -> this.config.get().memoryBudget);
    this.accounting = new Accounting(metrics, budget);
    this.descriptors = Descriptors.plan(config.httpMaxConnections, Math.max(1, config.staticMembers()),
        config.maxIdleConnsPerHost, ADMIN_MAX_CONNECTIONS);
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
    planDescriptors(planGlobals);
  }

  /** How descriptors are shared out now; its {@code inboundCap} is the connection cap in force. */
  public Descriptors descriptors() {
    return descriptors;
  }

  /**
   * Plans descriptors for {@code globals} globals under the current config: called at start, when
   * the member set changes (before new forwarders open connections) and on reload. A plan that
   * lowers the inbound cap, or cannot give outbound enough, is logged once at WARN with the
   * numbers; a return to the full cap at INFO.
   */
  public synchronized Descriptors planDescriptors(int globals) {
    planGlobals = Math.max(1, globals);
    ProxyConfig cfg = config.get();
    Descriptors prev = descriptors;
    Descriptors next = Descriptors.plan(cfg.httpMaxConnections, planGlobals, cfg.maxIdleConnsPerHost,
        ADMIN_MAX_CONNECTIONS);
    descriptors = next;
    boolean changed = !planned || prev.inboundCap() != next.inboundCap() || prev.short_() != next.short_();
    planned = true;
    if (changed && (next.lowered() || next.short_())) {
      LOG.warn(next.explain());
    } else if (changed && prev.lowered() && !next.lowered()) {
      LOG.info("http_max_connections {} in force again: the file-descriptor limit {} covers it with {} globals",
          next.configuredCap(), next.nofile(), next.globals());
    }
    return next;
  }

  /** A plan was made and announced since start (the one made at construction is not announced). */
  private boolean planned;

  /** The per-client connection cap in force: 0 when off. */
  public int perClientCap() {
    return config.get().perClientCap(descriptors.inboundCap());
  }

  /** Counts a connection from {@code ip}; returns how many it has open now, this one included. */
  public int clientOpened(String ip) {
    return byClient.merge(ip, 1, Integer::sum);
  }

  /** A connection from {@code ip} closed. */
  public void clientClosed(String ip) {
    byClient.computeIfPresent(ip, (k, n) -> n <= 1 ? null : n - 1);
  }

  /** Distinct remote IPs with a connection open. */
  public int clients() {
    return byClient.size();
  }

  public String adminAddress() {
    return adminAddress;
  }

  public void adminAddress(String a) {
    adminAddress = a;
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
