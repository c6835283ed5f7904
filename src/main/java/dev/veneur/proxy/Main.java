package dev.veneur.proxy;

import dev.veneur.proxy.config.ConfigException;
import dev.veneur.proxy.config.ConfigLoader;
import dev.veneur.proxy.config.ProxyConfig;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@code java -jar veneur-proxy.jar [-f conf/proxy.yaml]} */
public final class Main {
  private static final Logger LOG = LoggerFactory.getLogger(Main.class);

  private Main() {}

  public static void main(String[] args) throws Exception {
    Path file = Path.of("conf/proxy.yaml");
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "-f":
        case "--config":
          if (i + 1 >= args.length) usage("-f needs a file");
          file = Path.of(args[++i]);
          break;
        case "-h":
        case "--help":
          usage(null);
          break;
        default:
          usage("unknown argument " + args[i]);
      }
    }
    Vertx vertx = Vertx.vertx();
    ProxyConfig config;
    try {
      config = ConfigLoader.load(vertx, file).await();
    } catch (ConfigException e) {
      System.err.println("veneur-proxy: " + e.getMessage());
      vertx.close();
      System.exit(2);
      return;
    }
    AtomicReference<ProxyApp> app = new AtomicReference<>();
    try {
      app.set(ProxyApp.start(vertx, config).await());
    } catch (Exception e) {
      LOG.error("veneur-proxy failed to start: {}", e.getMessage(), e);
      vertx.close();
      System.exit(1);
      return;
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      LOG.info("stopping: refusing new imports, flushing forwarders");
      try {
        app.get().stop().await(config.shutdownTimeout.toMillis() + 5000, TimeUnit.MILLISECONDS);
        vertx.close().await(5, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.error("unclean stop: {}", e.getMessage());
      }
      LOG.info("stopped");
      stopped.countDown();
    }, "veneur-proxy-shutdown"));
  }

  private static void usage(String problem) {
    if (problem != null) System.err.println("veneur-proxy: " + problem);
    System.err.println("usage: java -jar veneur-proxy.jar [-f conf/proxy.yaml]");
    System.exit(problem == null ? 0 : 2);
  }
}
