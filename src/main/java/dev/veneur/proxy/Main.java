package dev.veneur.proxy;

import dev.veneur.proxy.config.ConfigException;
import dev.veneur.proxy.config.ConfigLoader;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.Fatal;
import dev.veneur.proxy.telemetry.SentryBridge;
import dev.veneur.proxy.telemetry.Version;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

/**
 * {@code java -jar veneur-proxy.jar [-f conf/proxy.yaml]}
 *
 * <p>Exit codes: 0 after a graceful stop (SIGTERM or SIGINT), 1 when it cannot start, 2 for an
 * invalid config.
 */
public final class Main {
  private static final Logger LOG = LoggerFactory.getLogger(Main.class);
  private static final AtomicBoolean STOPPING = new AtomicBoolean();
  /** Why this JVM runs the proxy, when {@link Launch} decided it; null when started as this class. */
  static volatile HeapChoice.Decision heapChoice;

  private Main() {}

  public static void main(String[] args) throws Exception {
    Fatal.halting();
    // An OutOfMemoryError on any thread (an acceptor, a timer) ends the process: see Fatal.
    Thread.setDefaultUncaughtExceptionHandler((t, e) -> {
      Fatal.check(e);
      LOG.error("uncaught exception on thread {}: {}", t.getName(), e.toString(), e);
    });
    // Netty and Vert.x catch what their handlers throw and only log it: watch the log for it.
    ((ch.qos.logback.classic.LoggerContext) LoggerFactory.getILoggerFactory())
        .addTurboFilter(new dev.veneur.proxy.core.OutOfMemoryWatch());
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
        case "-v":
        case "--version":
          System.out.println("veneur-proxy " + Version.get());
          System.exit(0);
          break;
        default:
          usage("unknown argument " + args[i]);
      }
    }
    JsonObject raw;
    ProxyConfig config;
    // The config is read first (with a Vertx of its own) because it sizes the real one.
    Vertx boot = Vertx.vertx(new io.vertx.core.VertxOptions().setEventLoopPoolSize(1));
    try {
      raw = ConfigLoader.loadRaw(boot, file).await();
      config = ProxyConfig.from(raw);
    } catch (ConfigException e) {
      System.err.println("veneur-proxy: " + e.getMessage());
      boot.close();
      System.exit(2);
      return;
    }
    boot.close().await();
    Vertx vertx = Vertx.vertx(new io.vertx.core.VertxOptions().setEventLoopPoolSize(config.effectiveEventLoops()));
    ProxyApp app;
    // Handle the signals ourselves rather than only in a shutdown hook, so a graceful stop can
    // exit 0 (a JVM killed by SIGTERM otherwise exits 143 even after its hooks ran). Installed
    // before the listener opens: a SIGTERM right after the port answers must still stop gracefully.
    Signals signals = new Signals();
    for (String sig : new String[] {"TERM", "INT"}) Signal.handle(new Signal(sig), s -> signals.on("SIG" + sig));
    String launcher = System.getProperty(HeapChoice.LAUNCHER);
    if (launcher != null) {
      // The launcher is the process the operator knows: if it dies (SIGKILL), stop as on SIGTERM
      // rather than live on unseen, holding the ports.
      try {
        ProcessHandle.of(Long.parseLong(launcher)).ifPresentOrElse(
            h -> h.onExit().thenRun(() -> signals.on("the launcher (pid " + launcher + ") ended")),
            () -> signals.on("the launcher (pid " + launcher + ") ended"));
      } catch (NumberFormatException e) {
        LOG.warn("-D{}={} is not a pid: not watching a launcher", HeapChoice.LAUNCHER, launcher);
      }
    }
    try {
      LOG.info("veneur-proxy {} starting with {}", Version.get(), file.toAbsolutePath());
      logHeap(launcher);
      app = ProxyApp.start(vertx, config).await();
      app.watch(file, raw).await();
    } catch (Exception e) {
      LOG.error("veneur-proxy failed to start: {}", e.getMessage(), e);
      SentryBridge.flush();
      vertx.close();
      System.exit(1);
      return;
    }
    ProxyApp started = app;
    signals.started(why -> stopThenExit(started, vertx, config, why));
  }

  /** One line on the heap this JVM runs with and who chose it. */
  private static void logHeap(String launcher) {
    long max = Runtime.getRuntime().maxMemory() >> 20;
    if (launcher != null) {
      LOG.info("heap: at most {} MiB, given by the launcher (pid {}): it was started with no heap size"
          + " (a plain java -jar), which lets the JVM grow to a quarter of the host's RAM; any heap flag"
          + " (-Xmx256m, -XX:MaxRAMPercentage=60) runs the proxy in one JVM with the operator's heap", max, launcher);
    } else if (heapChoice != null) {
      LOG.info("heap: at most {} MiB; one JVM: {}", max, heapChoice.why());
    }
  }

  /** SIGTERM and SIGINT, from before start-up until the process ends. */
  private static final class Signals {
    /** A signal that came after the listener opened but before start-up completed. */
    private String early;
    private java.util.function.Consumer<String> stop;

    synchronized void on(String why) {
      if (stop != null) {
        stop.accept(why);
      } else if (!ProxyApp.OPENING_LISTENER.get()) {
        // Still starting (waiting for Consul, say), nothing accepted: no reason to wait.
        LOG.info("{} while starting, before serving: exiting", why);
        System.exit(0);
      } else if (early == null) {
        early = why;
      }
    }

    synchronized void started(java.util.function.Consumer<String> stopper) {
      stop = stopper;
      // A signal that came while starting: stop now, gracefully.
      if (early != null) stop.accept(early);
    }
  }

  private static void stopThenExit(ProxyApp app, Vertx vertx, ProxyConfig config, String why) {
    if (!STOPPING.compareAndSet(false, true)) return;
    Thread t = new Thread(() -> {
      int code = 0;
      LOG.info("{}: refusing new imports, delivering what is queued (up to {})", why,
          app.context().config().shutdownTimeout);
      try {
        // Queued metrics get shutdown_timeout; POSTs in flight then get up to forward_timeout.
        var cfg = app.context().config();
        long budget = cfg.shutdownTimeout.toMillis() + cfg.forwardTimeout.toMillis() + 5000;
        app.stop().await(budget, TimeUnit.MILLISECONDS);
        vertx.close().await(5, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.error("unclean stop: {}", e.toString());
        code = 1;
      }
      var m = app.context().metrics();
      LOG.info("stopped: received {}, forwarded {}, dropped {} {}, queued {}", m.received(), m.forwarded(),
          m.droppedTotal(), m.droppedByCause(), m.queued());
      SentryBridge.flush();
      System.exit(code);
    }, "veneur-proxy-stop");
    t.start();
  }

  private static void usage(String problem) {
    if (problem != null) System.err.println("veneur-proxy: " + problem);
    System.err.println("usage: java -jar veneur-proxy.jar [-f conf/proxy.yaml]");
    System.exit(problem == null ? 0 : 2);
  }
}
