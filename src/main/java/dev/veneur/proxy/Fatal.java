package dev.veneur.proxy;

import dev.veneur.proxy.telemetry.SentryBridge;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What must never be survived. After an {@code OutOfMemoryError} any thread may have lost work
 * half-done (an acceptor thread that died leaves a process alive with no listening socket), and a
 * listener that vanished leaves a process that looks healthy to its supervisor but takes no
 * traffic. Either way the right move is to say so and exit at once with code 3, so the supervisor
 * restarts a clean process.
 *
 * <p>The process entry point installs {@link #halting()}; tests that run proxies inside their own
 * JVM keep the default, which only logs.
 */
public final class Fatal {
  private static final Logger LOG = LoggerFactory.getLogger(Fatal.class);
  public static final int EXIT_CODE = 3;
  private static volatile Consumer<String> handler = why -> LOG.error("FATAL (not exiting: embedded) {}", why);

  private Fatal() {}

  /** Exits the process when called: for {@code Main}. */
  public static void halting() {
    handler = why -> {
      // Print first and plainly: after an OutOfMemoryError even logging may fail.
      System.err.println("FATAL veneur-proxy: " + why + "; exiting with code " + EXIT_CODE
          + " so that the supervisor restarts it");
      System.err.flush();
      try {
        LOG.error("FATAL {}; exiting with code {}", why, EXIT_CODE);
        SentryBridge.flush();
      } catch (Throwable ignored) {
        // Exiting matters more than reporting.
      }
      Runtime.getRuntime().halt(EXIT_CODE);
    };
  }

  public static void die(String why) {
    handler.accept(why);
  }

  /** Dies if {@code t} is, or was caused by, an OutOfMemoryError. */
  public static void check(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (c instanceof OutOfMemoryError) {
        die("OutOfMemoryError: " + c.getMessage());
        return;
      }
    }
  }
}
