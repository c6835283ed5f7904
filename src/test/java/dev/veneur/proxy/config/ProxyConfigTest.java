package dev.veneur.proxy.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

@ExtendWith(VertxExtension.class)
class ProxyConfigTest {

  private static JsonObject base() {
    return new JsonObject().put("forward_address", "http://127.0.0.1:8128");
  }

  @Test
  void goDurations() {
    assertEquals(Duration.ofSeconds(90), GoDuration.parse("1m30s"));
    assertEquals(Duration.ofMillis(500), GoDuration.parse("500ms"));
    assertEquals(Duration.ofMinutes(90), GoDuration.parse("1.5h"));
    assertEquals(Duration.ofNanos(1500), GoDuration.parse("1us500ns"));
    assertEquals(Duration.ZERO, GoDuration.parse("0"));
    for (String bad : List.of("", "10", "10 s", "s", "1m30", "ten seconds")) {
      assertThrows(IllegalArgumentException.class, () -> GoDuration.parse(bad), bad);
    }
  }

  @Test
  void theGoProxysExampleFileLoadsWithWarningsForTraceKeys(Vertx vertx) throws Exception {
    Path file = Path.of(getClass().getClassLoader().getResource("go-proxy-v2.yaml").toURI());
    ProxyConfig cfg = ConfigLoader.load(vertx, file).await();
    assertEquals(List.of("http://veneur.example.com"), cfg.forwardAddresses);
    assertEquals("localhost", cfg.httpHost);
    assertEquals(8127, cfg.httpPort);
    assertEquals(Duration.ofSeconds(10), cfg.forwardTimeout);
    assertTrue(cfg.debug);
    assertTrue(cfg.warnings.stream().anyMatch(w -> w.contains("'trace_api_address'")), cfg.warnings.toString());
    // grpc_address is served now (forwardrpc.Forward, as v14 locals send it): read, not warned about.
    assertTrue(cfg.warnings.stream().noneMatch(w -> w.contains("'grpc_address'")), cfg.warnings.toString());
    assertEquals("localhost", cfg.grpcHost);
    assertEquals(8128, cfg.grpcPort);
  }

  @Test
  void unknownKeysAreWarnedByName() {
    ProxyConfig cfg = ProxyConfig.from(base().put("forward_timout", "5s"));
    assertEquals(List.of("unknown config key 'forward_timout' ignored (a typo?)"), cfg.warnings);
  }

  private static void assertRejected(String key, Object value) {
    ConfigException e = assertThrows(ConfigException.class, () -> ProxyConfig.from(base().put(key, value)));
    assertTrue(e.getMessage().contains("'" + key + "'"), e.getMessage());
  }

  @Test
  void perClientCapAndAdminAddress() {
    ProxyConfig auto = ProxyConfig.from(base());
    org.junit.jupiter.api.Assertions.assertEquals(1024, auto.perClientCap(4096));
    org.junit.jupiter.api.Assertions.assertEquals(1, auto.perClientCap(3));
    org.junit.jupiter.api.Assertions.assertEquals(0, ProxyConfig.from(base().put("http_max_connections_per_client", 0)).perClientCap(4096));
    org.junit.jupiter.api.Assertions.assertEquals(7, ProxyConfig.from(base().put("http_max_connections_per_client", "7")).perClientCap(4096));
    org.junit.jupiter.api.Assertions.assertFalse(ProxyConfig.from(base().put("admin_address", "")).adminEnabled());
    ProxyConfig admin = ProxyConfig.from(base().put("admin_address", "127.0.0.1:9999"));
    org.junit.jupiter.api.Assertions.assertEquals("127.0.0.1", admin.adminHost);
    org.junit.jupiter.api.Assertions.assertEquals(9999, admin.adminPort);
  }

  @Test
  void badValuesNameTheirKey() {
    assertRejected("forward_timeout", "10");
    assertRejected("consul_refresh_interval", "soon");
    assertRejected("batch_linger", "0s");
    assertRejected("http_address", "8127");
    assertRejected("http_address", "localhost:99999");
    assertRejected("forward_address", "ftp://x");
    assertRejected("forward_addresses", new JsonArray().add(3));
    assertRejected("max_idle_conns_per_host", "lots");
    assertRejected("max_body_bytes", "big");
    assertRejected("forward_compression_level", 12);
    assertRejected("forward_compressor", "lz4");
    assertTrue(ProxyConfig.from(base()).forwardCompressorFast, "the fast deflater is the default");
    assertTrue(ProxyConfig.from(base().put("forward_compressor", "FAST")).forwardCompressorFast);
    org.junit.jupiter.api.Assertions.assertFalse(ProxyConfig.from(base().put("forward_compressor", "zlib")).forwardCompressorFast);
    assertRejected("debug", "yes please");
    assertRejected("stats_address", "nohostport");
    assertRejected("sentry_dsn", "not a url");
    assertRejected("forward_retry_budget", "-1s");
    assertRejected("eject_after_failures", -1);
    assertRejected("http_request_timeout", "0");
    assertRejected("config_scan_interval", "fast");
    assertRejected("http_max_connections_per_client", -2);
    assertRejected("http_max_connections_per_client", "half");
    assertRejected("admin_address", "8130");
    assertRejected("admin_address", "127.0.0.1:70000");
    assertRejected("profiling_min_interval", "often");
    // Under 1ms is 0 to the millisecond timers: a scan period of 0 would never scan again.
    assertRejected("config_scan_interval", "500us");
    assertRejected("stats_interval", "999999ns");
    assertEquals(java.time.Duration.ofMillis(1), ProxyConfig.from(base().put("config_scan_interval", "1ms")).configScanInterval);
    assertRejected("consul_address", "consul:port");
  }

  @Test
  void zeroTurnsRetriesAndEjectionOff() {
    ProxyConfig c = ProxyConfig.from(base().put("forward_retry_budget", 0).put("eject_after_failures", 0));
    assertTrue(c.forwardRetryBudget.isZero());
    assertEquals(0, c.ejectAfterFailures);
  }

  @Test
  void noDestinationAtAllIsAnError() {
    ConfigException e = assertThrows(ConfigException.class, () -> ProxyConfig.from(new JsonObject()));
    assertTrue(e.getMessage().contains("forward_address"), e.getMessage());
  }

  @Test
  void addressesNormaliseAndCollapse() {
    ProxyConfig cfg = ProxyConfig.from(new JsonObject()
        .put("forward_address", "10.0.0.1:8000")
        .put("forward_addresses", new JsonArray().add("http://10.0.0.1:8000/").add("http://10.0.0.2:8000")));
    assertEquals(List.of("http://10.0.0.1:8000", "http://10.0.0.2:8000"), cfg.forwardAddresses);
  }

  @Test
  void brokenYamlIsReportedWithTheFile(Vertx vertx, @TempDir Path dir) throws Exception {
    Path f = dir.resolve("proxy.yaml");
    Files.writeString(f, "forward_address: [unclosed\n");
    Exception e = assertThrows(Exception.class, () -> ConfigLoader.load(vertx, f).await());
    assertTrue(e.getMessage().contains("proxy.yaml"), e.getMessage());
    Exception missing = assertThrows(Exception.class, () -> ConfigLoader.load(vertx, dir.resolve("nope.yaml")).await());
    assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
  }

  @Test
  void memoryKeysValidateAndTheOldQueueKeyIsReadAsTheBudget() {
    ProxyConfig dflt = ProxyConfig.from(base());
    long heap = Runtime.getRuntime().maxMemory();
    assertEquals(Math.max(16L << 20, Math.min(heap * 2 / 5, 256L << 20)), dflt.memoryBudget);
    assertEquals(dflt.memoryBudget / 2, dflt.maxQueuedBytesPerDestination);
    assertEquals(Duration.ofSeconds(5), dflt.memoryWaitTimeout);

    ProxyConfig old = ProxyConfig.from(base().put("max_queued_bytes", "64MiB"));
    assertEquals(64L << 20, old.memoryBudget);
    assertTrue(old.warnings.stream().anyMatch(w -> w.contains("'max_queued_bytes' is now 'memory_budget'")), old.warnings.toString());
    assertEquals(32L << 20, ProxyConfig.from(base().put("memory_budget", "64MiB")).maxQueuedBytesPerDestination);

    assertRejected("memory_budget", "lots");
    assertRejected("memory_budget", "1KiB");
    assertRejected("memory_wait_timeout", "-1s");
    assertRejected("max_string_length", "3");
    assertRejected("max_metric_bytes", "4GiB");
    assertRejected("eject_slow_after", "soon");
    assertRejected("http_idle_timeout", "0s");
    assertRejected("consul_member_address", "ip");
    assertTrue(ProxyConfig.from(base().put("consul_member_address", "node")).consulNodeAddress);
  }

  @Test
  void aChangeOfForwardAddressesAloneIsAChange() {
    ProxyConfig a = ProxyConfig.from(new JsonObject().put("forward_addresses", new JsonArray().add("http://a:1").add("http://b:1")));
    ProxyConfig b = ProxyConfig.from(new JsonObject().put("forward_addresses", new JsonArray().add("http://b:1").add("http://c:1")));
    assertEquals(List.of("forward_addresses"), List.copyOf(a.diff(b).keySet()));
    assertTrue(a.diff(ProxyConfig.from(new JsonObject().put("forward_addresses", "http://a:1,http://b:1"))).isEmpty(),
        "a list and the same comma-separated string are one config");
  }

  @Test
  void grpcGlobalsAreNamedAsV14NamesThemAndTheFileIsReadAsV14s() {
    ProxyConfig g = ProxyConfig.from(new JsonObject().put("grpc_forward_address", "10.0.0.1:8128, 10.0.0.2:8128"));
    assertEquals(List.of("10.0.0.1:8128", "10.0.0.2:8128"), g.grpcForwardAddresses);
    assertTrue(g.grpcRing && !g.jsonRing);
    assertEquals("v14", g.compat.generation());
    assertTrue(g.compat.reason().contains("grpc_forward_address"), g.compat.reason());
    ConfigException bad = assertThrows(ConfigException.class,
        () -> ProxyConfig.from(new JsonObject().put("grpc_forward_address", "http://10.0.0.1:8128")));
    assertTrue(bad.getMessage().contains("'grpc_forward_address'") && bad.getMessage().contains("no scheme"), bad.getMessage());

    ProxyConfig c = ProxyConfig.from(new JsonObject().put("consul_forward_grpc_service_name", "veneur-grpc"));
    assertTrue(c.grpcRing && c.usesConsul());
    assertEquals("veneur-grpc", c.consulForwardGrpcServiceName);
    assertEquals("", c.consulForwardServiceName);

    // Beside HTTP globals: two rings, as Veneur v14.2.0 (JSON to the one, gRPC to the other).
    ProxyConfig both = ProxyConfig.from(base().put("grpc_forward_address", "10.0.0.1:8128"));
    assertEquals(List.of("http://127.0.0.1:8128"), both.forwardAddresses);
    assertEquals(List.of("10.0.0.1:8128"), both.grpcForwardAddresses);
    assertTrue(both.grpcRing && both.jsonRing && both.warnings.isEmpty(), both.warnings.toString());
    assertEquals(2, both.staticMembers());
  }

  @Test
  void ignoreTagsApplyToTheRingOfGrpcGlobals() {
    JsonObject rules = new JsonObject().put("grpc_forward_address", "10.0.0.1:8128").put("ignore_tags",
        new JsonArray().add(new JsonObject().put("kind", "prefix").put("value", "host:"))
            .add(new JsonObject().put("kind", "regex").put("value", "^pod-[0-9]+$")));
    ProxyConfig g = ProxyConfig.from(rules);
    assertTrue(g.ignoreTags.ignored("host:a1") && g.ignoreTags.ignored("pod-7") && !g.ignoreTags.ignored("env:prod"));
    ProxyConfig h = ProxyConfig.from(base().put("ignore_tags", rules.getJsonArray("ignore_tags")));
    assertTrue(!h.grpcRing && !h.ignoreTags.isEmpty());
    assertTrue(h.warnings.stream().anyMatch(w -> w.contains("'ignore_tags'")), h.warnings.toString());
    assertRejected("ignore_tags", "host");
    assertRejected("ignore_tags", new JsonArray().add(new JsonObject().put("kind", "glob").put("value", "x")));
    assertRejected("ignore_tags", new JsonArray().add(new JsonObject().put("kind", "regex").put("value", "(")));
  }

  @Test
  void theCompatKeyWinsOverWhatTheKeysSuggest() {
    assertEquals("v2", ProxyConfig.from(base()).compat.generation());
    assertEquals("v14", ProxyConfig.from(base().put("max_idle_conns", 10)).compat.generation());
    ProxyConfig forced = ProxyConfig.from(base().put("grpc_address", "127.0.0.1:0").put("compat", "v2"));
    assertEquals("v2", forced.compat.generation());
    assertEquals("compat: v2 in the config", forced.compat.reason());
    assertRejected("compat", "v3");
  }

  /** The example files in conf/ load, each read as the generation it is written for. */
  @Test
  void theExampleFilesLoadAsTheirGeneration() throws Exception {
    for (String[] f : new String[][] {{"proxy.yaml", "v2", "http"}, {"v14-fleet.yaml", "v14", "grpc"},
        {"mixed-fleet.yaml", "v14", "grpc"}}) {
      Path file = Path.of("conf", f[0]);
      ProxyConfig cfg = ProxyConfig.from(BoundedYaml.parse(f[0], Files.readAllBytes(file)));
      assertEquals(f[1], cfg.compat.generation(), f[0]);
      assertEquals(f[2].equals("grpc"), cfg.grpcRing, f[0]);
      assertTrue(cfg.warnings.isEmpty(), f[0] + ": " + cfg.warnings);
    }
    ProxyConfig v14 = ProxyConfig.from(BoundedYaml.parse("v14", Files.readAllBytes(Path.of("conf", "v14-fleet.yaml"))));
    assertTrue(v14.ignoreTags.ignored("host:i-1"));
    assertTrue(v14.consulNodeAddress, "v14 names Consul instances by their node's address");
  }

  @Test
  void aFileReadAsV14ForKeysThisProxyAlsoHadSaysHowItsConsulPlacementChanges() {
    ProxyConfig c = ProxyConfig.from(new JsonObject().put("consul_forward_service_name", "veneur-global")
        .put("max_idle_conns_per_host", 8));
    assertEquals("v14", c.compat.generation());
    assertTrue(c.consulNodeAddress);
    assertTrue(c.warnings.stream().anyMatch(w -> w.contains("compat: v2")), c.warnings.toString());
    ProxyConfig v2 = ProxyConfig.from(new JsonObject().put("consul_forward_service_name", "veneur-global")
        .put("max_idle_conns_per_host", 8).put("compat", "v2"));
    assertTrue(!v2.consulNodeAddress && v2.warnings.isEmpty(), v2.warnings.toString());
  }
}
