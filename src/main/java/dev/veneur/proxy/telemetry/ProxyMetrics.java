package dev.veneur.proxy.telemetry;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Gauge;
import com.codahale.metrics.MetricRegistry;
import com.codahale.metrics.Timer;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The proxy's own metrics, in one Dropwizard registry shared by every verticle. Tags are part of a
 * metric's registry name, after a {@code '#'} ({@code forward.error_total#cause:timeout}), so the
 * StatsD reporter can emit them as DogStatsD tags while the registry stays plain Dropwizard.
 *
 * <p>The accounting identity {@code received = forwarded + dropped + queued} holds at every
 * instant up to in-flight updates: a metric is counted received when its request is accepted,
 * queued until a forwarder settles it, then forwarded or dropped with a cause.
 */
public final class ProxyMetrics {
  public static final String RECEIVED = "metrics.received_total";
  public static final String FORWARDED = "metrics.forwarded_total";
  public static final String DROPPED = "metrics.dropped_total";
  public static final String QUEUED = "metrics.queued";
  public static final String QUEUED_BYTES = "metrics.queued_bytes";
  public static final String IMPORT_ERRORS = "import.request_error_total";
  public static final String IMPORT_REQUESTS = "import.request_total";
  public static final String IMPORT_DURATION = "import.response_duration_ns";
  public static final String FORWARD_ERRORS = "forward.error_total";
  public static final String FORWARD_DURATION = "forward.duration_ns";
  public static final String FORWARD_POSTS = "forward.post_total";
  public static final String FORWARD_BYTES = "forward.content_length_bytes";
  public static final String BY_DESTINATION = "metrics_by_destination";
  public static final String PROXY_DURATION = "proxy.duration_ns";
  // Go proxy names not registered yet by any call site (see README, Monitoring).
  public static final String IMPORT_METRICS = "import.metrics_total";
  /*
   * The series Veneur v14.2.0's proxy reports, which v14 operators chart, each with protocol:http
   * or protocol:grpc, beside this proxy's own (v2) series. Ingest protocol for metrics_total,
   * egress protocol (how the destination is reached) for the others.
   */
  /** Metrics received, by ingest protocol. */
  public static final String V14_METRICS = "proxy.metrics_total";
  /** Metrics a global confirmed, by egress protocol. */
  public static final String V14_PROXIED = "proxy.proxied_metrics_total";
  /** Metrics a forwarder dropped, by cause and egress protocol. */
  public static final String V14_PROXIED_FAILED = "proxy.proxied_metrics_failed";
  /** Failed exchanges with a global, by egress protocol. */
  public static final String V14_FORWARD_ERRORS = "proxy.forward_errors";
  public static final String DISCOVERER_UPDATE_DURATION = "discoverer.update_duration_ns";
  public static final String DISCOVERER_DESTINATIONS = "discoverer.destination_number";
  public static final String DISCOVERER_ERRORS = "discoverer.errors";
  /** The round trip of each POST; ours (the Go {@code forward.duration_ns} is {@code part:json}). */
  public static final String FORWARD_POST_DURATION = "forward.post_duration_ns";
  /**
   * Timer and histogram samples sent per metric per report; past this the reporter sends a uniform
   * sample with {@code |@rate}. 1000 lines of ~60 bytes is ~42 datagrams per busy timer per interval.
   */
  public static final int SAMPLES_PER_INTERVAL = 1000;

  private final IntervalRegistry registry = new IntervalRegistry(SAMPLES_PER_INTERVAL);
  private final Counter received = registry.counter(RECEIVED);
  private final Counter forwarded = registry.counter(FORWARDED);
  private final AtomicLong queued = new AtomicLong();
  private final AtomicLong queuedBytes = new AtomicLong();
  private final ConcurrentHashMap<String, Counter> dropped = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, AtomicLong> gauges = new ConcurrentHashMap<>();

  public ProxyMetrics() {
    registry.register(QUEUED, (Gauge<Long>) queued::get);
    registry.register(QUEUED_BYTES, (Gauge<Long>) queuedBytes::get);
    // A few JVM figures that explain most memory questions, for the price of three gauges.
    java.lang.management.MemoryMXBean mem = java.lang.management.ManagementFactory.getMemoryMXBean();
    registry.register("jvm.heap_used_bytes", (Gauge<Long>) () -> mem.getHeapMemoryUsage().getUsed());
    registry.register("jvm.heap_max_bytes", (Gauge<Long>) () -> mem.getHeapMemoryUsage().getMax());
    registry.register("jvm.gc_pause_ms_total", (Gauge<Long>) () -> {
      long t = 0;
      for (var gc : java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()) t += Math.max(0, gc.getCollectionTime());
      return t;
    });
  }

  public MetricRegistry registry() {
    return registry;
  }

  public static String tagged(String name, String key, String value) {
    return name + "#" + key + ":" + value;
  }

  /**
   * A registry name with several DogStatsD tags, each {@code key:value} (or a bare tag):
   * {@code withTags("import.response_duration_ns", "part:request", "encoding:deflate")}.
   */
  public static String withTags(String name, String... tags) {
    if (tags.length == 0) return name;
    return name + "#" + String.join(",", tags);
  }

  /**
   * A gauge set on events, sent only in the reporting intervals where it was set (as the Go
   * proxy's {@code metrics_by_destination} and {@code discoverer.destination_number} were).
   */
  public EventGauge eventGauge(String taggedName) {
    return registry.eventGauge(taggedName);
  }

  /** A histogram whose samples are each reported as a DogStatsD {@code |h} line. */
  public com.codahale.metrics.Histogram histogram(String taggedName) {
    return registry.histogram(taggedName);
  }

  public Counter counter(String name, String key, String value) {
    return registry.counter(tagged(name, key, value));
  }

  /** A gauge backed by a long that callers set; registered once per name, shared after. */
  public AtomicLong gauge(String taggedName) {
    return gauges.computeIfAbsent(taggedName, n -> {
      AtomicLong v = new AtomicLong();
      registry.register(n, (Gauge<Long>) v::get);
      return v;
    });
  }

  public Timer timer(String name) {
    return registry.timer(name);
  }

  /** Metrics accepted into the pipeline and now queued for a forwarder. */
  public synchronized void accepted(int metrics, long bytes) {
    received.inc(metrics);
    queued.addAndGet(metrics);
    queuedBytes.addAndGet(bytes);
  }

  /** Metrics the ingest counted as received but dropped before queueing (e.g. invalid objects). */
  public synchronized void rejectedOnArrival(int metrics, String cause) {
    received.inc(metrics);
    droppedCounter(cause).inc(metrics);
  }

  /**
   * {@code metrics} left the queue: delivered, except those counted in {@code untranslated} (by
   * cause), which the destination's protocol could not carry and are dropped as
   * {@code untranslated_<cause>}. One step, so a report never sees them counted twice.
   */
  public synchronized void deliveredExcept(int metrics, long bytes, java.util.Map<String, Integer> untranslated) {
    int left = 0;
    for (java.util.Map.Entry<String, Integer> e : untranslated.entrySet()) {
      droppedCounter("untranslated_" + e.getKey()).inc(e.getValue());
      left += e.getValue();
    }
    forwarded.inc(metrics - left);
    queued.addAndGet(-metrics);
    queuedBytes.addAndGet(-bytes);
  }

  /** Queued bytes changed without a metric entering or leaving (a chunk split into parts). */
  public synchronized void requeued(long bytesDelta) {
    queuedBytes.addAndGet(bytesDelta);
  }

  public synchronized void dropped(int metrics, long bytes, String cause) {
    droppedCounter(cause).inc(metrics);
    queued.addAndGet(-metrics);
    queuedBytes.addAndGet(-bytes);
  }

  private Counter droppedCounter(String cause) {
    return dropped.computeIfAbsent(cause, c -> registry.counter(tagged(DROPPED, "cause", c)));
  }

  /**
   * The accounting counters read together: updates hold the same lock, so the identity
   * {@code received = forwarded + dropped + queued} holds exactly in what this returns.
   */
  public synchronized long[] accountingSnapshot() {
    return new long[] {received.getCount(), forwarded.getCount(), droppedTotal(), queued.get(), queuedBytes.get()};
  }

  public long received() {
    return received.getCount();
  }

  public long forwarded() {
    return forwarded.getCount();
  }

  public long queued() {
    return queued.get();
  }

  public long queuedBytes() {
    return queuedBytes.get();
  }

  public long dropped(String cause) {
    Counter c = dropped.get(cause);
    return c == null ? 0 : c.getCount();
  }

  public java.util.Map<String, Long> droppedByCause() {
    java.util.Map<String, Long> out = new java.util.TreeMap<>();
    dropped.forEach((c, n) -> out.put(c, n.getCount()));
    return out;
  }

  public long droppedTotal() {
    long n = 0;
    for (Counter c : dropped.values()) n += c.getCount();
    return n;
  }

  /** The count of a tagged counter, 0 if it was never touched. */
  public long count(String name, String key, String value) {
    Counter c = registry.getCounters().get(tagged(name, key, value));
    return c == null ? 0 : c.getCount();
  }
}
