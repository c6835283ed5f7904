package dev.veneur.proxy.config;

import io.vertx.config.ConfigRetriever;
import io.vertx.config.ConfigRetrieverOptions;
import io.vertx.config.ConfigStoreOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads the proxy's YAML config with Vert.x Config. The file given by {@code -f} comes first;
 * then every file beside it named like it with a dash, {@code <name>-*.yaml} (or {@code .yml}),
 * in name order, each overriding the keys it sets: {@code proxy.yaml}, then
 * {@code proxy-10-consul.yaml}, then {@code proxy-20-local.yaml}. Other YAML files in the
 * directory (a local Veneur's {@code veneur.yaml}, say) are never read, so sharing
 * {@code /etc/veneur} is safe.
 */
public final class ConfigLoader {
  private ConfigLoader() {}

  public static ConfigRetriever retriever(Vertx vertx, Path file, long scanPeriodMs) {
    Path abs = file.toAbsolutePath().normalize();
    // The proxy's own store (ConfigFilesStore): the same files the directory store would read,
    // each parsed within bounds, off the event loop, and only when it changed. It hands the
    // merged config over as JSON.
    ConfigStoreOptions files = new ConfigStoreOptions()
        .setType(ConfigFilesStore.TYPE)
        .setFormat("json")
        .setConfig(new JsonObject()
            .put("path", abs.getParent().toString())
            .put("name", abs.getFileName().toString()));
    return ConfigRetriever.create(vertx, new ConfigRetrieverOptions()
        .setIncludeDefaultStores(false)
        .setScanPeriod(scanPeriodMs)
        .addStore(files));
  }

  /** Reads the files once, merged, without validating. */
  public static Future<JsonObject> loadRaw(Vertx vertx, Path file) {
    if (!Files.isRegularFile(file)) {
      return Future.failedFuture(new ConfigException("config file " + file + " does not exist"));
    }
    ConfigRetriever r = retriever(vertx, file, 0);
    return r.getConfig()
        .recover(e -> Future.failedFuture(new ConfigException(describe(file, e))))
        .onComplete(x -> r.close());
  }

  /** Reads and validates once. */
  public static Future<ProxyConfig> load(Vertx vertx, Path file) {
    return loadRaw(vertx, file).compose(json -> {
      try {
        return Future.succeededFuture(ProxyConfig.from(json));
      } catch (ConfigException e) {
        return Future.failedFuture(e);
      }
    });
  }

  /**
   * Why the files could not be read, in one line: a file that broke a bound or is not YAML names
   * itself and the reason ({@link BoundedYaml.Refused}); anything else (an I/O error) is said with
   * the directory.
   */
  static String describe(Path file, Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof BoundedYaml.Refused r) return r.getMessage();
    }
    return "config files " + file.getFileName().toString().replaceFirst("\\.ya?ml$", "")
        + "(-*).yaml in " + file.toAbsolutePath().getParent() + " could not be read: " + oneLine(e);
  }

  static String oneLine(Throwable e) {
    Throwable c = e;
    while (c.getCause() != null) c = c.getCause();
    return LogText.flatten(String.valueOf(c.getMessage()));
  }
}
