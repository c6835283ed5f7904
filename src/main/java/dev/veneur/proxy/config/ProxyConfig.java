package dev.veneur.proxy.config;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The proxy's settings, validated. Keys are the Go veneur-proxy's where it has one, so an existing
 * {@code veneur-proxy.yaml} works unchanged; keys it lacks are ours and documented in
 * {@code conf/proxy.yaml}. Instances are immutable so a reload can swap them atomically.
 */
public final class ProxyConfig {

  /** Keys the Go proxy reads for features we do not have; accepted so old files load, with a warning. */
  static final Set<String> UNSUPPORTED_KEYS = Set.of(
      "consul_trace_service_name", "trace_address", "trace_api_address",
      "ssf_destination_address");

  static final Set<String> KNOWN_KEYS = Set.of(
      "debug", "enable_profiling", "profiling_dir", "http_address", "http_instances",
      "consul_refresh_interval", "consul_forward_service_name", "consul_address", "consul_token",
      "consul_startup_timeout", "stats_address", "stats_interval", "sentry_dsn",
      "forward_address", "forward_addresses", "forward_timeout", "idle_connection_timeout",
      "max_idle_conns_per_host", "forward_compression_level", "forward_compressor", "batch_max_metrics",
      "batch_max_bytes", "batch_linger", "max_body_bytes", "max_inflated_bytes",
      "max_queued_bytes", "max_queued_bytes_per_destination", "shutdown_timeout",
      "config_scan_interval", "forward_retry_budget", "forward_retry_backoff",
      "eject_after_failures", "eject_probe_interval", "http_request_timeout",
      "http_max_connections", "memory_budget", "memory_wait_timeout", "http_idle_timeout",
      "max_string_length", "max_metric_bytes", "eject_slow_after", "consul_member_address",
      "spill_dir", "event_loops", "consul_max_answer_bytes", "admin_address", "http_max_connections_per_client",
      "profiling_min_interval", "grpc_address", "grpc_max_message_bytes", "grpc_max_concurrent_streams",
      "grpc_forward_address", "consul_forward_grpc_service_name", "ignore_tags", "compat",
      "ring_for_json", "ring_for_grpc", "dns_forward_name", "dns_forward_grpc_name", "dns_forward_port",
      "dns_servers", "dns_refresh_interval", "tls", "http_tls", "grpc_tls_address", "forward_tls",
      "kubernetes_forward_service_name", "kubernetes_forward_grpc_service_name", "kubernetes_namespace",
      "kubernetes_port_name", "kubernetes_api_url", "kubernetes_token_file", "kubernetes_ca_file");

  public final boolean debug;
  public final boolean enableProfiling;
  public final String profilingDir;
  public final String httpHost;
  public final int httpPort;
  public final int httpInstances;
  /** Vert.x event-loop threads; 0: one per core. */
  public final int eventLoops;
  /** HTTP globals, static: the JSON ring's members ({@code http://host:port}). */
  public final List<String> forwardAddresses;
  /** gRPC globals, static ({@code grpc_forward_address}): the gRPC ring's members, {@code host:port}. */
  public final List<String> grpcForwardAddresses;
  /** There is a ring of HTTP globals ({@code forward_address(es)}, {@code consul_forward_service_name}). */
  public final boolean jsonRing;
  /**
   * There is a ring of gRPC globals ({@code grpc_forward_address} or
   * {@code consul_forward_grpc_service_name}): members named {@code host:port}, as v14 names them.
   */
  public final boolean grpcRing;
  /** {@code kubernetes_forward_service_name}: the HTTP ring's Service, its ready endpoints the members; or "". */
  public final String kubernetesForwardServiceName;
  /** {@code kubernetes_forward_grpc_service_name}: the gRPC ring's Service; or "". */
  public final String kubernetesForwardGrpcServiceName;
  /** {@code kubernetes_namespace}: "" for the pod's own (the service account's namespace file). */
  public final String kubernetesNamespace;
  /** {@code kubernetes_port_name}: "" for http (HTTP ring) and grpc (gRPC ring). */
  public final String kubernetesPortName;
  /** {@code kubernetes_api_url}, {@code kubernetes_token_file}, {@code kubernetes_ca_file}: "" for the in-cluster defaults. */
  public final String kubernetesApiUrl;
  public final String kubernetesTokenFile;
  public final String kubernetesCaFile;
  /** {@code dns_forward_name}: the HTTP ring's DNS name (SRV when it starts with {@code _}, else A/AAAA); or "". */
  public final String dnsForwardName;
  /** {@code dns_forward_grpc_name}: the gRPC ring's DNS name; or "". */
  public final String dnsForwardGrpcName;
  /** {@code dns_forward_port}: the globals' port for an A/AAAA name (an SRV answer carries its own); 0 if unset. */
  public final int dnsForwardPort;
  /** {@code dns_servers}: {@code host:port} of the DNS servers to ask, in order; empty: the system's. */
  public final List<String> dnsServers;
  public final Duration dnsRefreshInterval;
  /** {@code consul_forward_grpc_service_name}: the gRPC ring's Consul service. */
  public final String consulForwardGrpcServiceName;
  /**
   * Which ring JSON ({@code /import}) metrics go to, {@code http} or {@code grpc}, and which ring
   * gRPC metrics go to: by default each to its own kind of global, as Veneur v14.2.0; a ring with
   * no member sends its metrics to the other.
   */
  public final String ringForJson;
  public final String ringForGrpc;
  /** {@code ignore_tags}: left out of the gRPC ring's keys. */
  public final dev.veneur.proxy.config.IgnoreTags ignoreTags;
  /** Which generation's file this is, and why (the {@code compat} key, or the keys it has). */
  public final Compat compat;
  public final String consulForwardServiceName;
  public final Duration consulRefreshInterval;
  public final String consulAddress;
  public final String consulToken;
  public final Duration consulStartupTimeout;
  public final String statsAddress;
  public final Duration statsInterval;
  public final String sentryDsn;
  public final Duration forwardTimeout;
  public final Duration idleConnectionTimeout;
  public final int maxIdleConnsPerHost;
  public final int forwardCompressionLevel;
  /** {@code forward_compressor: fast} (the default): chunks deflated by the proxy's own deflater, not zlib. */
  public final boolean forwardCompressorFast;
  public final int batchMaxMetrics;
  public final long batchMaxBytes;
  public final Duration batchLinger;
  public final long maxBodyBytes;
  public final long maxInflatedBytes;
  /** Every byte of metric data the proxy may hold before it stops reading request bodies. */
  public final long memoryBudget;
  /** How long a request may wait (its socket paused) for memory before a 503. */
  public final Duration memoryWaitTimeout;
  /** One global's queue, in compressed bytes, before it counts as saturated. */
  public final long maxQueuedBytesPerDestination;
  public final Duration httpIdleTimeout;
  public final int maxStringLength;
  public final int maxMetricBytes;
  /** An answer slower than this counts as a failure toward ejection; zero turns it off. */
  public final Duration ejectSlowAfter;
  /** Consul members from the service's address (default) or the node's, as the Go proxy did. */
  public final boolean consulNodeAddress;
  /** Largest Consul answer read; a larger one is an error (the last good members stay). */
  public final long consulMaxAnswerBytes;
  /** Where accepted chunks are kept until settled, so a crash loses nothing; empty: off. */
  public final String spillDir;
  public final Duration shutdownTimeout;
  public final Duration configScanInterval;
  public final Duration forwardRetryBudget;
  public final Duration forwardRetryBackoff;
  public final int ejectAfterFailures;
  public final Duration ejectProbeInterval;
  public final Duration httpRequestTimeout;
  public final int httpMaxConnections;
  /**
   * Open connections one remote IP may hold: {@link #PER_CLIENT_AUTO} (a quarter of the effective
   * connection cap), 0 (no per-client limit) or a number.
   */
  public final int httpMaxConnectionsPerClient;
  public static final int PER_CLIENT_AUTO = -1;
  /** Where /healthcheck, /debug/state and /debug/profile are served apart from /import; empty: off. */
  public final String adminHost;
  public final int adminPort;
  /** Shortest time between two on-demand JFR dumps. */
  public final Duration profilingMinInterval;
  /** Where v14 locals' gRPC {@code forwardrpc.Forward} calls are served; empty host: off. */
  public final String grpcHost;
  public final int grpcPort;
  /** {@code tls}: the listeners' certificate and client verification (v14's key, plus client_auth). */
  public final TlsFiles tls;
  /** {@code http_tls}: serve {@code /import} on http_address over TLS with {@link #tls}. */
  public final boolean httpTls;
  /** {@code grpc_tls_address}: a TLS gRPC listener with {@link #tls} (v14's key); port -1 when unset. */
  public final String grpcTlsHost;
  public final int grpcTlsPort;
  /** {@code forward_tls}: how globals are verified and what the proxy presents to them. */
  public final TlsFiles forwardTls;
  /** The largest gRPC message read (a v14 local's whole MetricList for grpc-single). */
  public final int grpcMaxMessageBytes;
  /** HTTP/2 streams one gRPC connection may have open at once. */
  public final int grpcMaxConcurrentStreams;
  /** Human-readable problems that did not stop loading (unknown or unsupported keys). */
  public final List<String> warnings;
  /** The validated values by key, for diffs on reload. */
  private final Map<String, String> effective;

  private ProxyConfig(JsonObject raw) {
    List<String> warn = new ArrayList<>();
    for (String key : raw.fieldNames()) {
      if (UNSUPPORTED_KEYS.contains(key)) {
        warn.add("config key '" + key + "' is accepted for compatibility but trace forwarding is not supported; ignored");
      } else if (!KNOWN_KEYS.contains(key)) {
        warn.add("unknown config key '" + key + "' ignored (a typo?)");
      }
    }
    Reader r = new Reader(raw);
    compat = Compat.of(raw);
    r.seen.put("compat", compat.generation());
    debug = r.bool("debug", false);
    enableProfiling = r.bool("enable_profiling", false);
    profilingDir = r.string("profiling_dir", "profiles");
    String http = r.string("http_address", "127.0.0.1:8127");
    int colon = http.lastIndexOf(':');
    if (colon < 0) {
      throw new ConfigException("http_address", http, "host:port, e.g. 0.0.0.0:8127");
    }
    httpHost = colon == 0 ? "0.0.0.0" : http.substring(0, colon);
    httpPort = port("http_address", http, http.substring(colon + 1));
    httpInstances = r.intIn("http_instances", 0, 0, 256);
    eventLoops = r.intIn("event_loops", 0, 0, 1024);

    LinkedHashSet<String> dests = new LinkedHashSet<>();
    String single = r.string("forward_address", "");
    if (!single.isBlank()) {
      dests.add(destination("forward_address", single));
    }
    Object many = raw.getValue("forward_addresses");
    if (many instanceof JsonArray) {
      for (Object o : (JsonArray) many) {
        if (!(o instanceof String) || ((String) o).isBlank()) {
          throw new ConfigException("forward_addresses", o, "a list of URLs like http://host:port");
        }
        dests.add(destination("forward_addresses", (String) o));
      }
    } else if (many instanceof String && !((String) many).isBlank()) {
      for (String s : ((String) many).split(",")) {
        if (!s.isBlank()) dests.add(destination("forward_addresses", s.trim()));
      }
    } else if (many != null && !(many instanceof String)) {
      throw new ConfigException("forward_addresses", many, "a list of URLs like http://host:port");
    }
    // v14's gRPC globals, named host:port as v14's ring names (and hashes) them: reached by gRPC.
    LinkedHashSet<String> grpcDests = new LinkedHashSet<>();
    for (String g : r.string("grpc_forward_address", "").split(",")) {
      if (g.isBlank()) continue;
      MemberAddress.Checked c = MemberAddress.grpc(g.trim());
      if (!c.ok()) {
        throw new ConfigException("grpc_forward_address", LogText.escape(g), "host:port of a gRPC global, no scheme (this one "
            + c.reason() + ")");
      }
      grpcDests.add(c.member());
    }
    String grpcService = r.string("consul_forward_grpc_service_name", "").trim();
    consulForwardGrpcServiceName = grpcService;
    grpcForwardAddresses = List.copyOf(grpcDests);
    r.seen.put("grpc_forward_address", String.join(",", grpcForwardAddresses));
    forwardAddresses = List.copyOf(dests);
    // Read from the raw object (a list or a comma-separated string); recorded here so a reload
    // that changes only this key is seen as a change.
    r.seen.put("forward_addresses", String.join(",", forwardAddresses));

    consulForwardServiceName = r.string("consul_forward_service_name", "").trim();
    consulRefreshInterval = r.positiveDuration("consul_refresh_interval", "30s");
    consulAddress = r.string("consul_address", "").trim();
    if (!consulAddress.isEmpty()) {
      checkUrlOrHostPort("consul_address", consulAddress);
    }
    consulToken = r.string("consul_token", "");
    consulStartupTimeout = r.positiveDuration("consul_startup_timeout", "30s");
    // Two rings, as Veneur v14.2.0: HTTP globals (forward_address(es), consul_forward_service_name)
    // and gRPC globals (grpc_forward_address, consul_forward_grpc_service_name). JSON goes to the
    // first, gRPC to the second; with only one of them, everything goes there.
    kubernetesForwardServiceName = k8sName(r, "kubernetes_forward_service_name");
    kubernetesForwardGrpcServiceName = k8sName(r, "kubernetes_forward_grpc_service_name");
    kubernetesNamespace = k8sName(r, "kubernetes_namespace");
    kubernetesPortName = r.string("kubernetes_port_name", "").trim();
    kubernetesApiUrl = r.string("kubernetes_api_url", "").trim();
    if (!kubernetesApiUrl.isEmpty()) checkUrl("kubernetes_api_url", kubernetesApiUrl);
    kubernetesTokenFile = r.string("kubernetes_token_file", "").trim();
    kubernetesCaFile = r.string("kubernetes_ca_file", "").trim();
    dnsForwardName = dnsName(r, "dns_forward_name");
    dnsForwardGrpcName = dnsName(r, "dns_forward_grpc_name");
    dnsForwardPort = r.intIn("dns_forward_port", 0, 0, 65535);
    for (String[] k : new String[][] {{"dns_forward_name", dnsForwardName}, {"dns_forward_grpc_name", dnsForwardGrpcName}}) {
      if (!k[1].isEmpty() && !k[1].startsWith("_") && dnsForwardPort == 0) {
        throw new ConfigException("dns_forward_port", null, "the globals' port, needed by " + k[0] + " '" + k[1]
            + "' (an A/AAAA name; an SRV name, starting with '_', carries its own port)");
      }
    }
    dnsServers = dnsServers(raw.getValue("dns_servers"));
    r.seen.put("dns_servers", String.join(",", dnsServers));
    dnsRefreshInterval = r.positiveDuration("dns_refresh_interval", "10s");
    jsonRing = !forwardAddresses.isEmpty() || !consulForwardServiceName.isEmpty() || !dnsForwardName.isEmpty()
        || !kubernetesForwardServiceName.isEmpty();
    grpcRing = !grpcForwardAddresses.isEmpty() || !grpcService.isEmpty() || !dnsForwardGrpcName.isEmpty()
        || !kubernetesForwardGrpcServiceName.isEmpty();
    if (!jsonRing && !grpcRing) {
      throw new ConfigException("no destination: set forward_address, forward_addresses, grpc_forward_address, "
          + "consul_forward_service_name, consul_forward_grpc_service_name, dns_forward_name, dns_forward_grpc_name, "
          + "kubernetes_forward_service_name or kubernetes_forward_grpc_service_name");
    }
    ringForJson = r.string("ring_for_json", "http").trim().toLowerCase(Locale.ROOT);
    ringForGrpc = r.string("ring_for_grpc", "grpc").trim().toLowerCase(Locale.ROOT);
    for (String[] k : new String[][] {{"ring_for_json", ringForJson}, {"ring_for_grpc", ringForGrpc}}) {
      if (!k[1].equals("http") && !k[1].equals("grpc")) throw new ConfigException(k[0], k[1], "http or grpc");
    }
    ignoreTags = ignoreTags(raw.getValue("ignore_tags"));
    r.seen.put("ignore_tags", String.valueOf(raw.getValue("ignore_tags")));
    if (!ignoreTags.isEmpty() && !grpcRing) {
      warn.add("config key 'ignore_tags' applies to the ring of gRPC globals (grpc_forward_address, "
          + "consul_forward_grpc_service_name), as in Veneur v14.2.0; with HTTP globals only it is ignored");
    }
    if (!raw.containsKey("compat") && "v14".equals(compat.generation()) && !consulForwardServiceName.isEmpty()) {
      warn.add("this file is read as Veneur v14.2.0's (" + compat.reason() + "), so Consul globals are ring members "
          + "<Node.Address>:<Service.Port> as v14.2.0 names them, not v2's http://<address>:<port>: series land as "
          + "under the v14.2.0 proxy. A file written for v2 (or for this proxy before it read v14 files) should say "
          + "compat: v2");
    }
    statsAddress = r.string("stats_address", "").trim();
    if (!statsAddress.isEmpty()) {
      checkHostPort("stats_address", statsAddress.replaceFirst("^udp://", ""));
    }
    statsInterval = r.positiveDuration("stats_interval", "10s");
    sentryDsn = r.string("sentry_dsn", "").trim();
    if (!sentryDsn.isEmpty()) {
      checkUrl("sentry_dsn", sentryDsn);
    }
    forwardTimeout = r.positiveDuration("forward_timeout", "10s");
    idleConnectionTimeout = r.positiveDuration("idle_connection_timeout", "90s");
    maxIdleConnsPerHost = r.intIn("max_idle_conns_per_host", 8, 1, 1024);
    forwardCompressionLevel = r.intIn("forward_compression_level", 1, 0, 9);
    String compressor = r.string("forward_compressor", "fast").trim().toLowerCase(Locale.ROOT);
    if (!compressor.equals("fast") && !compressor.equals("zlib")) {
      throw new ConfigException("forward_compressor", compressor, "fast or zlib");
    }
    forwardCompressorFast = compressor.equals("fast");
    batchMaxMetrics = r.intIn("batch_max_metrics", 2000, 1, 1_000_000);
    batchMaxBytes = r.bytes("batch_max_bytes", "1MiB", 1024);
    batchLinger = r.positiveDuration("batch_linger", "50ms");
    maxBodyBytes = r.bytes("max_body_bytes", "16MiB", 1024);
    maxInflatedBytes = r.bytes("max_inflated_bytes", "64MiB", 1024);
    if (maxInflatedBytes > Integer.MAX_VALUE - 16) {
      throw new ConfigException("max_inflated_bytes", maxInflatedBytes, "at most 2GiB");
    }
    String autoBudget = Long.toString(defaultMemoryBudget());
    if (raw.containsKey("max_queued_bytes") && !raw.containsKey("memory_budget")) {
      warn.add("config key 'max_queued_bytes' is now 'memory_budget' (it bounds every byte the proxy"
          + " holds, not only queues); using its value");
      memoryBudget = r.bytes("max_queued_bytes", autoBudget, 1024 * 1024);
    } else {
      memoryBudget = r.bytes("memory_budget", autoBudget, 1024 * 1024);
    }
    memoryWaitTimeout = r.duration("memory_wait_timeout", "5s");
    maxQueuedBytesPerDestination = r.bytes("max_queued_bytes_per_destination",
        Long.toString(memoryBudget / 2), 64 * 1024);
    httpIdleTimeout = r.positiveDuration("http_idle_timeout", "60s");
    maxStringLength = (int) r.bytesIn("max_string_length", "1MiB", 64, Integer.MAX_VALUE - 64);
    maxMetricBytes = (int) r.bytesIn("max_metric_bytes", "4MiB", 1024, Integer.MAX_VALUE - 64);
    ejectSlowAfter = r.duration("eject_slow_after", "2s");
    // Veneur v14.2.0 names a Consul instance by its node's address; v2 files keep the service's.
    String memberAddress = r.string("consul_member_address", "v14".equals(compat.generation()) ? "node" : "service")
        .trim().toLowerCase(Locale.ROOT);
    if (!memberAddress.equals("service") && !memberAddress.equals("node")) {
      throw new ConfigException("consul_member_address", memberAddress, "service or node");
    }
    consulNodeAddress = memberAddress.equals("node");
    // A Consul answer is held whole while it is read; this bounds it (a fleet of thousands of
    // instances answers a few MiB; a bigger answer would otherwise cost the heap the traffic needs).
    consulMaxAnswerBytes = r.bytesIn("consul_max_answer_bytes", "16MiB", 64 * 1024, 1L << 30);
    spillDir = r.string("spill_dir", "").trim();
    shutdownTimeout = r.positiveDuration("shutdown_timeout", "10s");
    configScanInterval = r.positiveDuration("config_scan_interval", "3s");
    forwardRetryBudget = r.duration("forward_retry_budget", "5s");
    forwardRetryBackoff = r.positiveDuration("forward_retry_backoff", "100ms");
    ejectAfterFailures = r.intIn("eject_after_failures", 3, 0, 1000);
    ejectProbeInterval = r.positiveDuration("eject_probe_interval", "1s");
    httpRequestTimeout = r.positiveDuration("http_request_timeout", "10s");
    httpMaxConnections = r.intIn("http_max_connections", 4096, 1, 1_000_000);
    Object perClient = raw.getValue("http_max_connections_per_client");
    if (perClient == null || "auto".equalsIgnoreCase(perClient.toString().trim())) {
      httpMaxConnectionsPerClient = PER_CLIENT_AUTO;
      r.seen.put("http_max_connections_per_client", "auto");
    } else {
      httpMaxConnectionsPerClient = r.intIn("http_max_connections_per_client", 0, 0, 1_000_000);
    }
    // Tests run many proxies at once: they move the default to a free port (see README).
    String admin = r.string("admin_address",
        System.getProperty("veneur.proxy.adminAddressDefault", "127.0.0.1:8130")).trim();
    if (admin.isEmpty()) {
      adminHost = "";
      adminPort = -1;
    } else {
      int c = admin.lastIndexOf(':');
      if (c <= 0) throw new ConfigException("admin_address", admin, "host:port, e.g. 127.0.0.1:8130, or \"\" for none");
      adminHost = admin.substring(0, c);
      adminPort = port("admin_address", admin, admin.substring(c + 1));
    }
    profilingMinInterval = r.duration("profiling_min_interval", "1m");
    String grpc = r.string("grpc_address", "").trim();
    if (grpc.isEmpty()) {
      grpcHost = "";
      grpcPort = -1;
    } else {
      int c = grpc.lastIndexOf(':');
      if (c < 0) throw new ConfigException("grpc_address", grpc, "host:port, e.g. 0.0.0.0:8128, or \"\" for none");
      grpcHost = c == 0 ? "0.0.0.0" : grpc.substring(0, c);
      grpcPort = port("grpc_address", grpc, grpc.substring(c + 1));
    }
    tls = TlsFiles.read("tls", raw.getValue("tls"), true);
    r.seen.put("tls", tls.toString() + tls.serverName());
    forwardTls = TlsFiles.read("forward_tls", raw.getValue("forward_tls"), false);
    r.seen.put("forward_tls", forwardTls.toString() + forwardTls.serverName());
    httpTls = r.bool("http_tls", false);
    String grpcTls = r.string("grpc_tls_address", "").trim();
    if (grpcTls.isEmpty()) {
      grpcTlsHost = "";
      grpcTlsPort = -1;
    } else {
      int c = grpcTls.lastIndexOf(':');
      if (c < 0) throw new ConfigException("grpc_tls_address", grpcTls, "host:port, e.g. 0.0.0.0:8129, or \"\" for none");
      grpcTlsHost = c == 0 ? "0.0.0.0" : grpcTls.substring(0, c);
      grpcTlsPort = port("grpc_tls_address", grpcTls, grpcTls.substring(c + 1));
    }
    if ((httpTls || grpcTlsPort >= 0) && !tls.isSet()) {
      throw new ConfigException(httpTls ? "http_tls" : "grpc_tls_address", httpTls ? "true" : grpcTls,
          "a tls block (cert_file, key_file; ca_file to verify clients) for the TLS listener");
    }
    // 4 MiB: what a Go gRPC server (a v14 global) accepts by default, so a local whose flush
    // fits a global fits here.
    grpcMaxMessageBytes = (int) Math.min(Integer.MAX_VALUE - 1024, r.bytes("grpc_max_message_bytes", "4MiB", 1024));
    grpcMaxConcurrentStreams = r.intIn("grpc_max_concurrent_streams", 100, 1, 100_000);
    warnings = Collections.unmodifiableList(warn);
    effective = Collections.unmodifiableMap(r.seen);
  }

  /**
   * 40% of the maximum heap, at most 256 MiB: with the README's -Xmx256m that leaves the JVM and
   * the garbage collector room beside the data; under a bare {@code java -jar} on a large host it
   * keeps the footprint near what a metrics proxy needs.
   */
  static long defaultMemoryBudget() {
    long heap = Runtime.getRuntime().maxMemory();
    if (heap == Long.MAX_VALUE) heap = 1L << 30;
    return Math.max(16L << 20, Math.min(heap * 2 / 5, 256L << 20));
  }

  /** Validates a raw config object (as Vert.x Config produced it from YAML). */
  public static ProxyConfig from(JsonObject raw) {
    return new ProxyConfig(raw == null ? new JsonObject() : raw);
  }

  public int effectiveHttpInstances() {
    return httpInstances > 0 ? httpInstances : Runtime.getRuntime().availableProcessors();
  }

  /**
   * One event loop per core by default, not Vert.x's two: the work here is CPU (inflate, scan,
   * deflate), and with more threads than cores every hand-off between verticles wakes a thread
   * that must then wait for a core (measured: ~20% more CPU per metric with two per core).
   */
  public int effectiveEventLoops() {
    return eventLoops > 0 ? eventLoops : Runtime.getRuntime().availableProcessors();
  }

  /** Whether the admin listener is on. */
  public boolean adminEnabled() {
    return adminPort >= 0;
  }

  /**
   * The per-client connection cap against an inbound cap of {@code inboundCap}: 0 when off, else
   * at least 1.
   */
  public int perClientCap(int inboundCap) {
    if (httpMaxConnectionsPerClient == PER_CLIENT_AUTO) return Math.max(1, inboundCap / 4);
    return httpMaxConnectionsPerClient;
  }

  public boolean usesConsul() {
    return !consulForwardServiceName.isEmpty() || !consulForwardGrpcServiceName.isEmpty();
  }

  /** Static members of both rings, for sizing (descriptors) before discovery answers. */
  public int staticMembers() {
    return forwardAddresses.size() + grpcForwardAddresses.size();
  }

  /** {@code ignore_tags}: a list of {@code {kind: exact|prefix|regex, value: ...}}. */
  private static dev.veneur.proxy.config.IgnoreTags ignoreTags(Object v) {
    if (v == null) return dev.veneur.proxy.config.IgnoreTags.NONE;
    if (!(v instanceof JsonArray list)) {
      throw new ConfigException("ignore_tags", LogText.escape(String.valueOf(v)),
          "a list of matchers like {kind: prefix, value: \"host:\"}");
    }
    List<dev.veneur.proxy.config.IgnoreTags.Rule> rules = new ArrayList<>();
    for (Object o : list) {
      if (!(o instanceof io.vertx.core.json.JsonObject m) || !(m.getValue("kind") instanceof String kind)
          || !(m.getValue("value") instanceof String value)) {
        throw new ConfigException("ignore_tags", LogText.escape(String.valueOf(o)),
            "a matcher with a kind (exact, prefix or regex) and a value");
      }
      rules.add(new dev.veneur.proxy.config.IgnoreTags.Rule(kind, value));
    }
    try {
      return dev.veneur.proxy.config.IgnoreTags.of(rules);
    } catch (IllegalArgumentException e) {
      throw new ConfigException("config key 'ignore_tags': " + e.getMessage());
    }
  }

  /** Keys whose validated value differs, with old and new values, for the reload log. */
  public Map<String, String> diff(ProxyConfig newer) {
    Map<String, String> out = new LinkedHashMap<>();
    Set<String> keys = new LinkedHashSet<>(effective.keySet());
    keys.addAll(newer.effective.keySet());
    for (String k : keys) {
      String a = effective.get(k);
      String b = newer.effective.get(k);
      if (a == null ? b != null : !a.equals(b)) {
        out.put(k, (k.contains("token") || k.contains("dsn") ? "(secret changed)" : a + " -> " + b));
      }
    }
    return out;
  }

  static String destination(String key, String value) {
    String v = value.trim();
    if (!v.contains("://")) {
      v = "http://" + v;
    }
    while (v.endsWith("/")) {
      v = v.substring(0, v.length() - 1);
    }
    // Each entry checked on its own, as every ring member is (MemberAddress): a port out of
    // range or a path would otherwise reach the forwarder and fail there, once per POST.
    MemberAddress.Checked c = MemberAddress.url(v);
    if (!c.ok()) {
      throw new ConfigException(key, LogText.escape(value), "a URL like http://host:port (this one " + c.reason() + ")");
    }
    return v;
  }

  private static void checkUrl(String key, String value) {
    try {
      URI u = new URI(value);
      if (u.getScheme() == null || u.getHost() == null) {
        throw new ConfigException(key, value, "a URL with a scheme and a host, e.g. http://host:port");
      }
    } catch (java.net.URISyntaxException e) {
      throw new ConfigException(key, value, "a URL (" + e.getReason() + ")");
    }
  }

  /** A Kubernetes object name (a DNS label: lowercase letters, digits and '-'), or "". */
  private static String k8sName(Reader r, String key) {
    String v = r.string(key, "").trim();
    if (!v.isEmpty() && (v.length() > 63 || !v.matches("[a-z0-9]([-a-z0-9]*[a-z0-9])?"))) {
      throw new ConfigException(key, LogText.escape(v), "a Kubernetes name (lowercase letters, digits and '-', 63 at most)");
    }
    return v;
  }

  /** A DNS name as a query can carry it: labels of letters, digits, '-' and '_', 253 characters at most. */
  private static String dnsName(Reader r, String key) {
    String v = r.string(key, "").trim();
    if (v.endsWith(".")) v = v.substring(0, v.length() - 1);
    if (v.isEmpty()) return v;
    if (v.length() > 253 || !v.matches("[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*")) {
      throw new ConfigException(key, LogText.escape(v), "a DNS name (labels of letters, digits, '-' and '_'; "
          + "_service._proto.name for SRV)");
    }
    return v;
  }

  /** {@code dns_servers}: a list (or comma-separated string) of {@code host:port}. */
  private static List<String> dnsServers(Object raw) {
    List<String> out = new java.util.ArrayList<>();
    if (raw == null) return out;
    List<Object> items = new java.util.ArrayList<>();
    if (raw instanceof JsonArray a) {
      a.forEach(items::add);
    } else if (raw instanceof String s) {
      for (String p : s.split(",")) if (!p.isBlank()) items.add(p.trim());
    } else {
      throw new ConfigException("dns_servers", raw, "a list of host:port");
    }
    for (Object o : items) {
      if (!(o instanceof String) || ((String) o).isBlank()) throw new ConfigException("dns_servers", o, "a list of host:port");
      checkHostPort("dns_servers", ((String) o).trim());
      out.add(((String) o).trim());
    }
    return List.copyOf(out);
  }

  private static void checkUrlOrHostPort(String key, String value) {
    if (value.contains("://")) {
      checkUrl(key, value);
    } else {
      checkHostPort(key, value);
    }
  }

  static void checkHostPort(String key, String value) {
    int colon = value.lastIndexOf(':');
    if (colon <= 0) {
      throw new ConfigException(key, value, "host:port");
    }
    port(key, value, value.substring(colon + 1));
  }

  private static int port(String key, String whole, String p) {
    try {
      int n = Integer.parseInt(p);
      if (n < 0 || n > 65535) throw new NumberFormatException();
      return n;
    } catch (NumberFormatException e) {
      throw new ConfigException(key, whole, "host:port with a port from 0 to 65535");
    }
  }

  /** Typed reads that record each effective value and name the key in every error. */
  private static final class Reader {
    final JsonObject raw;
    final Map<String, String> seen = new LinkedHashMap<>();

    Reader(JsonObject raw) {
      this.raw = raw;
    }

    boolean bool(String key, boolean def) {
      Object v = raw.getValue(key);
      boolean out;
      if (v == null) out = def;
      else if (v instanceof Boolean) out = (Boolean) v;
      else if ("true".equalsIgnoreCase(v.toString()) || "false".equalsIgnoreCase(v.toString())) {
        out = Boolean.parseBoolean(v.toString());
      } else throw new ConfigException(key, v, "true or false");
      seen.put(key, Boolean.toString(out));
      return out;
    }

    String string(String key, String def) {
      Object v = raw.getValue(key);
      String out;
      if (v == null) out = def;
      else if (v instanceof String || v instanceof Number || v instanceof Boolean) out = v.toString();
      else throw new ConfigException(key, v, "a string");
      seen.put(key, out);
      return out;
    }

    int intIn(String key, int def, int min, int max) {
      Object v = raw.getValue(key);
      int out;
      if (v == null) out = def;
      else {
        try {
          out = v instanceof Number && ((Number) v).doubleValue() == ((Number) v).intValue()
              ? ((Number) v).intValue() : Integer.parseInt(v.toString().trim());
        } catch (NumberFormatException e) {
          throw new ConfigException(key, v, "a whole number from " + min + " to " + max);
        }
        if (out < min || out > max) {
          throw new ConfigException(key, v, "a whole number from " + min + " to " + max);
        }
      }
      seen.put(key, Integer.toString(out));
      return out;
    }

    /** A duration that may be zero (zero turns the feature off). */
    Duration duration(String key, String def) {
      return durationAtLeast(key, def, false);
    }

    Duration positiveDuration(String key, String def) {
      return durationAtLeast(key, def, true);
    }

    private Duration durationAtLeast(String key, String def, boolean positive) {
      Object v = raw.getValue(key);
      String text = v == null ? def : v.toString();
      Duration d;
      try {
        d = GoDuration.parse(text);
      } catch (IllegalArgumentException e) {
        throw new ConfigException(key, v, "a Go duration such as 10s, 1m30s or 500ms");
      }
      // Timers here count milliseconds: a positive duration under 1ms would be 0, which means
      // "never" to some of them (Vert.x Config's scan period) and is refused by others.
      if (d.isNegative() || positive && d.toMillis() < 1) {
        throw new ConfigException(key, v, positive ? "a duration of at least 1ms" : "a duration of zero or more");
      }
      seen.put(key, GoDuration.format(d));
      return d;
    }

    long bytesIn(String key, String def, long min, long max) {
      long v = bytes(key, def, min);
      if (v > max) throw new ConfigException(key, raw.getValue(key), "at most " + max + " bytes");
      return v;
    }

    long bytes(String key, String def, long min) {
      Object v = raw.getValue(key);
      long out;
      try {
        out = v instanceof Number ? ((Number) v).longValue() : parseBytes(v == null ? def : v.toString());
      } catch (IllegalArgumentException e) {
        throw new ConfigException(key, v, "a size in bytes, e.g. 1048576 or 16MiB");
      }
      if (out < min) {
        throw new ConfigException(key, v, "at least " + min + " bytes");
      }
      seen.put(key, Long.toString(out));
      return out;
    }
  }

  static long parseBytes(String text) {
    String s = text.trim().toUpperCase(Locale.ROOT);
    long mult = 1;
    String[][] units = {{"KIB", "1024"}, {"MIB", "1048576"}, {"GIB", "1073741824"},
        {"KB", "1000"}, {"MB", "1000000"}, {"GB", "1000000000"}, {"K", "1024"}, {"M", "1048576"},
        {"G", "1073741824"}, {"B", "1"}};
    for (String[] u : units) {
      if (s.endsWith(u[0])) {
        mult = Long.parseLong(u[1]);
        s = s.substring(0, s.length() - u[0].length()).trim();
        break;
      }
    }
    double n = Double.parseDouble(s);
    if (n < 0 || Double.isNaN(n)) throw new IllegalArgumentException(text);
    return (long) (n * mult);
  }
}
