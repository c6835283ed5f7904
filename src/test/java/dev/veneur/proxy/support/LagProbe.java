package dev.veneur.proxy.support;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * How starved the test JVM itself is: a thread that asks to sleep 50 ms at a time and records the
 * worst oversleep. On a shared 2-core machine other builds can stall the test's own globals and
 * senders for seconds; a failure report that shows it can be read for what it is.
 */
public final class LagProbe implements AutoCloseable {
  public final AtomicLong maxLagMs = new AtomicLong();
  private final Thread thread;
  private volatile boolean stop;

  private LagProbe() {
    thread = new Thread(() -> {
      while (!stop) {
        long t0 = System.nanoTime();
        LockSupport.parkNanos(50_000_000L);
        long lag = (System.nanoTime() - t0) / 1_000_000 - 50;
        maxLagMs.accumulateAndGet(lag, Math::max);
      }
    }, "lag-probe");
    thread.setDaemon(true);
  }

  public static LagProbe start() {
    LagProbe p = new LagProbe();
    p.thread.start();
    return p;
  }

  /** The 1-minute load average from /proc/loadavg, or "?" off Linux. */
  public static String loadAverage() {
    try {
      return java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).split(" ")[0];
    } catch (Exception e) {
      return "?";
    }
  }

  @Override
  public void close() {
    stop = true;
  }
}
