package dev.veneur.proxy.config;

import io.vertx.config.ConfigRetriever;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Hot reload with Vert.x Config: a {@link ConfigRetriever} over the config files (see
 * {@link ConfigLoader#retriever}) scans them every {@code config_scan_interval} and tells its
 * listener when what they say changed. Each change is validated whole by {@link ProxyConfig} (the
 * authority on keys and values) and handed to the applier. A change that does not parse or
 * validate, or that the applier cannot apply, is rejected whole: the running config stays, the
 * reason is logged at ERROR (so Sentry sees it) and counted in {@code config.reload_errors}, once
 * per broken content rather than once per scan.
 *
 * <ul>
 *   <li>YAML that does not parse never reaches a listener: Vert.x Config reports it on its config
 *       stream's exception handler at every scan (and logs it with a stack trace at every scan,
 *       which is switched off here since this class says the same once, with the file's name).
 *   <li>A change the applier could not apply (a new {@code http_address} whose port is taken) is
 *       tried again at each scan until it applies or the files change, as the scans did before.
 *   <li>A change of {@code config_scan_interval} applies live: once the reload succeeded, the
 *       retriever is replaced by one that scans at the new period.
 * </ul>
 *
 * <p>Everything here runs on this verticle's event loop without blocking it: the retriever lists
 * the directory and parses YAML on worker threads and reads the files asynchronously; validation
 * is CPU only.
 */
public final class ConfigWatchVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ConfigWatchVerticle.class);
  /** Vert.x Config's own logger, which logs every failed scan at ERROR with a stack trace. */
  static final String RETRIEVER_LOGGER = "io.vertx.config.impl.ConfigRetrieverImpl";

  private final Path file;
  private final Function<ProxyConfig, Future<Void>> applier;
  private final Runnable countError;
  private volatile long scanMs;
  private ConfigRetriever retriever;
  /** What the running config was built from. */
  private JsonObject lastRaw;
  /** A readable change whose apply failed: tried again at the next scans. */
  private JsonObject retry;
  /** A change that came while another was being applied; the latest wins. */
  private JsonObject pending;
  private boolean applying;
  /** Undeployed: late callbacks (a scan, a stat, an apply completing) start nothing more. */
  private boolean stopped;
  /** The last failure logged, so a failure repeated by each scan is logged and counted once. */
  private String lastFailure;
  /** Whether {@link #lastFailure} is the files not parsing (repeated at every scan until fixed). */
  private boolean lastFailureUnreadable;
  /** Scans started, and the count when a scan last read the files fine. */
  /** Written by the retriever's scans only; read by tests too. */
  private volatile long scansStarted;
  private long readableAtScan = -1;
  /** Scans that read the files fine (for tests). */
  private volatile long readableScans;

  /**
   * @param initialRaw what the running config was built from, so the first scan is not a change
   */
  public ConfigWatchVerticle(Path file, JsonObject initialRaw, long scanMs,
      Function<ProxyConfig, Future<Void>> applier, Runnable countError) {
    this.file = file;
    this.lastRaw = initialRaw;
    this.scanMs = scanMs;
    this.applier = applier;
    this.countError = countError;
  }

  /** The period the files are scanned at now, in milliseconds. */
  public long scanPeriodMillis() {
    return scanMs;
  }

  /** Scans started so far, whether they could read the files or not (for tests). */
  long scansStarted() {
    return scansStarted;
  }

  /** Scans so far that read and parsed the files, changed or not (for tests). */
  long readableScans() {
    return readableScans;
  }

  @Override
  public Future<?> start() {
    quietRetrieverLog();
    open();
    return Future.succeededFuture();
  }

  private void open() {
    ConfigRetriever r = ConfigLoader.retriever(vertx, file, scanMs);
    retriever = r;
    // A new retriever starts from an empty config, so its first scan reports the files as a
    // change; it equals lastRaw and is ignored unless the files really changed.
    r.setBeforeScanHandler(v -> {
      if (r == retriever) beforeScan();
    });
    // Called with every scan that read and parsed the files, changed or not: the only sign that
    // a broken file was put back to what the retriever last saw (which is no change).
    r.setConfigurationProcessor(json -> {
      if (r == retriever) readable();
      return json;
    });
    r.listen(change -> {
      if (r == retriever) onContext(() -> changed(change.getNewConfiguration()));
    });
    r.configStream().exceptionHandler(e -> {
      if (r == retriever) onContext(() -> unreadable(e));
    });
  }

  private void beforeScan() {
    scansStarted++;
    if (retry != null && !applying) consider(retry);
  }

  private void readable() {
    readableAtScan = scansStarted;
    readableScans++;
    if (lastFailureUnreadable) {
      // Readable again: a later breakage must be reported again, even if it says the same.
      lastFailure = null;
      lastFailureUnreadable = false;
    }
  }

  private void unreadable(Throwable e) {
    // Scans can overlap; a failure reported after the latest scan read the files fine is an
    // older scan's, and no longer what the files say.
    if (readableAtScan == scansStarted) return;
    reject(new ConfigException(ConfigLoader.describe(file, e)));
    lastFailureUnreadable = true;
  }

  private void changed(JsonObject raw) {
    // New content: whatever failed before is no longer what the files say.
    lastFailure = null;
    retry = null;
    // The directory store reads whatever is there: with the main file deleted (or caught between
    // a delete and a copy), that is the defaults plus any override file. Running on defaults would
    // send the fleet's metrics who knows where, so that is never taken for a change. Checked
    // asynchronously: a stat is a file-system call.
    vertx.fileSystem().exists(file.toString()).onComplete(ar -> onContext(() -> {
      if (ar.succeeded() && !ar.result()) {
        reject(new ConfigException("the config file " + file.toAbsolutePath()
            + " is missing (deleted, or being replaced); the running config stays until it is back"));
        return;
      }
      consider(raw);
    }));
  }

  private void consider(JsonObject raw) {
    if (stopped) return;
    if (applying) {
      pending = raw;
      return;
    }
    if (raw.equals(lastRaw)) {
      retry = null;
      return;
    }
    ProxyConfig next;
    Future<Void> applied;
    try {
      next = ProxyConfig.from(raw);
      applied = applier.apply(next);
    } catch (RuntimeException e) {
      // Invalid: logged once; the retriever reports this content again only if the files change.
      retry = null;
      reject(e);
      return;
    }
    applying = true;
    applied.onComplete(ar -> onContext(() -> {
      applying = false;
      if (stopped) return;
      if (ar.succeeded()) {
        lastRaw = raw;
        retry = null;
        lastFailure = null;
        if (next.configScanInterval.toMillis() != scanMs) rescan(next);
      } else {
        retry = raw;
        reject(ar.cause());
      }
      JsonObject later = pending;
      pending = null;
      if (later != null) consider(later);
    }));
  }

  /** Runs on this verticle's event loop, whichever thread completed what it waited for. */
  private void onContext(Runnable r) {
    if (context.isEventLoopContext() && io.vertx.core.Vertx.currentContext() == context) {
      guarded(r);
    } else {
      context.runOnContext(v -> guarded(r));
    }
  }

  /** Nothing escapes to the event loop: a bug here is logged and counted as a rejected reload. */
  private void guarded(Runnable r) {
    try {
      r.run();
    } catch (RuntimeException e) {
      reject(e);
    }
  }

  /** Replaces the retriever by one that scans at the new period. */
  private void rescan(ProxyConfig next) {
    long was = scanMs;
    scanMs = next.configScanInterval.toMillis();
    ConfigRetriever old = retriever;
    open();
    old.close();
    LOG.info("config_scan_interval applied: the config files are now read every {} (was {})",
        GoDuration.format(next.configScanInterval), GoDuration.format(java.time.Duration.ofMillis(was)));
  }

  private void reject(Throwable e) {
    String why = e.getMessage() == null ? e.toString() : e.getMessage();
    if (why.equals(lastFailure)) return;
    lastFailure = why;
    lastFailureUnreadable = false;
    countError.run();
    LOG.error("config reload rejected, keeping the running config: {}", why);
  }

  /**
   * Vert.x Config logs each failed scan at ERROR with a stack trace: every few seconds while a file
   * is broken, and each such line would reach Sentry. The failure is reported here instead, once.
   */
  private static void quietRetrieverLog() {
    if (LoggerFactory.getLogger(RETRIEVER_LOGGER) instanceof ch.qos.logback.classic.Logger l) {
      l.setLevel(ch.qos.logback.classic.Level.OFF);
    }
  }

  @Override
  public Future<?> stop() {
    stopped = true;
    ConfigRetriever r = retriever;
    retriever = null;
    if (r != null) r.close();
    return Future.succeededFuture();
  }
}
