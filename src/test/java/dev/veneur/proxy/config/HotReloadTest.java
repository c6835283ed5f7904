package dev.veneur.proxy.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.veneur.proxy.ProxyApp;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.LogCapture;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** Edits to the conf directory take effect without a restart; broken edits change nothing. */
@ExtendWith(VertxExtension.class)
class HotReloadTest {
  @TempDir Path dir;
  private Vertx vertx;
  private ProxyApp app;
  private int port;
  @RegisterExtension final LogCapture log = LogCapture.of(ConfigWatchVerticle.class);
  private final HttpClient http = HttpClient.newHttpClient();
  private int seq;

  @BeforeEach
  void setUp(Vertx vertx) {
    this.vertx = vertx;
  }

  @AfterEach
  void stop() {
    if (app != null) app.stop().await();
  }

  private Path write(String name, String... lines) throws Exception {
    Path f = dir.resolve(name);
    Path tmp = dir.resolve("." + name + ".tmp");
    Files.writeString(tmp, String.join("\n", lines) + "\n");
    // Rename, as editors and config managers do, so a scan never sees half a file.
    Files.move(tmp, f, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
        java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    return f;
  }

  private String base(int httpPort) {
    return "http_address: \"127.0.0.1:" + httpPort + "\"\nconfig_scan_interval: \"100ms\"\nbatch_linger: \"10ms\"";
  }

  private void startFrom(Path file) {
    JsonObject raw = ConfigLoader.loadRaw(vertx, file).await();
    app = ProxyApp.start(vertx, ProxyConfig.from(raw)).await();
    app.watch(file, raw).await();
  }

  private int post(int toPort) throws Exception {
    byte[] body = Bodies.utf8(Bodies.generate("reload" + (seq++), 50, seq).encode());
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + toPort + "/import"))
        .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.ofString())
        .statusCode();
  }

  /** What the ring verticle routes on now; once it moved, a late HTTP-verticle snapshot is rerouted. */
  private List<String> ringMembers() {
    return vertx.eventBus().<dev.veneur.proxy.routing.RingSet>request(
        dev.veneur.proxy.bus.Addresses.RING_CURRENT, null).await().body().forJson().members();
  }

  private long reloadErrors() {
    return app.context().metrics().registry().counter("config.reload_errors").getCount();
  }

  @Test
  void forwardAddressMovesLiveAndBrokenEditsAreRejectedWhole() throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    TestGlobal c = TestGlobal.start(vertx);
    port = TestProxy.freePort();
    Path file = write("proxy.yaml", base(port), "forward_address: \"" + a.url() + "\"");
    startFrom(file);
    assertEquals(202, post(port));
    Await.until("first body at a", () -> a.metrics.size() == 50);

    write("proxy.yaml", base(port), "forward_address: \"" + b.url() + "\"");
    Await.equal("ring moved to b", List.of(b.url()), () -> app.context().config().forwardAddresses);
    Await.until("post lands on b", () -> {
      try {
        post(port);
      } catch (Exception e) {
        throw new AssertionError(e);
      }
      return b.metrics.size() >= 50;
    });
    // A body of the loop routed to a before the ring moved may still be on its way there (a POST in
    // flight when a's forwarder retired): counted at a once every body is answered by its global.
    Await.until("every body so far delivered", () -> app.context().metrics().queued() == 0);
    int atA = a.metrics.size();

    // Broken YAML: rejected whole, logged at ERROR, counted; traffic stays on b.
    write("proxy.yaml", base(port), "forward_address: [\"" + c.url() + "\"", "batch_linger: {");
    Await.until("broken YAML counted", () -> reloadErrors() == 1);
    int atB = b.metrics.size();
    assertEquals(202, post(port));
    Await.until("still delivered to b", () -> b.metrics.size() == atB + 50);
    assertEquals(atA, a.metrics.size());
    assertEquals(0, c.metrics.size());
    // The error is counted just before it is logged: wait for the line rather than race it.
    Await.until("logged at ERROR", () -> log.contains(Level.ERROR, "config reload rejected"));

    // Valid YAML, invalid value: the message names the key; the running config stays.
    write("proxy.yaml", base(port), "forward_address: \"" + c.url() + "\"", "forward_timeout: \"ten seconds\"");
    Await.until("bad value counted", () -> reloadErrors() == 2);
    Await.until("the rejection names forward_timeout",
        () -> log.contains("forward_timeout"));
    assertEquals(List.of(b.url()), app.context().config().forwardAddresses);

    // Fixed, plus a second file beside it that overrides one key: both apply.
    write("proxy.yaml", base(port), "forward_address: \"" + b.url() + "\"");
    write("proxy-50-override.yaml", "forward_address: \"" + c.url() + "\"");
    Await.equal("override file wins", List.of(c.url()), () -> app.context().config().forwardAddresses);
    // The config is swapped before the ring follows it (the forwarder for c starts first): until the
    // ring verticle routes to c, a body may still go to b, which is correct for a body taken then.
    Await.equal("the ring moved to c", List.of(c.url()), this::ringMembers);
    int atC = c.metrics.size();
    assertEquals(202, post(port));
    Await.until("delivered to c", () -> c.metrics.size() == atC + 50);
    assertEquals(2, reloadErrors());
    app.context().metrics();
  }

  @Test
  void switchingFromStaticAddressesToConsulMovesTheRing() throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    dev.veneur.proxy.support.ConsulDouble consul = dev.veneur.proxy.support.ConsulDouble.start(vertx, "globals");
    consul.setInstances(List.of(dev.veneur.proxy.support.ConsulDouble.Instance.passing("n1", "127.0.0.1", b.port())));
    port = TestProxy.freePort();
    Path file = write("proxy.yaml", base(port), "forward_address: \"" + a.url() + "\"");
    startFrom(file);
    assertEquals(202, post(port));
    Await.until("static destination first", () -> a.metrics.size() == 50);
    write("proxy.yaml", base(port), "forward_address: \"" + a.url() + "\"",
        "consul_forward_service_name: \"globals\"", "consul_address: \"" + consul.address() + "\"");
    Await.until("Consul's instance is the ring", () -> {
      var r = app.context().config();
      return r.usesConsul() && vertx.eventBus().<dev.veneur.proxy.routing.RingSet>request(
          dev.veneur.proxy.bus.Addresses.RING_CURRENT, null).await().body().forJson().members().equals(List.of(b.url()));
    });
    assertEquals(202, post(port));
    Await.until("traffic follows Consul", () -> b.metrics.size() == 50);
    assertEquals(50, a.metrics.size());
    consul.close();
  }

  @Test
  void selfMetricsFollowANewStatsAddress() throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    dev.veneur.proxy.support.StatsdSink first = dev.veneur.proxy.support.StatsdSink.start(vertx);
    dev.veneur.proxy.support.StatsdSink second = dev.veneur.proxy.support.StatsdSink.start(vertx);
    port = TestProxy.freePort();
    String common = base(port) + "\nforward_address: \"" + a.url() + "\"\nstats_interval: \"100ms\"";
    Path file = write("proxy.yaml", common, "stats_address: \"" + first.address() + "\"");
    startFrom(file);
    Await.until("reports reach the first agent", () -> first.seen("veneur_proxy.metrics.queued"));
    write("proxy.yaml", common, "stats_address: \"" + second.address() + "\"");
    Await.until("reports reach the second agent", () -> second.seen("veneur_proxy.metrics.queued"));
    assertEquals(202, post(port));
    Await.until("new traffic reported to the second agent",
        () -> second.counterSum("veneur_proxy.metrics.received_total", "") == 50);
    first.close();
    second.close();
  }

  @Test
  void aChangedHttpAddressMovesTheListener() throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    port = TestProxy.freePort();
    Path file = write("proxy.yaml", base(port), "forward_address: \"" + a.url() + "\"");
    startFrom(file);
    int next = TestProxy.freePort();
    write("proxy.yaml", base(next), "forward_address: \"" + a.url() + "\"", "debug: true");
    Await.until("listening on the new port", () -> {
      try {
        return post(next) == 202;
      } catch (Exception e) {
        return false;
      }
    });
    Await.until("the old port is closed", () -> {
      try {
        post(port);
        return false;
      } catch (Exception e) {
        return true;
      }
    });
    // The old listener closes just before the rest of the reload (log level included) is applied.
    Await.until("debug applied live", () -> ((Logger) LoggerFactory.getLogger("dev.veneur.proxy")).getLevel() == Level.DEBUG);
    write("proxy.yaml", base(next), "forward_address: \"" + a.url() + "\"");
    Await.until("debug off again", () -> ((Logger) LoggerFactory.getLogger("dev.veneur.proxy")).getLevel() == null);
  }
}
