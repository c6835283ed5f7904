package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.SentryStandIn;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The proxy as a real process: a Go proxy's config file starts it; SIGTERM drains it. */
@ExtendWith(VertxExtension.class)
class ProcessLifecycleIT {
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  private HttpResponse<String> send(HttpRequest r) {
    try {
      return http.send(r, HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      return null;
    }
  }

  private HttpResponse<String> get(int port, String path) {
    return send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build());
  }

  @Test
  void theGoProxysExampleConfigStartsIt(@TempDir Path dir) throws Exception {
    String go = new String(Bodies.resource("go-proxy-v2.yaml"), StandardCharsets.UTF_8);
    int port = TestProxy.freePort();
    int grpc = TestProxy.freePort();
    // Unchanged but for the ports, so the test cannot collide with anything on 8127 and 8128.
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, go.replace("localhost:8127", "127.0.0.1:" + port).replace("localhost:8128", "127.0.0.1:" + grpc));
    ProxyProcess p = ProxyProcess.start(yaml, Map.of());
    try {
      Await.until("healthcheck answers", Duration.ofSeconds(60), () -> {
        var r = get(port, "/healthcheck");
        return r != null && r.statusCode() == 200;
      });
      assertTrue(p.logged("'trace_address' is accepted for compatibility but trace forwarding is not supported"), p.log());
      // Its grpc_address is served (forwardrpc.Forward), not warned about. The gRPC listener starts
      // after the HTTP one, so /healthcheck can answer first: wait for its line.
      Await.until("the gRPC listener is up", Duration.ofSeconds(30),
          () -> p.logged("serving gRPC forwardrpc.Forward on 127.0.0.1:" + grpc));
      assertTrue(!p.logged("'grpc_address'"), p.log());
      assertEquals(0, p.terminate(), p.log());
    } finally {
      p.kill();
    }
  }

  @Test
  void aStartupFailureExitsOneAndReachesSentry(Vertx vertx, @TempDir Path dir) throws Exception {
    SentryStandIn sentry = SentryStandIn.start(vertx);
    try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 50, java.net.InetAddress.getByName("127.0.0.1"))) {
      Path yaml = dir.resolve("proxy.yaml");
      Files.writeString(yaml, String.join("\n",
          "http_address: \"127.0.0.1:" + taken.getLocalPort() + "\"",
          "forward_address: \"http://127.0.0.1:9\"",
          "sentry_dsn: \"" + sentry.dsn() + "\"", ""));
      ProxyProcess p = ProxyProcess.start(yaml, Map.of());
      try {
        assertTrue(p.process.waitFor(60, java.util.concurrent.TimeUnit.SECONDS), "exits by itself");
        assertEquals(1, p.process.exitValue(), p.log());
        assertTrue(p.logged("veneur-proxy failed to start"), p.log());
        // It names the listener that could not bind.
        assertTrue(p.logged("http_address 127.0.0.1:" + taken.getLocalPort() + ": "), p.log());
        assertTrue(sentry.envelopes.stream().anyMatch(e -> e.contains("failed to start")),
            "the start-up failure reached Sentry: " + sentry.envelopes);
      } finally {
        p.kill();
        sentry.close();
      }
    }
  }

  @Test
  void sigtermDeliversPendingBatchesThenExitsZero(Vertx vertx, @TempDir Path dir) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    int port = TestProxy.freePort();
    Path yaml = dir.resolve("proxy.yaml");
    // A linger far longer than the test: the batch can only leave because of the shutdown.
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "forward_address: \"" + global.url() + "\"",
        "batch_linger: \"10m\"",
        "batch_max_metrics: 1000000",
        "batch_max_bytes: \"512MiB\"",
        "max_queued_bytes: \"1GiB\"",
        "max_queued_bytes_per_destination: \"1GiB\"",
        "shutdown_timeout: \"20s\"", ""));
    ProxyProcess p = ProxyProcess.start(yaml, Map.of());
    try {
      Await.until("healthcheck answers", Duration.ofSeconds(60), () -> {
        var r = get(port, "/healthcheck");
        return r != null && r.statusCode() == 200;
      });
      int total = 0;
      for (int i = 0; i < 4; i++) {
        // Uncompressed: with one global a valid zlib body would go on as it came at once, a batch
        // of its own (no linger); these are re-batched and wait for the linger like any chunk.
        byte[] body = Bodies.utf8(Bodies.generate("term" + i, 500, i).encode());
        var r = send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/import"))
            .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build());
        assertEquals(202, r.statusCode());
        total += 500;
      }
      int expected = total;
      Await.until("all queued in the proxy", () -> {
        var r = get(port, "/debug/state");
        return r != null && new JsonObject(r.body()).getJsonObject("counters").getLong("queued") == expected;
      });
      assertEquals(0, global.metrics.size(), "nothing leaves before the linger");
      assertEquals(0, p.terminate(), p.log());
      assertEquals(total, global.metrics.size(), "pending batches delivered before exit");
      assertTrue(p.logged("stopped: received " + total + ", forwarded " + total + ", dropped 0"), p.log());
    } finally {
      p.kill();
    }
  }

  /** The JVMs a launcher started (its descendants), with their command lines. */
  private static java.util.List<ProcessHandle> launched(ProxyProcess p) {
    return p.process.toHandle().descendants().toList();
  }

  private static String yamlFor(Path dir, int port) throws java.io.IOException {
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "forward_address: \"http://127.0.0.1:9\"", ""));
    return yaml.toString();
  }

  @Test
  void aPlainJavaJarRunsTheProxyInAJvmWithABoundedHeapAndSigtermStopsBoth(@TempDir Path dir) throws Exception {
    int port = TestProxy.freePort();
    ProxyProcess p = ProxyProcess.launch(Path.of(yamlFor(dir, port)));
    try {
      Await.until("healthcheck answers", Duration.ofSeconds(60), () -> {
        var r = get(port, "/healthcheck");
        return r != null && r.statusCode() == 200;
      });
      var children = launched(p);
      assertEquals(1, children.size(), "one launched JVM: " + children + "\n" + p.log());
      // From /proc: ProcessHandle.Info leaves out the arguments of a command line this long.
      String cmd = Files.readString(Path.of("/proc/" + children.get(0).pid() + "/cmdline")).replace('\0', ' ');
      assertTrue(cmd.contains("-Xmx192m") && cmd.contains("-Dveneur.proxy.launcher=" + p.process.pid())
          && cmd.contains("dev.veneur.proxy.Main"), cmd);
      assertTrue(p.logged("heap: at most 192 MiB, given by the launcher (pid " + p.process.pid() + ")"), p.log());
      // 40% of the launched JVM's heap (HeapChoice.HEAP); logged just after the listener answers.
      Await.until("the listening line", Duration.ofSeconds(10), () -> p.logged("memory budget 76 MiB"));
      // SIGTERM to the launcher: the proxy stops gracefully, and its exit code is the launcher's.
      assertEquals(0, p.terminate(), p.log());
      assertTrue(p.logged("SIGTERM: refusing new imports"), p.log());
      assertTrue(p.logged("stopped: received 0"), p.log());
      assertTrue(children.get(0).onExit().get(10, java.util.concurrent.TimeUnit.SECONDS) != null);
    } finally {
      p.kill();
      launched(p).forEach(ProcessHandle::destroyForcibly);
    }
  }

  @Test
  void theLaunchedProxyStopsWhenItsLauncherIsKilled(@TempDir Path dir) throws Exception {
    int port = TestProxy.freePort();
    ProxyProcess p = ProxyProcess.launch(Path.of(yamlFor(dir, port)));
    java.util.List<ProcessHandle> children = java.util.List.of();
    try {
      Await.until("healthcheck answers", Duration.ofSeconds(60), () -> {
        var r = get(port, "/healthcheck");
        return r != null && r.statusCode() == 200;
      });
      children = launched(p);
      assertEquals(1, children.size(), p.log());
      p.process.destroyForcibly().waitFor(); // SIGKILL: no chance to pass anything on
      // Not left running unseen with the port: it stops as on SIGTERM.
      assertTrue(children.get(0).onExit().get(60, java.util.concurrent.TimeUnit.SECONDS) != null);
      Await.until("the port is free again", Duration.ofSeconds(10), () -> get(port, "/healthcheck") == null);
    } finally {
      children.forEach(ProcessHandle::destroyForcibly);
    }
  }

  @Test
  void aHeapFlagKeepsTheProxyInTheOperatorsJvm(@TempDir Path dir) throws Exception {
    int port = TestProxy.freePort();
    ProxyProcess p = ProxyProcess.launch(Path.of(yamlFor(dir, port)), "-Xmx192m");
    try {
      Await.until("healthcheck answers", Duration.ofSeconds(60), () -> {
        var r = get(port, "/healthcheck");
        return r != null && r.statusCode() == 200;
      });
      assertEquals(0, launched(p).size(), p.log());
      assertTrue(p.logged("heap: at most 192 MiB; one JVM: the heap is the operator's (MaxHeapSize from vm_creation)"),
          p.log());
      assertEquals(0, p.terminate(), p.log());
    } finally {
      p.kill();
    }
  }
}
