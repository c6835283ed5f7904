package dev.veneur.proxy.ingest;

import com.codahale.metrics.Counter;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What a listener refused, the same for every protocol: counted one by one, by cause, in {@code
 * import.request_error_total} (tagged {@code protocol:grpc} for gRPC; {@code /import}'s series keep
 * the Go proxy's single {@code cause} tag), and logged through one throttle per protocol shared by
 * every verticle of the process: per cause, the first at once, then at most one line per period
 * with how many more there were, never a line per request.
 */
public final class Refusals {
  private final ProxyMetrics metrics;
  private final String protocol;
  private final LogThrottle log;
  /**
   * Per cause, looked up once rather than by name on every refusal. Concurrent: the accept gate
   * counts from the listener's acceptor thread, beside the verticle's event loop.
   */
  private final Map<String, Counter> byCause = new ConcurrentHashMap<>();

  /** @param protocol the {@code protocol} tag, or null for {@code /import} (untagged, as in v2) */
  public Refusals(ProxyMetrics metrics, String protocol, LogThrottle log) {
    this.metrics = metrics;
    this.protocol = protocol;
    this.log = log;
  }

  /** The counter's registry name for {@code cause}. */
  public String name(String cause) {
    return protocol == null ? ProxyMetrics.tagged(ProxyMetrics.IMPORT_ERRORS, "cause", cause)
        : ProxyMetrics.withTags(ProxyMetrics.IMPORT_ERRORS, "cause:" + cause, "protocol:" + protocol);
  }

  /** Counts one refusal (or closed connection) of {@code cause}, without a log line. */
  public void count(String cause) {
    byCause.computeIfAbsent(cause, c -> metrics.registry().counter(name(c))).inc();
  }

  /** Counts one refusal of {@code cause} and logs it, throttled. */
  public void refused(String cause, String line) {
    count(cause);
    log.warn(cause, line);
  }

  /** Logs without counting: for what is counted elsewhere, or not a refusal (a dropped metric). */
  public void warn(String key, String line) {
    log.warn(key, line);
  }

  public void error(String key, String line) {
    log.error(key, line);
  }
}
