package dev.veneur.proxy.support;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Well-behaved senders (think Veneur locals): each its own HTTP/1.1 client and connection,
 * posting its deflated bodies in a closed loop (the next POST once the last was answered, at
 * most one every {@code minInterval}), recording every answer.
 */
public final class SteadySenders implements AutoCloseable {

  /** One sender's record. */
  public static final class Sender {
    public final String prefix;
    public final AtomicInteger accepted = new AtomicInteger();
    public final AtomicInteger refused503 = new AtomicInteger();
    public final AtomicInteger refused503WithoutRetryAfter = new AtomicInteger();
    /** Other answers and errors: "status 408" or an exception's name -> count. */
    public final Map<String, Integer> other = new ConcurrentHashMap<>();
    public final List<String> otherExamples = new CopyOnWriteArrayList<>();
    final List<byte[]> bodies;

    Sender(String prefix, List<byte[]> bodies) {
      this.prefix = prefix;
      this.bodies = bodies;
    }

    public int otherCount() {
      return other.values().stream().mapToInt(Integer::intValue).sum();
    }

    @Override
    public String toString() {
      return prefix + ": " + accepted + " accepted (202), " + refused503 + " refused (503)"
          + (other.isEmpty() ? "" : ", other " + new TreeMap<>(other));
    }
  }

  public final List<Sender> senders = new ArrayList<>();
  private final List<Thread> threads = new ArrayList<>();
  private volatile boolean running = true;

  /**
   * Starts one sender per entry of {@code bodiesByPrefix}; each cycles through its bodies.
   */
  public static SteadySenders start(int port, Map<String, List<byte[]>> bodiesByPrefix, Duration minInterval,
      Duration requestTimeout) {
    SteadySenders s = new SteadySenders();
    URI uri = URI.create("http://127.0.0.1:" + port + "/import");
    bodiesByPrefix.forEach((prefix, bodies) -> {
      Sender sender = new Sender(prefix, bodies);
      s.senders.add(sender);
      HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5)).build();
      Thread t = new Thread(() -> {
        int i = 0;
        long next = System.nanoTime();
        while (s.running) {
          HttpRequest req = HttpRequest.newBuilder(uri).timeout(requestTimeout)
              .header("Content-Encoding", "deflate").header("Content-Type", "application/json")
              .POST(HttpRequest.BodyPublishers.ofByteArray(sender.bodies.get(i++ % sender.bodies.size()))).build();
          try {
            HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() == 202) {
              sender.accepted.incrementAndGet();
            } else if (r.statusCode() == 503) {
              sender.refused503.incrementAndGet();
              if (r.headers().firstValue("Retry-After").isEmpty()) sender.refused503WithoutRetryAfter.incrementAndGet();
            } else {
              sender.other.merge("status " + r.statusCode(), 1, Integer::sum);
              if (sender.otherExamples.size() < 3) sender.otherExamples.add(r.statusCode() + " " + r.body().strip());
            }
          } catch (InterruptedException e) {
            return;
          } catch (Exception e) {
            sender.other.merge(e.getClass().getSimpleName(), 1, Integer::sum);
            if (sender.otherExamples.size() < 3) sender.otherExamples.add(e.toString());
          }
          next += minInterval.toNanos();
          long wait = next - System.nanoTime();
          if (wait > 0) LockSupport.parkNanos(wait);
          else next = System.nanoTime();
        }
      }, "sender-" + prefix);
      t.setDaemon(true);
      s.threads.add(t);
    });
    s.threads.forEach(Thread::start);
    return s;
  }

  /** Stops sending; waits for the requests in flight to be answered (bounded by their timeout). */
  @Override
  public void close() {
    running = false;
    for (Thread t : threads) {
      try {
        t.join(60_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      if (t.isAlive()) t.interrupt();
    }
  }

  public int accepted() {
    return senders.stream().mapToInt(s -> s.accepted.get()).sum();
  }
}
