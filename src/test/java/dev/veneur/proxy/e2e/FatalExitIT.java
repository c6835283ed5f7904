package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.HealthPoller;
import dev.veneur.proxy.support.Hostile;
import dev.veneur.proxy.support.Hostile.Plan;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.SteadySenders;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Never a zombie: on any OutOfMemoryError, or when the listening socket goes away without a
 * reload asking for it, the proxy logs FATAL and exits with code 3 at once, so its supervisor
 * restarts it (instead of a process that lives on with its port closed).
 */
@ExtendWith(VertxExtension.class)
class FatalExitIT {
  /** How long "at once" may take: logging, telling Sentry (none configured here), exiting. */
  private static final Duration PROMPTLY = Duration.ofSeconds(10);

  @Test
  void anOutOfMemoryErrorOnAnEventLoopExitsThree(Vertx vertx, @TempDir Path dir) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    int port = TestProxy.freePort();
    ProxyProcess p = ProxyProcess.start(yaml(dir, port, global.url()), Map.of(), "-Xmx256m",
        "-Dveneur.proxy.testHooks=true");
    try {
      awaitUp(p, port);
      String answer = post(port, "/debug/test/oom");
      expectFatalExit(p, port, "POST /debug/test/oom (answered: " + answer + ")", true);
    } finally {
      p.kill();
    }
  }

  @Test
  void theListenerClosingBehindTheAppsBackExitsThree(Vertx vertx, @TempDir Path dir) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    int port = TestProxy.freePort();
    ProxyProcess p = ProxyProcess.start(yaml(dir, port, global.url()), Map.of(), "-Xmx256m",
        "-Dveneur.proxy.testHooks=true");
    try {
      awaitUp(p, port);
      String answer = post(port, "/debug/test/close-listener");
      expectFatalExit(p, port, "POST /debug/test/close-listener (answered: " + answer + ")", false);
    } finally {
      p.kill();
    }
  }

  /**
   * A real OutOfMemoryError: a 48 MiB heap with a memory_budget of 1 GiB (so the budget cannot
   * protect it), a global that takes every POST and never answers (so everything accepted stays
   * in the proxy), senders posting bodies of incompressible values, declared 16 MB bodies and
   * floods of chunked bodies. The proxy must exit 3 promptly after the first OutOfMemoryError,
   * and never sit alive with its port closed.
   */
  @Test
  void aRealOutOfMemoryErrorUnderLoadExitsThreeAndNeverLeavesAZombie(Vertx vertx, @TempDir Path dir) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    global.status.set(0); // accept the body, never answer
    int port = TestProxy.freePort();
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "forward_address: \"" + global.url() + "\"",
        "memory_budget: \"1GiB\"",
        "max_queued_bytes_per_destination: \"1GiB\"",
        "forward_timeout: \"60s\"",
        "shutdown_timeout: \"5s\"", ""));
    Map<String, List<byte[]>> bodies = new LinkedHashMap<>();
    for (int s = 0; s < 4; s++) {
      List<byte[]> list = new ArrayList<>();
      for (int v = 0; v < 2; v++) list.add(incompressible("oom" + s, 1000, 3000, s * 10L + v));
      bodies.put("oom" + s, list);
    }
    ProxyProcess p = ProxyProcess.start(yaml, Map.of(), "-Xmx48m");
    HealthPoller health = null;
    SteadySenders load = null;
    Hostile hostile = null;
    try {
      awaitUp(p, port);
      long start = System.nanoTime();
      health = HealthPoller.start(port, Duration.ofMillis(250), Duration.ofSeconds(2));
      load = SteadySenders.start(port, bodies, Duration.ofMillis(20), Duration.ofSeconds(10));
      hostile = new Hostile(port);
      long until = start + Duration.ofSeconds(30).toNanos();
      hostile.sustain(20, Plan.trickleBody("trickle", 16_000_000, Duration.ofSeconds(1)), until, 0, Duration.ZERO);
      hostile.sustain(10, Plan.endlessChunked("chunked", 64 * 1024, Duration.ofMillis(5)), until, 0, Duration.ZERO);

      long firstOomNanos = -1;
      long zombieSinceNanos = -1;
      long longestZombieMs = 0;
      while (p.process.isAlive() && System.nanoTime() < until) {
        if (firstOomNanos < 0 && p.logged("OutOfMemoryError")) firstOomNanos = System.nanoTime();
        // Port refusing connections while the process lives: a zombie in the making.
        boolean refused = !health.failures.isEmpty() && health.failingStreak.get() > 0
            && health.failures.get(health.failures.size() - 1).what().startsWith("connect refused");
        if (refused && zombieSinceNanos < 0) zombieSinceNanos = System.nanoTime();
        if (!refused) zombieSinceNanos = -1;
        if (zombieSinceNanos >= 0) longestZombieMs = Math.max(longestZombieMs, (System.nanoTime() - zombieSinceNanos) / 1_000_000);
        if (firstOomNanos >= 0 && System.nanoTime() - firstOomNanos > PROMPTLY.toNanos()) break;
        LockSupport.parkNanos(50_000_000L);
      }
      boolean exited = p.process.waitFor(1, TimeUnit.SECONDS);
      p.awaitOutput();
      long oomLines = p.output.stream().filter(l -> l.contains("OutOfMemoryError")).count();
      String situation = String.format("after %d ms of load on -Xmx48m: %s; OutOfMemoryError lines: %d%s;"
              + " healthcheck %s, last failures %s; port refusing connections while alive for up to %d ms;"
              + " senders %s",
          (System.nanoTime() - start) / 1_000_000,
          exited ? "exited with code " + p.process.exitValue() : "STILL RUNNING",
          oomLines, firstOomNanos < 0 ? "" : " (first seen " + (firstOomNanos - start) / 1_000_000 + " ms into the load)",
          health.summary(), last(health.failures, 3), longestZombieMs, load.senders);
      if (!exited) {
        fail(oomLines == 0
            ? "no OutOfMemoryError within 30 s, so the exit path was not exercised (test too gentle?): " + situation
            : "an OutOfMemoryError happened but the proxy did not exit within " + PROMPTLY.toSeconds() + " s: "
                + situation + "\nlast lines:\n  " + String.join("\n  ", tail(p.output, 15)));
      }
      assertEquals(3, p.process.exitValue(), "exit code after an OutOfMemoryError: " + situation
          + "\nlast lines:\n  " + String.join("\n  ", tail(p.output, 15)));
      assertTrue(p.logged("FATAL") && oomLines > 0, "logs FATAL and the OutOfMemoryError: " + situation
          + "\nlast lines:\n  " + String.join("\n  ", tail(p.output, 15)));
      assertTrue(longestZombieMs < 2000, "the port refused connections for " + longestZombieMs
          + " ms while the process was alive (a zombie): " + situation);
    } finally {
      if (hostile != null) hostile.close();
      if (load != null) {
        p.kill(); // the senders stop at once once nothing answers them
        load.close();
      }
      if (health != null) health.close();
      p.kill();
    }
  }

  private static void expectFatalExit(ProxyProcess p, int port, String trigger, boolean oom) throws Exception {
    long t0 = System.nanoTime();
    boolean exited = p.process.waitFor(PROMPTLY.toMillis(), TimeUnit.MILLISECONDS);
    if (!exited) {
      fail(trigger + ": the proxy is still running " + PROMPTLY.toSeconds() + " s later (expected: log FATAL, exit 3);"
          + " healthcheck now: " + String.valueOf(HealthPoller.check(port, 2000)).replace("null", "200 OK")
          + "\nlast lines:\n  " + String.join("\n  ", tail(p.output, 15)));
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    p.awaitOutput();
    String log = "\nlast lines:\n  " + String.join("\n  ", tail(p.output, 15));
    assertEquals(3, p.process.exitValue(), trigger + ": exit code (exited after " + ms + " ms)" + log);
    assertTrue(p.logged("FATAL"), trigger + ": the output says FATAL" + log);
    if (oom) assertTrue(p.logged("OutOfMemoryError"), trigger + ": the output names the OutOfMemoryError" + log);
  }

  private static Path yaml(Path dir, int port, String global) throws Exception {
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "forward_address: \"" + global + "\"", ""));
    return yaml;
  }

  private static void awaitUp(ProxyProcess p, int port) {
    Await.until("the proxy answers /healthcheck", Duration.ofSeconds(60),
        () -> HealthPoller.check(port, 2000) == null || !p.process.isAlive());
    assertTrue(p.process.isAlive(), "the proxy died on start-up:\n" + p.log());
  }

  /** POSTs an empty body on a fresh connection; the status line, or what happened instead. */
  private static String post(int port, String path) {
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setSoTimeout(3000);
      s.getOutputStream().write(("POST " + path + " HTTP/1.1\r\nHost: proxy\r\nContent-Length: 0\r\n"
          + "Connection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      InputStream in = s.getInputStream();
      StringBuilder line = new StringBuilder();
      int b;
      while ((b = in.read()) >= 0 && b != '\n' && line.length() < 200) line.append((char) b);
      return line.length() == 0 ? "closed without an answer" : "\"" + line.toString().trim() + "\"";
    } catch (Exception e) {
      return e.toString();
    }
  }

  /** A deflated body of {@code n} histograms whose values are {@code valueBytes} random bytes. */
  private static byte[] incompressible(String prefix, int n, int valueBytes, long seed) {
    Random r = new Random(seed);
    JsonArray arr = new JsonArray();
    for (int i = 0; i < n; i++) {
      byte[] v = new byte[valueBytes];
      r.nextBytes(v);
      arr.add(new JsonObject().put("name", prefix + "." + i).put("type", "histogram")
          .put("tagstring", "service:oom").put("tags", new JsonArray().add("service:oom"))
          .put("value", Base64.getEncoder().encodeToString(v)));
    }
    return dev.veneur.proxy.support.Bodies.deflate(dev.veneur.proxy.support.Bodies.utf8(arr.encode()));
  }

  private static <T> List<T> last(List<T> l, int n) {
    List<T> copy = List.copyOf(l);
    return copy.subList(Math.max(0, copy.size() - n), copy.size());
  }

  private static List<String> tail(List<String> lines, int n) {
    return last(lines, n);
  }
}
