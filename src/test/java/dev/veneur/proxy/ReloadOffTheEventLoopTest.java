package dev.veneur.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.config.ConfigLoader;
import dev.veneur.proxy.config.ConfigWatchVerticle;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.LogCapture;
import dev.veneur.proxy.support.SentryStandIn;
import dev.veneur.proxy.support.StatsdSink;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.telemetry.OffLoop;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A reload that replaces Sentry and the self-metrics reporter and changes config_scan_interval,
 * then a stop with profiling on: every blocking call (Sentry's flush, close and init, the
 * reporter's stop, the JFR dump) runs on a worker. The blocking calls say so when they find
 * themselves on an event loop ({@link OffLoop}); nothing here depends on how long they take.
 */
@ExtendWith(VertxExtension.class)
class ReloadOffTheEventLoopTest {
  @TempDir Path dir;
  @RegisterExtension
  final LogCapture log = LogCapture.of(OffLoop.class, ConfigWatchVerticle.class, ProxyApp.class,
      SelfTelemetry.class, dev.veneur.proxy.telemetry.StatsdReporter.class);

  private Path write(String... lines) throws Exception {
    Path f = dir.resolve("proxy.yaml");
    Path tmp = dir.resolve(".proxy.yaml.tmp");
    Files.writeString(tmp, String.join("\n", lines) + "\n");
    Files.move(tmp, f, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    return f;
  }

  private boolean logged(String text) {
    return log.contains(text);
  }

  @Test
  void reloadAndStopDoTheirBlockingWorkOnWorkers(Vertx vertx) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    SentryStandIn sentryA = SentryStandIn.start(vertx);
    SentryStandIn sentryB = SentryStandIn.start(vertx);
    StatsdSink statsA = StatsdSink.start(vertx);
    StatsdSink statsB = StatsdSink.start(vertx);
    Path profiles = dir.resolve("profiles");
    int port = TestProxy.freePort();
    String common = String.join("\n", "http_address: \"127.0.0.1:" + port + "\"",
        "forward_address: \"" + global.url() + "\"", "stats_interval: \"100ms\"",
        "enable_profiling: true", "profiling_dir: \"" + profiles + "\"");
    Path file = write(common, "config_scan_interval: \"100ms\"", "stats_address: \"" + statsA.address() + "\"",
        "sentry_dsn: \"" + sentryA.dsn() + "\"");
    JsonObject raw = ConfigLoader.loadRaw(vertx, file).await();
    long foundBefore = OffLoop.found();
    ProxyApp app = ProxyApp.start(vertx, ProxyConfig.from(raw)).await();
    try {
      app.watch(file, raw).await();
      Await.until("self-metrics at the first agent", () -> statsA.seen("veneur_proxy.metrics.queued"));

      write(common, "config_scan_interval: \"200ms\"", "stats_address: \"" + statsB.address() + "\"",
          "sentry_dsn: \"" + sentryB.dsn() + "\"");
      Await.until("self-metrics at the second agent", () -> statsB.seen("veneur_proxy.metrics.queued"));
      Await.until("the scan period applied", () -> logged("the config files are now read every 200ms"));
      assertEquals(Duration.ofMillis(200), app.context().config().configScanInterval);
      // Errors go to the new Sentry.
      vertx.runOnContext(v -> {
        throw new IllegalStateException("after the reload, to the second Sentry");
      });
      Await.until("the error at the second Sentry", Duration.ofSeconds(30),
          () -> sentryB.envelopes.stream().anyMatch(e -> e.contains("after the reload, to the second Sentry")));
      app.context().metrics().registry().counter("test.final_marker").inc();
    } finally {
      app.stop().await(60, java.util.concurrent.TimeUnit.SECONDS);
      sentryA.close();
      sentryB.close();
      statsA.close();
    }
    try (var files = Files.list(profiles)) {
      assertTrue(files.anyMatch(f -> f.getFileName().toString().contains("shutdown")), "dumped at stop");
    }
    List<String> onLoop = log.messages().stream()
        .filter(m -> m.contains("ran on an event loop")).toList();
    assertEquals(List.of(), onLoop, "blocking calls on an event loop");
    // The warning is throttled per call across the JVM (an earlier test may have used it up): the
    // count is not.
    assertEquals(foundBefore, OffLoop.found(), "blocking calls found on an event loop");
    assertTrue(logged("config reloaded"), "the reload was applied");
    // The reporter made by the reload sent its last report at stop: its socket was not closed
    // under it (as it was when reloads ran on the config watcher's context, whose undeployment
    // closed what they had opened).
    assertTrue(!logged("cannot send self-metrics"), "the last report was sent");
    Await.until("the last report", () -> statsB.counterSum("veneur_proxy.test.final_marker", "") == 1);
    statsB.close();
  }
}
