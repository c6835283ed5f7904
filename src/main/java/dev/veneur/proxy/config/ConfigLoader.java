package dev.veneur.proxy.config;

import io.vertx.config.ConfigRetriever;
import io.vertx.config.ConfigRetrieverOptions;
import io.vertx.config.ConfigStoreOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;

/** Builds the Vert.x Config retriever that reads the proxy's YAML file. */
public final class ConfigLoader {
  private ConfigLoader() {}

  public static ConfigRetriever retriever(Vertx vertx, Path file, long scanPeriodMs) {
    ConfigStoreOptions yaml = new ConfigStoreOptions()
        .setType("file")
        .setFormat("yaml")
        .setConfig(new JsonObject().put("path", file.toAbsolutePath().toString()));
    return ConfigRetriever.create(vertx, new ConfigRetrieverOptions()
        .setIncludeDefaultStores(false)
        .setScanPeriod(scanPeriodMs)
        .addStore(yaml));
  }

  /** Reads and validates the file once. */
  public static Future<ProxyConfig> load(Vertx vertx, Path file) {
    if (!Files.isRegularFile(file)) {
      return Future.failedFuture(new ConfigException("config file " + file + " does not exist"));
    }
    ConfigRetriever r = retriever(vertx, file, 0);
    return r.getConfig()
        .recover(e -> Future.failedFuture(new ConfigException(
            "config file " + file + " is not valid YAML: " + oneLine(e))))
        .compose(json -> {
          r.close();
          try {
            return Future.succeededFuture(ProxyConfig.from(json));
          } catch (ConfigException e) {
            return Future.failedFuture(e);
          }
        });
  }

  static String oneLine(Throwable e) {
    Throwable c = e;
    while (c.getCause() != null) c = c.getCause();
    String m = String.valueOf(c.getMessage());
    return m.replace('\n', ' ');
  }
}
