package dev.veneur.proxy.support;

import dev.veneur.proxy.routing.HashRing;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.Deflater;

/**
 * Closed-loop senders, as local Veneurs are: each thread posts a deflated body of
 * {@value #METRICS_PER_BODY} real metrics (the first {@value #METRICS_PER_BODY} of
 * {@code fixtures/captured/large.json}), waits for the answer, and posts the next. Every metric
 * name is unique to its sender, body and index ({@link Ledger#name}), so each one can be looked
 * for at the globals afterwards; types, tags and values stay as captured.
 *
 * <p>A refused body is not sent again (a local Veneur drops it too); the next body has new names.
 *
 * <p>Each sender may be paced to a number of bodies per second: it still waits for each answer
 * before the next body (a proxy that holds requests slows it down), but never sends faster than
 * its pace, so a test can offer a load the globals can take with room to spare instead of
 * whatever saturates the machine's cores. A sender that fell behind does not burst to catch up.
 */
public final class LoadSenders {
  public static final int METRICS_PER_BODY = 1000;
  private static final String PLACEHOLDER = "@@NAME@@";
  private static Template template;

  /** The fixture cut into the text around each name, with each metric's routing fields. */
  private static final class Template {
    final String[] before = new String[METRICS_PER_BODY];
    final String[] after = new String[METRICS_PER_BODY];
    final String[] name = new String[METRICS_PER_BODY];
    final String[] typeAndTags = new String[METRICS_PER_BODY];
  }

  private static synchronized Template template() {
    if (template != null) return template;
    JsonArray all = new JsonArray(new String(Bodies.resource("fixtures/captured/large.json"), StandardCharsets.UTF_8));
    if (all.size() < METRICS_PER_BODY) throw new IllegalStateException("large.json has only " + all.size() + " metrics");
    Template t = new Template();
    for (int i = 0; i < METRICS_PER_BODY; i++) {
      JsonObject m = all.getJsonObject(i).copy();
      t.name[i] = m.getString("name");
      t.typeAndTags[i] = m.getString("type") + m.getString("tagstring", "");
      String enc = m.put("name", PLACEHOLDER).encode();
      int at = enc.indexOf(PLACEHOLDER);
      t.before[i] = (i == 0 ? "[" : ",") + enc.substring(0, at);
      t.after[i] = enc.substring(at + PLACEHOLDER.length());
    }
    template = t;
    return t;
  }

  /** The routing key of a sent metric, as the proxy hashes it: name + type + tagstring. */
  public static int keyHash(int sender, int seq, int index) {
    Template t = template();
    return HashRing.hashKey(Ledger.name(sender, seq, index, t.name[index]) + t.typeAndTags[index]);
  }

  /** The uncompressed JSON of one body. */
  public static byte[] json(int sender, int seq) {
    Template t = template();
    StringBuilder sb = new StringBuilder(320 * METRICS_PER_BODY);
    for (int i = 0; i < METRICS_PER_BODY; i++) {
      sb.append(t.before[i]).append('s').append(sender).append(".b").append(seq).append(".m").append(i)
          .append('.').append(t.name[i]).append(t.after[i]);
    }
    sb.append(']');
    return sb.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** What happened to each body of one sender, by sequence number. */
  public static final class SenderLog {
    public final int sender;
    /** HTTP status per body (index = seq); 0 for an I/O error or timeout. Synchronized: read during a run. */
    public final List<Integer> status = java.util.Collections.synchronizedList(new ArrayList<>());

    SenderLog(int sender) {
      this.sender = sender;
    }
  }

  public final List<SenderLog> logs = new ArrayList<>();
  public final AtomicLong accepted = new AtomicLong();
  public final AtomicLong refused = new AtomicLong();
  public final AtomicLong refusedWithoutRetryAfter = new AtomicLong();
  public final AtomicLong other = new AtomicLong();
  /** A few examples of answers other than 202 and 503, for failure messages. */
  public final List<String> otherExamples = new CopyOnWriteArrayList<>();
  /** The slowest 202, in milliseconds. */
  public final AtomicLong slowestAcceptMs = new AtomicLong();
  private final List<Thread> threads = new ArrayList<>();
  private final URI importUrl;
  private volatile boolean stop;
  private long startedNanos;
  private long stoppedNanos;
  private final AtomicInteger running = new AtomicInteger();

  private final long intervalNanos;

  private LoadSenders(URI importUrl, double bodiesPerSecond) {
    this.importUrl = importUrl;
    this.intervalNanos = bodiesPerSecond > 0 ? (long) (1e9 / bodiesPerSecond) : 0;
  }

  /** Starts {@code senders} unpaced threads posting to {@code http://127.0.0.1:<port>/import}. */
  public static LoadSenders start(int port, int senders) {
    return start(port, senders, 0);
  }

  /**
   * Starts {@code senders} threads posting to {@code http://127.0.0.1:<port>/import}, each at most
   * {@code bodiesPerSecond} bodies a second (0: as fast as the answers come).
   */
  public static LoadSenders start(int port, int senders, double bodiesPerSecond) {
    template();
    LoadSenders l = new LoadSenders(URI.create("http://127.0.0.1:" + port + "/import"), bodiesPerSecond);
    l.startedNanos = System.nanoTime();
    for (int s = 0; s < senders; s++) {
      SenderLog log = new SenderLog(s);
      l.logs.add(log);
      Thread t = new Thread(() -> l.run(log), "load-sender-" + s);
      t.setDaemon(true);
      l.threads.add(t);
    }
    l.running.set(senders);
    for (Thread t : l.threads) t.start();
    return l;
  }

  private void run(SenderLog log) {
    HttpClient http = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build();
    Deflater deflater = new Deflater(1);
    ByteArrayOutputStream out = new ByteArrayOutputStream(128 * 1024);
    byte[] buf = new byte[64 * 1024];
    long next = System.nanoTime();
    try {
      for (int seq = 0; !stop; seq++) {
        if (intervalNanos > 0) {
          long wait = next - System.nanoTime();
          if (wait > 0) java.util.concurrent.locks.LockSupport.parkNanos(wait);
          if (stop) break;
          next = Math.max(next + intervalNanos, System.nanoTime());
        }
        deflater.reset();
        deflater.setInput(json(log.sender, seq));
        deflater.finish();
        out.reset();
        while (!deflater.finished()) out.write(buf, 0, deflater.deflate(buf));
        HttpRequest req = HttpRequest.newBuilder(importUrl)
            .timeout(Duration.ofSeconds(30))
            .header("Content-Encoding", "deflate")
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofByteArray(out.toByteArray()))
            .build();
        long t0 = System.nanoTime();
        int code;
        try {
          HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
          code = r.statusCode();
          if (code == 202) {
            accepted.incrementAndGet();
            slowestAcceptMs.accumulateAndGet((System.nanoTime() - t0) / 1_000_000, Math::max);
          } else if (code == 503) {
            refused.incrementAndGet();
            if (r.headers().firstValue("Retry-After").isEmpty()) refusedWithoutRetryAfter.incrementAndGet();
          } else {
            other.incrementAndGet();
            if (otherExamples.size() < 5) otherExamples.add("HTTP " + code + ": " + r.body().strip());
          }
        } catch (java.io.IOException e) {
          code = 0;
          other.incrementAndGet();
          if (otherExamples.size() < 5) otherExamples.add(e.toString());
        }
        log.status.add(code);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      deflater.end();
      if (running.decrementAndGet() == 0) stoppedNanos = System.nanoTime();
    }
  }

  /** Asks every sender to stop after its current request and waits for them. */
  public void stop() {
    stop = true;
    for (Thread t : threads) {
      try {
        t.join(60_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      if (t.isAlive()) throw new AssertionError(t.getName() + " did not finish its request within 60 s");
    }
  }

  /** Asks the senders to stop without waiting. */
  public void requestStop() {
    stop = true;
  }

  public long requests() {
    return accepted.get() + refused.get() + other.get();
  }

  /** Seconds from start until the last sender finished. */
  public double seconds() {
    long end = stoppedNanos == 0 ? System.nanoTime() : stoppedNanos;
    return (end - startedNanos) / 1e9;
  }
}
