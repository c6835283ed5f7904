package dev.veneur.proxy.tools;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * End-to-end benchmark: starts stand-in globals in this JVM, the proxy as its own process, and
 * closed-loop senders posting realistic deflated bodies for a bounded time; prints delivered
 * metrics per second, proxy CPU seconds per million metrics, /import latency, the proxy's peak
 * RSS, and sent versus delivered. Linux only (reads /proc).
 */
public final class Bench {
  private static final long TICKS_PER_SECOND = 100; // USER_HZ on Linux

  public static void main(String[] args) throws Exception {
    int senders = 8;
    int seconds = 30;
    int warmup = 10;
    int perBody = 1000;
    int globals = 3;
    int distinctBodies = 32;
    String jar = "target/veneur-proxy.jar";
    String javaOpts = "-Xmx256m";
    String extraYaml = "";
    String sample = "src/test/resources/fixtures/captured/large.json";
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--senders": senders = Integer.parseInt(args[++i]); break;
        case "--seconds": seconds = Integer.parseInt(args[++i]); break;
        case "--warmup": warmup = Integer.parseInt(args[++i]); break;
        case "--metrics-per-body": perBody = Integer.parseInt(args[++i]); break;
        case "--globals": globals = Integer.parseInt(args[++i]); break;
        case "--jar": jar = args[++i]; break;
        case "--java-opts": javaOpts = args[++i]; break;
        case "--yaml": extraYaml = args[++i]; break;
        case "--sample": sample = args[++i]; break;
        default:
          System.err.println("usage: Bench [--senders 8] [--seconds 30] [--warmup 10] [--metrics-per-body 1000]"
              + " [--globals 3] [--jar target/veneur-proxy.jar] [--java-opts -Xmx256m] [--yaml 'key: value']"
              + " [--sample captured.json | --sample random]");
          System.exit(2);
      }
    }
    Vertx vertx = Vertx.vertx();
    ProxyRig rig = ProxyRig.launch(vertx, globals, jar, javaOpts, extraYaml, "bench");
    try {
      System.out.printf(Locale.ROOT, "proxy pid %d (%s), %d globals, %d senders, %d metrics/body, %ds warm-up + %ds measured%n",
          rig.proxy.pid(), javaOpts, globals, senders, perBody, warmup, seconds);

      io.vertx.core.json.JsonArray captured = "random".equals(sample) ? null
          : new io.vertx.core.json.JsonArray(Files.readString(Path.of(sample)));
      List<Buffer> bodies = new ArrayList<>();
      long rawBytes = 0;
      for (int i = 0; i < distinctBodies; i++) {
        byte[] raw = captured == null ? SyntheticMetrics.body(perBody, i)
            : SyntheticMetrics.fromSample(captured, perBody, i);
        rawBytes += raw.length;
        bodies.add(Buffer.buffer(SyntheticMetrics.deflate(raw)));
      }
      System.out.printf(Locale.ROOT, "bodies: %s values, %d bytes of JSON per body on average, %d deflated%n",
          captured == null ? "random" : "captured (" + sample + ")", rawBytes / distinctBodies, bodies.get(0).length());

      HttpClient client = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true),
          new PoolOptions().setHttp1MaxSize(senders));
      Load load = new Load(client, rig.port, bodies, perBody);
      long warmEnd = System.nanoTime() + warmup * 1_000_000_000L;
      // Senders run until the very end from the start: a deadline moved at the end of warm-up
      // would race with senders finishing a request just then, and stop them for good.
      load.run(senders, warmEnd + seconds * 1_000_000_000L);
      waitFor(warmEnd);
      load.resetLatencies();
      long cpu0 = rig.cpuTicks();
      long delivered0 = rig.delivered();
      long t0 = System.nanoTime();
      long end = t0 + seconds * 1_000_000_000L;
      waitFor(end);
      long delivered1 = rig.delivered();
      long cpu1 = rig.cpuTicks();
      double elapsed = (System.nanoTime() - t0) / 1e9;
      load.stop().await();
      long settledAt = settle(rig);
      long[] lat = load.latencies();
      long hwm = rig.memoryKib("VmHWM");

      long measured = delivered1 - delivered0;
      double cpuSeconds = (cpu1 - cpu0) / (double) TICKS_PER_SECOND;
      System.out.printf(Locale.ROOT, "delivered:        %.0f metrics/s at the globals%n", measured / elapsed);
      System.out.printf(Locale.ROOT, "proxy CPU:        %.2f CPU-seconds per million metrics delivered (%.2f cores busy)%n",
          cpuSeconds / (measured / 1e6), cpuSeconds / elapsed);
      System.out.printf(Locale.ROOT, "/import latency:  p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d requests measured)%n",
          pct(lat, 0.50), pct(lat, 0.99), lat.length == 0 ? 0 : lat[lat.length - 1] / 1e6, lat.length);
      System.out.printf(Locale.ROOT, "proxy peak RSS:   %.0f MiB%n", hwm / 1024.0);
      System.out.printf(Locale.ROOT, "sent vs delivered: %d metrics accepted (202), %d delivered, %d refused bodies (503), %d other errors%n",
          load.acceptedMetrics.get(), settledAt, load.refused.get(), load.errors.get());
    } finally {
      rig.close();
      vertx.close();
    }
  }

  /** Closed-loop senders: each posts, waits for the answer, posts again, until the deadline. */
  private static final class Load {
    final HttpClient client;
    final int port;
    final List<Buffer> bodies;
    final int perBody;
    final AtomicLong acceptedMetrics = new AtomicLong();
    final AtomicLong refused = new AtomicLong();
    final AtomicLong errors = new AtomicLong();
    volatile long deadline;
    long[] lat = new long[1 << 16];
    int latN;
    final List<Future<Void>> running = new ArrayList<>();
    int next;

    Load(HttpClient client, int port, List<Buffer> bodies, int perBody) {
      this.client = client;
      this.port = port;
      this.bodies = bodies;
      this.perBody = perBody;
    }

    void run(int senders, long until) {
      deadline = until;
      for (int i = 0; i < senders; i++) {
        Promise<Void> done = Promise.promise();
        running.add(done.future());
        loop(done);
      }
    }

    synchronized void resetLatencies() {
      latN = 0;
    }

    synchronized void record(long nanos) {
      if (latN == lat.length) lat = Arrays.copyOf(lat, lat.length * 2);
      lat[latN++] = nanos;
    }

    synchronized long[] latencies() {
      long[] out = Arrays.copyOf(lat, latN);
      Arrays.sort(out);
      return out;
    }

    Future<Void> stop() {
      deadline = 0;
      return Future.join(running).mapEmpty();
    }

    private void loop(Promise<Void> done) {
      if (System.nanoTime() >= deadline) {
        done.complete();
        return;
      }
      Buffer body = bodies.get(next++ % bodies.size());
      long start = System.nanoTime();
      client.request(new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(port)
              .setURI("/import").putHeader("Content-Encoding", "deflate")
              .putHeader("Content-Type", "application/json"))
          .compose(req -> req.send(body))
          .compose(resp -> resp.body().map(b -> resp.statusCode()))
          .onComplete(ar -> {
            record(System.nanoTime() - start);
            if (ar.succeeded() && ar.result() == 202) acceptedMetrics.addAndGet(perBody);
            else if (ar.succeeded() && ar.result() == 503) refused.incrementAndGet();
            else errors.incrementAndGet();
            loop(done);
          });
    }
  }

  private static double pct(long[] sorted, double p) {
    if (sorted.length == 0) return 0;
    return sorted[(int) Math.min(sorted.length - 1, Math.floor(p * sorted.length))] / 1e6;
  }

  /** Waits until the globals' count stops moving, i.e. the proxy has drained its queues. */
  private static long settle(ProxyRig rig) throws InterruptedException {
    long last = -1;
    long now = rig.delivered();
    int stable = 0;
    while (stable < 10) {
      Thread.sleep(100);
      last = now;
      now = rig.delivered();
      stable = now == last ? stable + 1 : 0;
    }
    return now;
  }

  private static void waitFor(long nanoDeadline) throws InterruptedException {
    long left;
    while ((left = nanoDeadline - System.nanoTime()) > 0) Thread.sleep(Math.min(500, left / 1_000_000 + 1));
  }
}
