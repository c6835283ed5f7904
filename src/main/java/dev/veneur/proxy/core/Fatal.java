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

  private Fatal() {}

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
    report(why);
    Runtime.getRuntime().halt(EXIT_CODE);
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
    try {
      STDERR.write(OOM_LINE);
    } catch (Throwable ignored) {
      // Exiting matters more than saying why.
    }
    try {
      report("OutOfMemoryError: " + oom.getMessage());
    } catch (Throwable ignored) {
      // Not even room for the message: the line above said enough.
    }
    Runtime.getRuntime().halt(EXIT_CODE);
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
