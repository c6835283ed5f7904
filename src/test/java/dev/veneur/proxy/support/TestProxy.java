package dev.veneur.proxy.support;

import dev.veneur.proxy.ProxyApp;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.RouteQuery;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/** A proxy running in the test's Vertx on a real port, and a plain JDK client to talk to it. */
public final class TestProxy {
  public final ProxyApp app;
  public final int port;
  private Vertx vertx;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private TestProxy(ProxyApp app, int port) {
    this.app = app;
    this.port = port;
  }

  /** Starts a proxy; {@code overrides} are YAML keys as a JSON object. */
  public static TestProxy start(Vertx vertx, JsonObject overrides) {
    return start(vertx, overrides, Map.of());
  }

  /** Starts a proxy with {@code env} standing in for the process environment. */
  public static TestProxy start(Vertx vertx, JsonObject overrides, Map<String, String> env) {
    int port = freePort();
    JsonObject cfg = new JsonObject()
        .put("http_address", "127.0.0.1:" + port)
        .put("batch_linger", "10ms")
        .put("forward_timeout", "3s")
        .mergeIn(overrides);
    TestProxy p = new TestProxy(ProxyApp.start(vertx, ProxyConfig.from(cfg), env).await(), port);
    p.vertx = vertx;
    return p;
  }

  /** The ring the ring verticle holds now, asked over the event bus. */
  public HashRing ring() {
    return vertx.eventBus().<dev.veneur.proxy.routing.RingSet>request(Addresses.RING_CURRENT, null).await().body()
        .forJson();
  }

  public List<String> ringMembers() {
    return ring().members();
  }

  /** Where the ring verticle routes a key now. */
  public String route(String name, String type, String tagstring) {
    return vertx.eventBus().<String>request(Addresses.RING_ROUTE, new RouteQuery(name, type, tagstring))
        .await().body();
  }

  public ProxyMetrics metrics() {
    return app.context().metrics();
  }

  public HttpResponse<String> post(byte[] body, String contentEncoding) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/import"))
        .timeout(Duration.ofSeconds(20))
        .POST(HttpRequest.BodyPublishers.ofByteArray(body));
    if (contentEncoding != null) b.header("Content-Encoding", contentEncoding);
    try {
      return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new AssertionError("POST /import failed: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  public HttpResponse<String> postPath(String path) {
    try {
      return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
          .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new AssertionError("POST " + path + " failed: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** POST to the admin listener (admin_address, a free port in tests). */
  public HttpResponse<String> postAdmin(String path) {
    String admin = app.context().adminAddress();
    if (admin == null) throw new AssertionError("the admin listener is not open");
    try {
      return http.send(HttpRequest.newBuilder(URI.create("http://" + admin + path))
          .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new AssertionError("POST " + path + " to the admin listener failed: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  public HttpResponse<String> get(String path) {
    try {
      return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(),
          HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new AssertionError("GET " + path + " failed: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** Waits until every accepted metric is settled, then checks received = forwarded + dropped. */
  public void awaitSettled() {
    ProxyMetrics m = metrics();
    Await.until("queue empty (queued=" + m.queued() + ")", () -> m.queued() == 0);
    if (m.received() != m.forwarded() + m.droppedTotal()) {
      throw new AssertionError("accounting: received " + m.received() + " != forwarded "
          + m.forwarded() + " + dropped " + m.droppedTotal());
    }
  }

  /** Stops the proxy; a stop that does not finish within a minute fails the test, not hangs it. */
  public void stop() {
    try {
      app.stop().await(60, java.util.concurrent.TimeUnit.SECONDS);
    } catch (java.util.concurrent.TimeoutException e) {
      throw new AssertionError("the proxy did not stop within 60 s", e);
    }
  }

  /**
   * A free port for a server that binds it later: a proxy process, which takes seconds to start, or
   * one whose address is written into its config. Taken at random from below the kernel's
   * ephemeral range, never from it: a port from {@code new ServerSocket(0)} is an ephemeral one,
   * which the kernel may hand to any other socket (a client connection, another suite's server on
   * port 0) between this check and the proxy's bind; a loaded clean-clone run lost a proxy that way
   * ("failed to start: Address already in use").
   *
   * <p>Below the range only another explicit choice can take the port in between, and that choice
   * is another test JVM's on the same machine (a second suite beside this one). It happened (issue
   * 22): one suite's SpillDiskFullIT picked port P and started its proxy process; while that JVM
   * started, a ResilienceIT of another suite picked the same P and bound it first. The process
   * failed with "Address already in use", but the test's readiness check was answered by the other
   * suite's proxy on P, so its load went there: that ResilienceIT saw 268,106 metrics queued for
   * the 2,000 it had sent. So every port handed out is reserved machine-wide for the life of this
   * JVM by a file lock (released by the kernel when the JVM ends, however it ends), and a port
   * another JVM holds is never chosen; this JVM never hands out the same port twice either.
   */
  public static synchronized int freePort() {
    int high = Math.min(32767, ephemeralRangeStart() - 1);
    int low = 10_000;
    java.util.concurrent.ThreadLocalRandom random = java.util.concurrent.ThreadLocalRandom.current();
    for (int tries = 0; tries < 1000; tries++) {
      int port = random.nextInt(low, high + 1);
      if (RESERVED.containsKey(port) || !reserve(port)) continue;
      try (ServerSocket s = new ServerSocket()) {
        s.bind(new java.net.InetSocketAddress("127.0.0.1", port));
        return port;
      } catch (IOException inUse) {
        // Someone listens there (not a test of ours): another one. The lock stays: never this one.
      }
    }
    throw new IllegalStateException("no free port in " + low + ".." + high + " after 1000 tries");
  }

  /** Ports this JVM handed out (or found taken), with the lock that reserves each machine-wide. */
  private static final java.util.Map<Integer, java.nio.channels.FileLock> RESERVED = new java.util.HashMap<>();

  /** Takes the machine-wide lock of {@code port}; false if another JVM holds it. */
  private static boolean reserve(int port) {
    try {
      java.nio.file.Path dir = java.nio.file.Path.of(System.getProperty("java.io.tmpdir"), "veneur-proxy-test-ports");
      java.nio.file.Files.createDirectories(dir);
      java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(dir.resolve(port + ".lock"),
          java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE);
      java.nio.channels.FileLock lock = ch.tryLock();
      if (lock == null) {
        ch.close();
        return false;
      }
      RESERVED.put(port, lock);
      return true;
    } catch (IOException e) {
      throw new IllegalStateException("cannot reserve port " + port + " for the tests: " + e, e);
    }
  }

  /** The first port the kernel hands out on its own (Linux: ip_local_port_range); 32768 elsewhere. */
  private static int ephemeralRangeStart() {
    // Read line by line: Files.readString trusts the size procfs reports and returned "3" here.
    try (java.io.BufferedReader in = java.nio.file.Files.newBufferedReader(
        java.nio.file.Path.of("/proc/sys/net/ipv4/ip_local_port_range"))) {
      return Math.max(10_100, Integer.parseInt(in.readLine().trim().split("\\s+")[0]));
    } catch (IOException | RuntimeException e) {
      return 32768;
    }
  }
}
