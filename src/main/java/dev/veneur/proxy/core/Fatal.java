package dev.veneur.proxy.core;

import dev.veneur.proxy.telemetry.SentryBridge;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.nio.charset.StandardCharsets;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What must never be survived. After an {@code OutOfMemoryError} any thread may have lost work
 * half-done (an acceptor thread that died leaves a process alive with no listening socket), and a
 * listener that vanished leaves a process that looks healthy to its supervisor but takes no
 * traffic. Either way the right move is to say so and exit at once with code 3, so the supervisor
 * restarts a clean process.
 *
 * <p>The process entry point calls {@link #halting()}; tests that run proxies inside their own JVM
 * keep the default, which only logs.
 */
public final class Fatal {
  private static final Logger LOG = LoggerFactory.getLogger(Fatal.class);
  public static final int EXIT_CODE = 3;
  /** Written without allocating: after an OutOfMemoryError, building a message may fail too. */
  private static final FileOutputStream STDERR = new FileOutputStream(FileDescriptor.err);
  private static final byte[] OOM_LINE = ("\nFATAL veneur-proxy: OutOfMemoryError; exiting with code "
      + EXIT_CODE + " so that the supervisor restarts it\n").getBytes(StandardCharsets.US_ASCII);
  private static volatile boolean halting;
  /** How long the exit waits for the report (a Sentry flush is bounded by 3 s). */
  static final long REPORT_BOUND_MS = 5000;
  private static final java.util.concurrent.atomic.AtomicBoolean EXITING = new java.util.concurrent.atomic.AtomicBoolean();
  private static final java.util.concurrent.atomic.AtomicReference<Thread> EXITER =
      new java.util.concurrent.atomic.AtomicReference<>();

  private Fatal() {}

  /**
   * Whether the process is ending for a fatal event: for the few seconds its report may take,
   * {@link ProxyContext#stopping()} is true, so imports are answered 503 (the local sends them
   * again later) rather than 202 for metrics the exit would lose.
   */
  public static boolean exiting() {
    return EXITING.get();
  }

  /** From now on, a fatal event exits the process: for {@code Main}. */
  public static void halting() {
    halting = true;
  }

  public static void die(String why) {
    if (!halting) {
      LOG.error("FATAL (not exiting: the proxy is embedded) {}", why);
      return;
    }
    try {
      STDERR.write(("FATAL veneur-proxy: " + why + "; exiting with code " + EXIT_CODE
          + " so that the supervisor restarts it\n").getBytes(StandardCharsets.UTF_8));
    } catch (Throwable ignored) {
      // Exiting matters more than saying why.
    }
    reportThenHalt(why);
  }

  /** Dies if {@code t} is, or was caused by, an OutOfMemoryError. Allocates nothing on the way. */
  public static void check(Throwable t) {
    // Bounded: a cause chain can be a cycle.
    int depth = 0;
    for (Throwable c = t; c != null && depth < 32; c = c.getCause(), depth++) {
      if (c instanceof OutOfMemoryError) {
        outOfMemory(c);
        return;
      }
    }
  }

  private static void outOfMemory(Throwable oom) {
    if (!halting) {
      LOG.error("FATAL (not exiting: the proxy is embedded) OutOfMemoryError: {}", oom.getMessage());
      return;
    }
    if (EXITING.get()) {
      // Already ending (the same error logged again on its way, say): said once is enough.
      awaitExit(EXITER.get());
      return;
    }
    try {
      STDERR.write(OOM_LINE);
    } catch (Throwable ignored) {
      // Exiting matters more than saying why.
    }
    String why;
    try {
      why = "OutOfMemoryError: " + oom.getMessage();
    } catch (Throwable ignored) {
      // Not even room for the message: the line above said enough.
      Runtime.getRuntime().halt(EXIT_CODE);
      return;
    }
    reportThenHalt(why);
  }

  /**
   * Reports (the log, then a Sentry flush that may wait up to 3 s) and halts. Not on the caller's
   * thread when that is an event loop, which must not block: a thread of its own does it, and the
   * event loop returns (the process ends within the report's bound). Any other caller waits for
   * the exit, as it always did. The report gets {@link #REPORT_BOUND_MS} at most: the exit never
   * waits on a stuck logger or Sentry. If no thread can be started (no memory left for one), the
   * caller reports and halts itself: exiting matters more than the event loop.
   */
  private static void reportThenHalt(String why) {
    if (!EXITING.compareAndSet(false, true)) {
      // Another fatal event is already ending the process.
      awaitExit(EXITER.get());
      return;
    }
    Thread exiter;
    try {
      exiter = new Thread(() -> {
        try {
          Thread reporter = new Thread(() -> report(why), "veneur-proxy-fatal-report");
          reporter.setDaemon(true);
          reporter.start();
          reporter.join(REPORT_BOUND_MS);
        } catch (Throwable noThread) {
          report(why);
        } finally {
          Runtime.getRuntime().halt(EXIT_CODE);
        }
      }, "veneur-proxy-fatal");
      EXITER.set(exiter);
      exiter.start();
    } catch (Throwable noThread) {
      try {
        report(why);
      } finally {
        Runtime.getRuntime().halt(EXIT_CODE);
      }
      return;
    }
    awaitExit(exiter);
  }

  /** An event loop returns; any other thread waits for the process to end. */
  private static void awaitExit(Thread exiter) {
    if (io.vertx.core.Context.isOnEventLoopThread()) return;
    try {
      if (exiter != null) {
        exiter.join();
      } else {
        // The first caller is reporting on its own thread and halts after.
        Thread.sleep(REPORT_BOUND_MS * 2);
        Runtime.getRuntime().halt(EXIT_CODE);
      }
    } catch (Throwable interrupted) {
      // Whoever came first halts the process.
    }
  }

  /** To the log and Sentry, if there is memory left to do it; never in the way of the exit. */
  private static void report(String why) {
    try {
      LOG.error("FATAL {}; exiting with code {}", why, EXIT_CODE);
      SentryBridge.flush();
    } catch (Throwable ignored) {
      // Exiting matters more than reporting.
    }
  }
}
