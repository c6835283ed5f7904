package dev.veneur.proxy;

import dev.veneur.proxy.config.ProxyConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What a reload from one valid config to another has to do, decided from the two configs alone
 * (no I/O, no Vert.x): which parts are replaced live, and which changed keys only take effect when
 * the process restarts. {@link ProxyApp#reconfigure} carries it out.
 *
 * <p>Keys not named here are read per use (batching, limits, timeouts, the log level) and apply
 * as soon as the new config is swapped in. {@code config_scan_interval} is applied live by the
 * config watcher itself, which starts scanning at the new period once the reload has succeeded.
 */
public final class ReloadPlan {
  /** Keys discovery reads when it starts: a change deploys a new discovery, then retires the old. */
  static final Set<String> DISCOVERY_KEYS = Set.of("forward_address", "forward_addresses",
      "consul_forward_service_name", "consul_refresh_interval", "consul_address", "consul_token",
      "consul_startup_timeout", "consul_member_address", "consul_max_answer_bytes", "grpc_forward_address",
      "consul_forward_grpc_service_name", "dns_forward_name", "dns_forward_grpc_name", "dns_forward_port",
      "dns_servers", "dns_refresh_interval", "kubernetes_forward_service_name",
      "kubernetes_forward_grpc_service_name", "kubernetes_namespace", "kubernetes_port_name", "kubernetes_api_url",
      "kubernetes_token_file", "kubernetes_ca_file");
  /** Keys the HTTP verticles read when they start: a change deploys new ones, then retires the old. */
  static final Set<String> HTTP_KEYS = Set.of("http_address", "http_instances", "http_idle_timeout", "tls", "http_tls");
  /** Keys of the self-metrics reporter: a change replaces it. */
  static final Set<String> STATS_KEYS = Set.of("stats_address", "stats_interval");
  /** Keys read when a part starts and not worth restarting it for; they apply on restart. */
  static final Set<String> RESTART_KEYS = Set.of("max_idle_conns_per_host", "spill_dir", "event_loops",
      "idle_connection_timeout", "enable_profiling", "profiling_dir", "admin_address",
      "grpc_address", "grpc_max_message_bytes", "grpc_max_concurrent_streams", "compat", "grpc_tls_address",
      "forward_tls");

  /** Changed keys with their old and new values (secrets masked), in the configs' key order. */
  public final Map<String, String> diff;
  /** New HTTP verticles must listen first; the reload is rejected whole if they cannot. */
  public final boolean moveListener;
  public final boolean replaceDiscovery;
  public final boolean restartReporter;
  public final boolean reconfigureSentry;
  /** The config watcher must scan at the new {@code config_scan_interval}. */
  public final boolean rescheduleScan;
  /** Changed keys that take effect only when the process restarts, in diff order. */
  public final List<String> restartOnly;

  private ReloadPlan(Map<String, String> diff) {
    this.diff = diff;
    moveListener = changed(diff, HTTP_KEYS);
    replaceDiscovery = changed(diff, DISCOVERY_KEYS);
    restartReporter = changed(diff, STATS_KEYS);
    reconfigureSentry = diff.containsKey("sentry_dsn");
    rescheduleScan = diff.containsKey("config_scan_interval");
    List<String> restart = new ArrayList<>();
    for (String k : diff.keySet()) if (RESTART_KEYS.contains(k)) restart.add(k);
    restartOnly = List.copyOf(restart);
  }

  public static ReloadPlan between(ProxyConfig prev, ProxyConfig next) {
    return new ReloadPlan(prev.diff(next));
  }

  /** Nothing the proxy reads differs (a comment or key order changed): nothing to do. */
  public boolean isEmpty() {
    return diff.isEmpty();
  }

  private static boolean changed(Map<String, String> diff, Set<String> keys) {
    for (String k : diff.keySet()) if (keys.contains(k)) return true;
    return false;
  }

  @Override
  public String toString() {
    return "ReloadPlan" + diff + (moveListener ? " listener" : "") + (replaceDiscovery ? " discovery" : "")
        + (restartReporter ? " reporter" : "") + (reconfigureSentry ? " sentry" : "")
        + (rescheduleScan ? " scan" : "") + (restartOnly.isEmpty() ? "" : " restart-only " + restartOnly);
  }
}
