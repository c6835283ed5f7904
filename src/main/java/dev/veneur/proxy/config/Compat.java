package dev.veneur.proxy.config;

import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Which Go proxy a config file was written for, Veneur v2's or v14.2.0's, and why: the two share
 * most keys ({@code http_address}, {@code forward_address}, {@code consul_forward_service_name},
 * ...), so the file is v14's when it has any key only v14.2.0 knows, v2's otherwise, and an
 * explicit {@code compat: v2 | v14} wins over both. Said in the start-up log and in
 * {@code /debug/state}, so an operator can see how the proxy read the file.
 */
public record Compat(String generation, String reason) {
  /** Keys the v14.2.0 proxy reads and v2's does not (and {@code tracing_client_*}). */
  static final List<String> V14_ONLY = List.of("grpc_address", "grpc_forward_address",
      "consul_forward_grpc_service_name", "ignore_tags", "idle_connection_timeout", "max_idle_conns",
      "max_idle_conns_per_host", "runtime_metrics_interval", "ssf_destination_address");

  static Compat of(JsonObject raw) {
    Object explicit = raw.getValue("compat");
    if (explicit != null) {
      String v = String.valueOf(explicit).trim().toLowerCase(java.util.Locale.ROOT);
      if (!v.equals("v2") && !v.equals("v14")) throw new ConfigException("compat", LogText.escape(String.valueOf(explicit)), "v2 or v14");
      return new Compat(v, "compat: " + v + " in the config");
    }
    Set<String> seen = new TreeSet<>();
    for (String k : raw.fieldNames()) {
      if (V14_ONLY.contains(k) || k.startsWith("tracing_client_")) seen.add(k);
    }
    if (!seen.isEmpty()) return new Compat("v14", "it has keys only Veneur v14.2.0's proxy reads: " + String.join(", ", seen));
    return new Compat("v2", "it has no key only Veneur v14.2.0's proxy reads");
  }
}
