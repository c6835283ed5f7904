package dev.veneur.proxy;

import dev.veneur.proxy.config.GoDuration;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.Fatal;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.telemetry.Profiler;
import dev.veneur.proxy.telemetry.SentryBridge;
import dev.veneur.proxy.telemetry.StatsdReporter;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The life of what reports on the proxy rather than carries its data: Sentry, the self-metrics
 * reporter and the JFR recording. Each of their starts, replacements and stops can block (Sentry
 * flushes and resolves the host name, the reporter's stop waits for its thread and sends a last
 * report, JFR writes its dump), so each runs on a worker; a failure is logged and what follows
 * goes on, since none of them may stop the proxy from carrying metrics.
 */
final class SelfTelemetry {
  private static final Logger LOG = LoggerFactory.getLogger(SelfTelemetry.class);

  private final Vertx vertx;
  private final ProxyContext ctx;
  /**
   * Replaced on reload (on the app's context) and closed by stop (on a worker): taken and set under
   * this object's lock, so a reporter made by a reload racing the stop is never left running.
   */
  private StatsdReporter reporter;
  private boolean closed;
  private volatile boolean ownsSentry;

  SelfTelemetry(Vertx vertx, ProxyContext ctx) {
    this.vertx = vertx;
    this.ctx = ctx;
  }

  /** At start-up, on a worker and before anything else, so that a failure further on reaches Sentry. */
  void openBlocking(ProxyConfig cfg) {
    if (!cfg.sentryDsn.isEmpty()) {
      SentryBridge.configure(cfg.sentryDsn);
      ownsSentry = true;
    }
    if (cfg.enableProfiling) ctx.profiler(Profiler.start(cfg.profilingDir));
  }

  /**
   * Replaces the self-metrics reporter: the old one is stopped first (its last report goes out),
   * then the new one starts, if any.
   */
  Future<Void> startReporter(ProxyConfig cfg) {
    StatsdReporter old = take();
    Future<Void> stopped = old == null ? Future.succeededFuture() : blocking("stop the self-metrics reporter", old::stop);
    return stopped.map(v -> {
      synchronized (this) {
        if (cfg.statsAddress.isEmpty() || closed) return null;
        StatsdReporter r = new StatsdReporter(vertx, ctx.metrics().registry(), cfg.statsAddress, "veneur_proxy.");
        r.start(cfg.statsInterval.toMillis(), TimeUnit.MILLISECONDS);
        reporter = r;
        LOG.info("self-metrics to {} every {}", r.target(), GoDuration.format(cfg.statsInterval));
      }
      return null;
    });
  }

  private synchronized StatsdReporter take() {
    StatsdReporter r = reporter;
    reporter = null;
    return r;
  }

  /** What a reload changes of them: the reporter, then Sentry. */
  Future<Void> reconfigure(ReloadPlan plan, ProxyConfig next) {
    Future<Void> done = Future.succeededFuture();
    if (plan.restartReporter) done = done.compose(x -> startReporter(next));
    if (plan.reconfigureSentry) done = done.compose(x -> configureSentry(next.sentryDsn));
    return done;
  }

  /** Reconfigures Sentry (a flush and a close of the old client, an init of the new). */
  private Future<Void> configureSentry(String dsn) {
    // Stopping: close() closes the client it finds; a new one now would outlive it.
    if (ctx.stopping()) return Future.succeededFuture();
    return blocking("configure Sentry", () -> {
      SentryBridge.configure(dsn);
      ownsSentry = !dsn.isEmpty();
    });
  }

  /**
   * At the very end of a stop: the last self-metrics report, the JFR dump, Sentry's flush, in that
   * order (a failure in the first two still reaches Sentry). Completes after all three, so that the
   * process exits after them.
   */
  Future<Void> close() {
    StatsdReporter last;
    synchronized (this) {
      closed = true;
      last = reporter;
      reporter = null;
    }
    return blocking("stop the self-metrics reporter", () -> {
          if (last != null) last.stop();
        })
        .compose(v -> blocking("dump the JFR recording", () -> {
          if (ctx.profiler() != null) ctx.profiler().stop();
        }))
        .compose(v -> blocking("close Sentry", () -> {
          if (ownsSentry) SentryBridge.close();
        }));
  }

  /**
   * Runs {@code work}, which may block, on a worker thread; a failure is logged at ERROR and the
   * future still succeeds: what comes after (the rest of a reload, the rest of a stop) goes on.
   */
  private Future<Void> blocking(String what, Runnable work) {
    return vertx.<Void>executeBlocking(() -> {
          work.run();
          return null;
        })
        .recover(e -> {
          Fatal.check(e);
          LOG.error("could not {}: {}", what, e.toString(), e);
          return Future.succeededFuture();
        });
  }
}
