package dev.veneur.proxy.tools;

import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The stand-in globals a bench or soak forwards to: either in the calling JVM ({@link #inProcess})
 * or in a JVM of their own ({@link #ownProcess}), whose CPU and GC are then separate from the load
 * generator's and can be read from /proc like the proxy's.
 */
abstract class Globals implements AutoCloseable {
  /** The ports the globals listen on, on 127.0.0.1. */
  abstract List<Integer> ports();

  /** Metrics the globals have counted so far. */
  abstract long delivered() throws IOException;

  /** Bodies (/import posts or SendMetrics calls) the globals have counted so far. */
  abstract long posts() throws IOException;

  /** Wall-clock time (epoch microseconds) of the latest post any global counted; 0 if none. */
  abstract long lastPostMicros() throws IOException;

  /**
   * The delivery probes ({@link Probes}) the globals received since the last call, by id, with
   * the {@link System#nanoTime()} each arrived at; added to {@code into}.
   */
  abstract void drainProbes(java.util.Map<Long, Long> into) throws IOException;

  /** The globals' own process id, or -1 when they run in this JVM. */
  abstract long pid();

  /** True for v14 gRPC globals (named host:port, taking {@code SendMetrics}), false for HTTP ones. */
  abstract boolean grpc();

  /** What the globals do with a body, for the report. */
  abstract String describe();

  @Override
  public abstract void close();

  /** HTTP globals served by {@code vertx}, in this JVM. */
  static Globals inProcess(Vertx vertx, int count, boolean light, int instances) {
    return inProcess(vertx, count, light, false, instances);
  }

  /** Globals served by {@code vertx}, in this JVM: gRPC ones with {@code grpc}. */
  static Globals inProcess(Vertx vertx, int count, boolean light, boolean grpc, int instances) {
    List<StandInGlobal> gs = new ArrayList<>();
    List<Integer> ports = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      StandInGlobal g = new StandInGlobal(false, light, grpc);
      ports.add(g.listen(vertx, "127.0.0.1", 0, instances).await());
      gs.add(g);
    }
    return new Globals() {
      @Override List<Integer> ports() {
        return ports;
      }

      @Override long delivered() {
        long n = 0;
        for (StandInGlobal g : gs) n += g.metrics();
        return n;
      }

      @Override long posts() {
        long n = 0;
        for (StandInGlobal g : gs) n += g.posts();
        return n;
      }

      @Override long lastPostMicros() {
        long t = 0;
        for (StandInGlobal g : gs) t = Math.max(t, g.lastPostMicros());
        return t;
      }

      @Override void drainProbes(java.util.Map<Long, Long> into) {
        for (StandInGlobal g : gs) Probes.Arrivals.parse(g.drainProbes(), into);
      }

      @Override long pid() {
        return -1;
      }

      @Override boolean grpc() {
        return grpc;
      }

      @Override String describe() {
        return count + " in the bench JVM, " + what(light, grpc) + ", " + instances + " event loops each";
      }

      @Override public void close() {
        for (StandInGlobal g : gs) g.close().await();
      }
    };
  }

  /** What each global does with what it receives, for the report. */
  static String what(boolean light, boolean grpc) {
    if (grpc) return light ? "gRPC SendMetrics, count only" : "gRPC SendMetrics, protobuf-decode every metric";
    return light ? "count only" : "inflate + decode every metric";
  }

  /** HTTP globals in a JVM of their own (see the next). */
  static Globals ownProcess(int count, boolean light, String javaOpts, Path dir, String name) throws Exception {
    return ownProcess(count, light, false, javaOpts, dir, name);
  }

  /**
   * Globals in a JVM of their own, started with {@code javaOpts} on this JVM's class path (the tools are test classes,
   * not in the proxy jar), logging to {@code dir}; their counts are read over HTTP ({@code GET /stats}), which gRPC
   * globals ({@code grpc}) serve on the same port as their calls.
   */
  static Globals ownProcess(int count, boolean light, boolean grpc, String javaOpts, Path dir, String name)
      throws Exception {
    Path log = dir.resolve(name + "-globals.log");
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(ProxyRig.splitOpts(javaOpts));
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), StandInGlobal.class.getName(), "--port", "0",
        "--count", String.valueOf(count), "--announce"));
    if (light) cmd.add("--light");
    if (grpc) cmd.add("--grpc");
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    List<Integer> ports = null;
    long deadline = System.nanoTime() + 30_000_000_000L;
    try {
      while (ports == null) {
        for (String line : Files.readAllLines(log)) {
          if (line.startsWith("LISTENING ")) {
            ports = new ArrayList<>();
            for (String s : line.substring(10).trim().split(",")) ports.add(Integer.parseInt(s));
          }
        }
        if (ports != null) break;
        if (!p.isAlive()) throw new IllegalStateException("globals exited: " + Files.readString(log));
        if (System.nanoTime() > deadline) throw new IllegalStateException("globals did not start; log at " + log);
        Thread.sleep(50);
      }
    } catch (Exception e) {
      p.destroyForcibly();
      throw e;
    }
    List<Integer> fixed = List.copyOf(ports);
    HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5)).build();
    List<HttpRequest> statsRequests = new ArrayList<>();
    for (int port : fixed) {
      statsRequests.add(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/stats"))
          .timeout(Duration.ofSeconds(10)).build());
    }
    Globals globals = new Globals() {
      private JsonObject[] stats() throws IOException {
        JsonObject[] out = new JsonObject[statsRequests.size()];
        for (int i = 0; i < out.length; i++) {
          try {
            out[i] = new JsonObject(http.send(statsRequests.get(i), HttpResponse.BodyHandlers.ofString()).body());
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
          }
        }
        return out;
      }

      @Override List<Integer> ports() {
        return fixed;
      }

      @Override long delivered() throws IOException {
        return Arrays.stream(stats()).mapToLong(s -> s.getLong("metrics")).sum();
      }

      @Override long posts() throws IOException {
        return Arrays.stream(stats()).mapToLong(s -> s.getLong("posts")).sum();
      }

      @Override long lastPostMicros() throws IOException {
        return Arrays.stream(stats()).mapToLong(s -> s.getLong("last_post_micros")).max().orElse(0);
      }

      @Override void drainProbes(java.util.Map<Long, Long> into) throws IOException {
        for (int port : fixed) {
          HttpRequest r = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/probes"))
              .timeout(Duration.ofSeconds(30)).build();
          try {
            Probes.Arrivals.parse(http.send(r, HttpResponse.BodyHandlers.ofString()).body(), into);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
          }
        }
      }

      @Override long pid() {
        return p.pid();
      }

      @Override boolean grpc() {
        return grpc;
      }

      @Override String describe() {
        return count + " in their own JVM (" + (javaOpts.isBlank() ? "no flags" : javaOpts.trim()) + "), "
            + what(light, grpc);
      }

      @Override public void close() {
        p.destroy();
        try {
          if (!p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) p.destroyForcibly().waitFor();
        } catch (InterruptedException e) {
          p.destroyForcibly();
          Thread.currentThread().interrupt();
        }
      }
    };
    try {
      globals.delivered(); // every global answers, and the first (slow) use of the client is over
    } catch (IOException | RuntimeException e) {
      globals.close();
      throw e;
    }
    return globals;
  }
}
