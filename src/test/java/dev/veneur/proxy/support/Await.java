package dev.veneur.proxy.support;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/** Waits on conditions, never on fixed sleeps: polls until true or fails with a description. */
public final class Await {
  private Await() {}

  public static void until(String what, BooleanSupplier condition) {
    until(what, Duration.ofSeconds(20), condition);
  }

  public static void until(String what, Duration timeout, BooleanSupplier condition) {
    until(what, timeout, Duration.ofMillis(5), condition);
  }

  /** Polls every {@code every}: for conditions that cost a request to the proxy. */
  public static void until(String what, Duration timeout, Duration every, BooleanSupplier condition) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out after " + timeout + " waiting for: " + what);
      }
      try {
        Thread.sleep(every.toMillis());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted waiting for: " + what);
      }
    }
  }

  /** Waits until the supplier yields the expected value; the message shows the last value seen. */
  public static <T> void equal(String what, T expected, Supplier<T> actual) {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    T last = actual.get();
    while (!expected.equals(last)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(what + ": expected " + expected + " but was " + last);
      }
      try {
        Thread.sleep(5);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted");
      }
      last = actual.get();
    }
  }
}
