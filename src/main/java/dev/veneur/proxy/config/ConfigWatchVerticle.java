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
 * Hot reload: every {@code config_scan_interval} reads the config files again (see
 * {@link ConfigLoader#retriever}); when what they say changed, validates it whole and hands it to
 * the applier. A change that does not parse or validate, or that the applier cannot apply, is
 * rejected whole: the running config stays, the reason is logged at ERROR once per distinct
 * broken content (so Sentry sees it without a flood) and counted in {@code config.reload_errors}.
 */
public final class ConfigWatchVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ConfigWatchVerticle.class);

  private final Path file;
  private final Function<ProxyConfig, Future<Void>> applier;
  private final Runnable countError;
  private final long scanMs;
  private ConfigRetriever retriever;
  private JsonObject lastRaw;
  private String lastFailure;
  private boolean scanning;
  private long timer = -1;

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

  @Override
  public Future<?> start() {
    retriever = ConfigLoader.retriever(vertx, file, 0);
    timer = vertx.setPeriodic(scanMs, t -> scan());
    return Future.succeededFuture();
  }

  private void scan() {
    if (scanning) return;
    scanning = true;
    retriever.getConfig()
        .recover(e -> Future.failedFuture(new ConfigException(
            "config files in " + file.toAbsolutePath().getParent() + " could not be read as YAML: "
                + ConfigLoader.oneLine(e))))
        .compose(raw -> {
          if (raw.equals(lastRaw)) {
            lastFailure = null;
            return Future.succeededFuture();
          }
          ProxyConfig next = ProxyConfig.from(raw);
          return applier.apply(next).onSuccess(v -> {
            lastRaw = raw;
            lastFailure = null;
          });
        })
        .onComplete(ar -> {
          scanning = false;
          if (ar.failed()) reject(ar.cause());
        });
  }

  private void reject(Throwable e) {
    String why = e.getMessage();
    if (why != null && why.equals(lastFailure)) return;
    lastFailure = why;
    countError.run();
    LOG.error("config reload rejected, keeping the running config: {}", why);
  }

  @Override
  public Future<?> stop() {
    if (timer >= 0) vertx.cancelTimer(timer);
    if (retriever != null) retriever.close();
    return Future.succeededFuture();
  }
}
