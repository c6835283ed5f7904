package dev.veneur.proxy.telemetry;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import io.sentry.Sentry;
import io.sentry.logback.SentryAppender;
import java.net.InetAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sends error-level log events and uncaught exceptions to Sentry when {@code sentry_dsn} is set.
 * Everything the proxy considers an error is logged at ERROR (including event-loop exceptions,
 * routed through {@code Vertx.exceptionHandler}, and start-up failures), so one logback appender
 * is the whole integration; Sentry's own handler catches exceptions that escape a thread. With no
 * DSN, Sentry is never initialised and nothing is sent.
 *
 * <p>Sentry is process-global, so this is a static holder; {@link #configure} can be called again
 * on reload with a new DSN (or none).
 *
 * <p>Every method here may block (a flush waits up to 2-3 s for events to leave; {@code init} looks
 * up the host name, which can wait on DNS): call them on a worker, never on an event loop.
 */
public final class SentryBridge {
  private static final Logger LOG = LoggerFactory.getLogger(SentryBridge.class);
  private static final String APPENDER = "SENTRY";
  private static String currentDsn = "";

  private SentryBridge() {}

  public static synchronized void configure(String dsn) {
    OffLoop.check("SentryBridge.configure");
    String next = dsn == null ? "" : dsn.trim();
    if (next.equals(currentDsn)) return;
    if (!currentDsn.isEmpty()) {
      Sentry.flush(2000);
      Sentry.close();
    }
    currentDsn = next;
    LoggerContext logback = (LoggerContext) LoggerFactory.getILoggerFactory();
    ch.qos.logback.classic.Logger root = logback.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    if (next.isEmpty()) {
      root.detachAppender(APPENDER);
      LOG.info("Sentry reporting off");
      return;
    }
    Sentry.init(o -> {
      o.setDsn(next);
      o.setRelease("veneur-proxy@" + Version.get());
      o.setServerName(hostname());
      o.setTag("service", "veneur-proxy");
      o.setEnableUncaughtExceptionHandler(true);
      o.setSendDefaultPii(false);
    });
    if (root.getAppender(APPENDER) == null) {
      SentryAppender appender = new SentryAppender();
      appender.setName(APPENDER);
      appender.setContext(logback);
      appender.setMinimumEventLevel(Level.ERROR);
      appender.setMinimumBreadcrumbLevel(Level.INFO);
      appender.start();
      root.addAppender(appender);
    }
    LOG.info("Sentry reporting on (release veneur-proxy@{})", Version.get());
  }

  /** Waits briefly for queued events to leave; called before exit. */
  public static synchronized void flush() {
    OffLoop.check("SentryBridge.flush");
    if (!currentDsn.isEmpty()) Sentry.flush(3000);
  }

  public static synchronized void close() {
    configure("");
  }

  static String hostname() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (Exception e) {
      String env = System.getenv("HOSTNAME");
      return env == null ? "unknown" : env;
    }
  }
}
