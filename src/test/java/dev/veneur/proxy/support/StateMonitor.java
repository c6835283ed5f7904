package dev.veneur.proxy.support;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Polls a proxy's {@code GET /debug/state} (and, for a process, its RSS) on its own thread for the
 * whole of a scenario, keeping what a test asserts on afterwards: the lowest {@code queued} and
 * {@code queued_bytes} ever read, the memory section against its budget, every member set and
 * every ejected destination seen, and whether the proxy kept answering at all.
 */
public final class StateMonitor implements AutoCloseable {
  private final URI stateUrl;
  private final ProxyProcess process;
  private final long periodMs;
  private final HttpClient http = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
  private final Thread thread;
  private volatile boolean stop;

  public volatile JsonObject last;
  public volatile long polls;
  public volatile long failures;
  public volatile String firstFailure;
  public volatile long minQueued = Long.MAX_VALUE;
  public volatile long minQueuedBytes = Long.MAX_VALUE;
  public volatile String firstNegative;
  public volatile long maxQueued;
  /** Polls that had a {@code memory} section, and the worst used/budget seen. */
  public volatile long memoryReports;
  public volatile long maxMemoryUsed = -1;
  public volatile long memoryBudget = -1;
  public volatile String firstOverBudget;
  public final AtomicLong peakRssKib = new AtomicLong();
  public final Set<String> everEjected = java.util.Collections.synchronizedSet(new TreeSet<>());
  public final Set<Set<String>> memberSets = java.util.Collections.synchronizedSet(new LinkedHashSet<>());
  /** When each destination was first seen ejected, by {@link System#nanoTime()}. */
  public final java.util.Map<String, Long> firstEjectedNanos = new java.util.concurrent.ConcurrentHashMap<>();

  private StateMonitor(int port, ProxyProcess process, long periodMs) {
    this.stateUrl = URI.create("http://127.0.0.1:" + port + "/debug/state");
    this.process = process;
    this.periodMs = periodMs;
    this.thread = new Thread(this::run, "state-monitor-" + port);
    this.thread.setDaemon(true);
  }

  /** @param process the proxy process whose RSS to sample, or null for an in-JVM proxy */
  public static StateMonitor start(int port, ProxyProcess process, long periodMs) {
    StateMonitor m = new StateMonitor(port, process, periodMs);
    m.thread.start();
    return m;
  }

  /** A monitor that does not poll by itself: for {@link #read()} alone. */
  public static StateMonitor unstarted(int port) {
    return new StateMonitor(port, null, 1000);
  }

  /** One read of /debug/state, or null when the proxy did not answer within 5 s. */
  public JsonObject read() {
    try {
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(stateUrl).timeout(Duration.ofSeconds(5)).build(),
          HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() != 200) throw new IllegalStateException("HTTP " + r.statusCode() + ": " + r.body());
      return new JsonObject(r.body());
    } catch (Exception e) {
      return null;
    }
  }

  private void run() {
    long next = System.nanoTime();
    while (!stop) {
      if (process != null) {
        long rss = process.rssKib();
        if (rss > 0) peakRssKib.accumulateAndGet(rss, Math::max);
      }
      JsonObject s;
      String err = null;
      try {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(stateUrl).timeout(Duration.ofSeconds(5)).build(),
            HttpResponse.BodyHandlers.ofString());
        s = r.statusCode() == 200 ? new JsonObject(r.body()) : null;
        if (s == null) err = "HTTP " + r.statusCode();
      } catch (InterruptedException e) {
        return;
      } catch (Exception e) {
        s = null;
        err = e.toString();
      }
      if (stop) return;
      polls++;
      if (s == null) {
        failures++;
        if (firstFailure == null) firstFailure = err;
      } else {
        observe(s);
      }
      next += periodMs * 1_000_000L;
      long wait = next - System.nanoTime();
      if (wait > 0) java.util.concurrent.locks.LockSupport.parkNanos(wait);
      else next = System.nanoTime();
    }
  }

  private void observe(JsonObject s) {
    last = s;
    JsonObject c = s.getJsonObject("counters", new JsonObject());
    long q = c.getLong("queued", 0L);
    long qb = c.getLong("queued_bytes", 0L);
    if (q < minQueued) minQueued = q;
    if (qb < minQueuedBytes) minQueuedBytes = qb;
    if (q > maxQueued) maxQueued = q;
    if ((q < 0 || qb < 0) && firstNegative == null) {
      firstNegative = "queued " + q + ", queued_bytes " + qb + " (counters " + c.encode() + ")";
    }
    JsonObject mem = s.getJsonObject("memory");
    if (mem != null) {
      memoryReports++;
      long used = mem.getLong("used_bytes", -1L);
      long budget = mem.getLong("budget_bytes", -1L);
      if (used > maxMemoryUsed) maxMemoryUsed = used;
      memoryBudget = budget;
      if (budget > 0 && used > budget && firstOverBudget == null) {
        firstOverBudget = "used_bytes " + used + " > budget_bytes " + budget;
      }
    }
    JsonArray ej = s.getJsonArray("ejected", new JsonArray());
    for (Object o : ej) {
      everEjected.add(String.valueOf(o));
      firstEjectedNanos.putIfAbsent(String.valueOf(o), System.nanoTime());
    }
    memberSets.add(Set.copyOf(strings(s.getJsonArray("members", new JsonArray()))));
  }

  public static List<String> strings(JsonArray a) {
    java.util.ArrayList<String> out = new java.util.ArrayList<>();
    for (Object o : a) out.add(String.valueOf(o));
    return out;
  }

  @Override
  public void close() {
    stop = true;
    if (!thread.isAlive()) return;
    thread.interrupt();
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
