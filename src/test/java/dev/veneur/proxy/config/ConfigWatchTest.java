package dev.veneur.proxy.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.LogCapture;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The watcher alone, with Vert.x Config's retriever underneath and a stand-in applier: changes
 * reach the applier, failures are logged and counted once per broken content, a failed apply is
 * tried again, and a new config_scan_interval takes effect live.
 */
@ExtendWith(VertxExtension.class)
class ConfigWatchTest {
  @TempDir Path dir;
  private Vertx vertx;
  @RegisterExtension final LogCapture log = LogCapture.of(ConfigWatchVerticle.class);
  private final List<ProxyConfig> applied = new CopyOnWriteArrayList<>();
  private final AtomicInteger errors = new AtomicInteger();
  private String lastDeployment;

  @BeforeEach
  void setUp(Vertx vertx) {
    this.vertx = vertx;
  }

  private Path write(String... lines) throws Exception {
    Path f = dir.resolve("proxy.yaml");
    Path tmp = dir.resolve(".proxy.yaml.tmp");
    Files.writeString(tmp, "forward_address: \"http://127.0.0.1:1\"\n" + String.join("\n", lines) + "\n");
    Files.move(tmp, f, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    return f;
  }

  private ConfigWatchVerticle watch(Path file, Function<ProxyConfig, Future<Void>> applier) {
    var raw = ConfigLoader.loadRaw(vertx, file).await();
    ConfigWatchVerticle w = new ConfigWatchVerticle(file, raw,
        ProxyConfig.from(raw).configScanInterval.toMillis(), applier, errors::incrementAndGet);
    lastDeployment = vertx.deployVerticle(w).await();
    return w;
  }

  private ConfigWatchVerticle watch(Path file) {
    return watch(file, c -> {
      applied.add(c);
      return Future.succeededFuture();
    });
  }

  private List<String> errorLines() {
    return log.messages(Level.ERROR);
  }

  /** Waits until the watcher has read the files fine twice more: at least one scan saw them as they are now. */
  private static void twoMoreReadableScans(ConfigWatchVerticle w) {
    long n = w.readableScans();
    Await.until("two more scans", Duration.ofSeconds(20), () -> w.readableScans() >= n + 2);
  }

  @Test
  void aNewScanIntervalTakesEffectLive() throws Exception {
    Path file = write("config_scan_interval: \"100ms\"", "batch_linger: \"10ms\"");
    ConfigWatchVerticle w = watch(file);
    assertEquals(100, w.scanPeriodMillis());
    write("config_scan_interval: \"250ms\"", "batch_linger: \"10ms\"");
    Await.until("applied", () -> applied.size() == 1);
    Await.until("scanning at the new period", () -> w.scanPeriodMillis() == 250);
    Await.until("the operator is told",
        () -> log.contains("config_scan_interval applied: the config files are now read every 250ms (was 100ms)"));
    // The new retriever watches: a later change arrives, once.
    write("config_scan_interval: \"250ms\"", "batch_linger: \"20ms\"");
    Await.until("the next change arrives", () -> applied.size() == 2);
    assertEquals(Duration.ofMillis(20), applied.get(1).batchLinger);
    twoMoreReadableScans(w);
    assertEquals(2, applied.size(), "the new retriever's first scan is not taken for a change");
    assertEquals(0, errors.get());
  }

  @Test
  void brokenYamlIsReportedOnceWithTheFileAndAgainAfterAFix() throws Exception {
    Path file = write("config_scan_interval: \"100ms\"", "batch_linger: \"10ms\"");
    ConfigWatchVerticle w = watch(file);
    write("config_scan_interval: \"100ms\"", "batch_linger: {");
    Await.until("counted", () -> errors.get() == 1);
    long n = w.readableScans();
    // Scans go on failing while the file stays broken: still one line, one count.
    long scans = w.scansStarted();
    Await.until("three more scans of the broken file", Duration.ofSeconds(20), () -> w.scansStarted() >= scans + 3);
    assertEquals(n, w.readableScans(), "no scan could read the broken file");
    assertEquals(1, errors.get());
    assertEquals(1, errorLines().size(), errorLines().toString());
    String line = errorLines().get(0);
    assertTrue(line.contains("config reload rejected, keeping the running config")
        && line.contains("proxy.yaml is not valid YAML") && line.contains(dir.getFileName().toString()), line);
    // Put back as it was (no change for the retriever), then broken the same way: said again.
    write("config_scan_interval: \"100ms\"", "batch_linger: \"10ms\"");
    twoMoreReadableScans(w);
    write("config_scan_interval: \"100ms\"", "batch_linger: {");
    Await.until("counted again", () -> errors.get() == 2);
    assertEquals(List.of(), applied, "nothing was applied: the config never changed");
  }

  /**
   * With the main file gone, the directory store still reads the override files beside it: their
   * keys on top of the defaults would be taken for the new config (a default forward address, say).
   */
  @Test
  void aDeletedConfigFileIsNotTakenForDefaults() throws Exception {
    Path file = write("config_scan_interval: \"100ms\"", "batch_linger: \"10ms\"");
    Files.writeString(dir.resolve("proxy-10-local.yaml"), "batch_max_metrics: 500\n");
    ConfigWatchVerticle w = watch(file);
    Files.delete(file);
    Await.until("counted", () -> errors.get() == 1);
    twoMoreReadableScans(w);
    assertEquals(List.of(), applied, "the override alone on the defaults was not applied");
    assertEquals(1, errors.get(), "said once while the file stays away");
    assertTrue(errorLines().get(0).contains("is missing") && errorLines().get(0).contains("proxy.yaml"),
        errorLines().toString());
    write("config_scan_interval: \"100ms\"", "batch_linger: \"50ms\"");
    Await.until("the file back, changed, applies", () -> applied.size() == 1);
    assertEquals(Duration.ofMillis(50), applied.get(0).batchLinger);
    assertEquals(500, applied.get(0).batchMaxMetrics);
  }

  /** A reload still being applied when the watcher is undeployed starts nothing once it completes. */
  @Test
  void nothingHappensAfterUndeploy() throws Exception {
    Path file = write("config_scan_interval: \"100ms\"", "batch_linger: \"10ms\"");
    io.vertx.core.Promise<Void> slowApply = io.vertx.core.Promise.promise();
    AtomicInteger applies = new AtomicInteger();
    ConfigWatchVerticle w = watch(file, c -> {
      applies.incrementAndGet();
      return slowApply.future();
    });
    write("config_scan_interval: \"300ms\"", "batch_linger: \"20ms\"");
    Await.until("the reload is being applied", () -> applies.get() == 1);
    vertx.undeploy(lastDeployment).await();
    vertx.runOnContext(v -> slowApply.complete());
    write("config_scan_interval: \"300ms\"", "batch_linger: \"30ms\"");
    // The undeployed watcher's old retriever is closed; had it gone on, a new one would scan every
    // 300ms. Wait for a scan that a live watcher at 100ms would have made several times.
    ConfigWatchVerticle probe = watch(file);
    twoMoreReadableScans(probe);
    twoMoreReadableScans(probe);
    assertEquals(1, applies.get(), "no reload after undeploy");
    assertEquals(100, w.scanPeriodMillis(), "no new retriever after undeploy");
    assertFalse(log.contains("config_scan_interval applied"), "no rescan after undeploy");
    assertEquals(0, errors.get(), "no error (the old code threw an NPE in rescan)");
  }

  @Test
  void anInvalidValueIsRejectedOnceNamingTheKey() throws Exception {
    Path file = write("config_scan_interval: \"100ms\"", "batch_linger: \"10ms\"");
    ConfigWatchVerticle w = watch(file);
    write("config_scan_interval: \"100ms\"", "batch_linger: \"soon\"");
    Await.until("counted", () -> errors.get() == 1);
    twoMoreReadableScans(w);
    assertEquals(1, errors.get());
    assertTrue(errorLines().get(0).contains("batch_linger"), errorLines().toString());
    write("config_scan_interval: \"100ms\"", "batch_linger: \"30ms\"");
    Await.until("the fix applies", () -> applied.size() == 1);
    assertEquals(Duration.ofMillis(30), applied.get(0).batchLinger);
  }

  @Test
  void aChangeThatCouldNotBeAppliedIsTriedAgainAtTheNextScans() throws Exception {
    Path file = write("config_scan_interval: \"100ms\"", "batch_linger: \"10ms\"");
    AtomicInteger attempts = new AtomicInteger();
    watch(file, c -> {
      if (attempts.incrementAndGet() < 4) {
        return Future.failedFuture(new ConfigException("http_address", "127.0.0.1:1", "an address this process can listen on"));
      }
      applied.add(c);
      return Future.succeededFuture();
    });
    write("config_scan_interval: \"100ms\"", "batch_linger: \"40ms\"");
    Await.until("applied on a later scan, the file unchanged", () -> applied.size() == 1);
    assertEquals(4, attempts.get());
    assertEquals(1, errors.get(), "the same failure, logged and counted once");
    assertEquals(Duration.ofMillis(40), applied.get(0).batchLinger);
  }
}
