package dev.veneur.proxy.support;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Asks {@code GET /healthcheck} every period, each time on a fresh connection with a short
 * timeout (connect and answer), the way a load balancer would, and records every failure with
 * when it happened. Sampling at a fixed period is the point here, not a wait.
 */
public final class HealthPoller implements AutoCloseable {
  /** One failed check: milliseconds since polling began, and what went wrong. */
  public record Failure(long atMs, String what) {
    @Override
    public String toString() {
      return "t+" + atMs + "ms: " + what;
    }
  }

  public final List<Failure> failures = new CopyOnWriteArrayList<>();
  public final AtomicInteger ok = new AtomicInteger();
  public final AtomicLong slowestMs = new AtomicLong();
  /** Consecutive failures right now (0 after a success). */
  public final AtomicInteger failingStreak = new AtomicInteger();
  private final int port;
  private final int timeoutMs;
  private final long periodNanos;
  private final long startNanos = System.nanoTime();
  private final Thread thread;
  private volatile boolean running = true;

  private HealthPoller(int port, Duration period, Duration timeout) {
    this.port = port;
    this.periodNanos = period.toNanos();
    this.timeoutMs = (int) timeout.toMillis();
    this.thread = new Thread(this::run, "health-poller");
    thread.setDaemon(true);
  }

  public static HealthPoller start(int port, Duration period, Duration timeout) {
    HealthPoller h = new HealthPoller(port, period, timeout);
    h.thread.start();
    return h;
  }

  /** One check on a fresh connection: null when it answered 200, else what went wrong. */
  public static String check(int port, int timeoutMs) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), timeoutMs);
      s.setSoTimeout(timeoutMs);
      OutputStream out = s.getOutputStream();
      out.write("GET /healthcheck HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      out.flush();
      InputStream in = s.getInputStream();
      StringBuilder line = new StringBuilder();
      int b;
      while ((b = in.read()) >= 0 && b != '\n' && line.length() < 200) line.append((char) b);
      String status = line.toString().trim();
      return status.startsWith("HTTP/1.1 200") ? null
          : (status.isEmpty() ? "connection closed without an answer" : "answered \"" + status + "\"");
    } catch (java.net.ConnectException e) {
      return "connect refused (" + e.getMessage() + ")";
    } catch (java.net.SocketTimeoutException e) {
      return "no answer within " + timeoutMs + " ms (" + e.getMessage() + ")";
    } catch (Exception e) {
      return e.toString();
    }
  }

  private void run() {
    long next = System.nanoTime();
    while (running) {
      long t0 = System.nanoTime();
      String problem = check(port, timeoutMs);
      long took = (System.nanoTime() - t0) / 1_000_000;
      slowestMs.accumulateAndGet(took, Math::max);
      if (problem == null) {
        ok.incrementAndGet();
        failingStreak.set(0);
      } else {
        failures.add(new Failure((t0 - startNanos) / 1_000_000, problem));
        failingStreak.incrementAndGet();
      }
      next += periodNanos;
      long wait = next - System.nanoTime();
      if (wait > 0) LockSupport.parkNanos(wait);
      else next = System.nanoTime();
    }
  }

  public String summary() {
    List<Failure> f = List.copyOf(failures);
    return ok.get() + " ok, " + f.size() + " failed, slowest " + slowestMs.get() + " ms"
        + (f.isEmpty() ? "" : "; first: " + f.subList(0, Math.min(3, f.size())));
  }

  @Override
  public void close() {
    running = false;
    LockSupport.unpark(thread);
    try {
      thread.join(timeoutMs * 2L + 1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
