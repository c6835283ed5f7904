package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.AttackBodies;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.CountingGlobal;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.HealthPoller;
import dev.veneur.proxy.support.Hostile;
import dev.veneur.proxy.support.Hostile.Conn;
import dev.veneur.proxy.support.Hostile.Plan;
import dev.veneur.proxy.support.ProcStatus;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.SteadySenders;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8's attack mix against the proxy as its own process with {@code -Xmx256m} and default
 * memory settings, beside a steady load from well-behaved senders, for {@link #ATTACK}:
 *
 * <ul>
 *   <li>400 connections declaring {@code Content-Length: 16000000}, then one body byte a second;
 *   <li>40 chunked bodies (about 1 MB/s each) that never end;
 *   <li>200 connections sending their headers one byte a second;
 *   <li>zlib bombs (260 KB inflating to 256 MiB), 4 senders, 3 each;
 *   <li>a 47 KB body whose one metric has a 16-million-character name, type and tagstring, 3 times;
 *   <li>a 160 KB body of 2.2 million tiny metrics (66 MB inflated, under max_inflated_bytes), once.
 * </ul>
 *
 * Every slot reconnects when its connection ends, so the pressure lasts the whole window.
 * Afterwards (all problems are collected and reported together): no OutOfMemoryError; the proxy
 * alive; {@code /healthcheck} answered on a fresh connection every 250 ms throughout; every
 * metric answered 202 delivered exactly once per metric counted (by sender prefix: delivered ==
 * accepted, nothing from the attackers); each attack answered as documented (408 and a closed
 * connection for slow headers and bodies, 413 for bombs, 400 too_long for the long strings, or
 * 503 + Retry-After when memory is full); the accounting identity once idle; peak RSS (VmHWM)
 * under 512 MiB; HTTP/2 cleartext off.
 */
@ExtendWith(VertxExtension.class)
class MemoryAttackIT {
  private static final Duration ATTACK = Duration.ofSeconds(20);
  /** http_request_timeout for this test (default 10s): attackers get their 408 well within the window. */
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(6);
  private static final long RSS_LIMIT_KIB = 512 * 1024;
  private static final int SENDERS = 4;
  private static final int METRICS_PER_BODY = 1000;
  private static final int TINY_METRICS = 2_200_000;
  private static final int LONG_STRING = 16_000_000;

  @Test
  void attackMixBesideRealLoadKeepsMemoryBoundedAndLosesNothing(Vertx vertx, @TempDir Path dir) throws Exception {
    // Bodies first, so building them does not compete with the proxy for the CPU.
    long tBuild = System.nanoTime();
    JsonArray captured = AttackBodies.captured();
    Map<String, List<byte[]>> legit = new LinkedHashMap<>();
    for (int s = 0; s < SENDERS; s++) {
      List<byte[]> bodies = new ArrayList<>();
      for (int v = 0; v < 6; v++) bodies.add(AttackBodies.prefixed(captured, "L" + s, METRICS_PER_BODY, 197 * (s * 6 + v)));
      legit.put("L" + s, bodies);
    }
    byte[] bomb = Hostile.postImport(AttackBodies.bomb(256L << 20), "deflate");
    byte[] longStrings = Hostile.postImport(AttackBodies.longStrings(LONG_STRING), "deflate");
    byte[] tiny = Hostile.postImport(AttackBodies.tinyMetrics(TINY_METRICS), "deflate");
    System.out.printf("attack bodies built in %d ms: bomb %d B, long strings %d B, tiny metrics %d B (%d inflated)%n",
        (System.nanoTime() - tBuild) / 1_000_000, bomb.length, longStrings.length, tiny.length,
        AttackBodies.tinyMetricsInflatedBytes(TINY_METRICS));

    CountingGlobal g1 = CountingGlobal.start(vertx);
    CountingGlobal g2 = CountingGlobal.start(vertx);
    List<CountingGlobal> globals = List.of(g1, g2);
    int port = TestProxy.freePort();
    Path yaml = dir.resolve("proxy.yaml");
    // Defaults for everything the issue is about (memory_budget, memory_wait_timeout,
    // max_string_length, max_body_bytes, max_inflated_bytes, http_max_connections), except
    // http_request_timeout, shortened so attackers cycle several times within the window.
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "forward_addresses:",
        "  - \"" + g1.url() + "\"",
        "  - \"" + g2.url() + "\"",
        "http_request_timeout: \"" + REQUEST_TIMEOUT.toSeconds() + "s\"",
        "shutdown_timeout: \"10s\"", ""));
    ProxyProcess p = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    List<String> findings = new ArrayList<>();
    AtomicLong peakRss = new AtomicLong(-1);
    HealthPoller health = null;
    Hostile hostile = null;
    SteadySenders load = null;
    try {
      Await.until("the proxy answers /healthcheck", Duration.ofSeconds(60),
          () -> HealthPoller.check(port, 2000) == null || !p.process.isAlive());
      assertTrue(p.process.isAlive(), "the proxy died on start-up:\n" + p.log());

      checkHttp2IsOff(port, findings);

      health = HealthPoller.start(port, Duration.ofMillis(250), Duration.ofSeconds(2));
      // The attackers come from many addresses (127.0.2.x: all of 127/8 is loopback), the
      // senders and health checks from 127.0.0.1: with ~650 sockets from one address, reconnecting
      // faster than a loaded proxy notices their closes, the per-client cap
      // (http_max_connections_per_client) would refuse most of them at accept before the limits
      // this test is about could answer (ConnectionHogIT covers that cap).
      hostile = new Hostile(port).from(slot -> "127.0.2." + (slot % 250 + 1));
      long start = System.nanoTime();
      long until = start + ATTACK.toNanos();
      Duration slowLife = REQUEST_TIMEOUT.plusSeconds(4);
      load = SteadySenders.start(port, legit, Duration.ofMillis(100), Duration.ofSeconds(30));
      hostile.sustain(400, Plan.trickleBody("trickle", 16_000_000, Duration.ofSeconds(1)).lifetime(slowLife),
          until, 0, Duration.ZERO);
      hostile.sustain(40, Plan.endlessChunked("chunked", 16 * 1024, Duration.ofMillis(16)).lifetime(slowLife),
          until, 0, Duration.ZERO);
      hostile.sustain(200, Plan.slowHeaders("slow-headers", Duration.ofSeconds(1)).lifetime(slowLife),
          until, 0, Duration.ZERO);
      hostile.sustain(4, Plan.request("bomb", bomb).lifetime(Duration.ofSeconds(15)), until, 3, Duration.ofSeconds(1));
      hostile.sustain(1, Plan.request("long-strings", longStrings).lifetime(Duration.ofSeconds(15)),
          until, 3, Duration.ofSeconds(2));
      hostile.sustain(1, Plan.request("tiny-metrics", tiny).lifetime(Duration.ofSeconds(30))
          .closeGrace(Duration.ZERO), until, 1, Duration.ofSeconds(5));

      // Sample the proxy's peak RSS while the window lasts (it is gone from /proc once it exits).
      while (System.nanoTime() < until && p.process.isAlive()) {
        peakRss.accumulateAndGet(ProcStatus.peakRssKib(p.process.pid()), Math::max);
        LockSupport.parkNanos(200_000_000L);
      }
      hostile.stopSustaining();
      load.close();
      boolean ended = hostile.awaitAllEnded(slowLife.plusSeconds(25));
      peakRss.accumulateAndGet(ProcStatus.peakRssKib(p.process.pid()), Math::max);
      hostile.close();
      health.close();
      long window = (System.nanoTime() - start) / 1_000_000;

      // ---- the process ----
      List<String> ooms = p.output.stream().filter(l -> l.contains("OutOfMemoryError")).toList();
      if (!ooms.isEmpty()) {
        findings.add("OutOfMemoryError in the proxy's output (" + ooms.size() + " lines), first: "
            + ooms.subList(0, Math.min(3, ooms.size())));
      }
      if (!p.process.isAlive()) {
        findings.add("the proxy exited during the test with code " + p.process.exitValue() + "; last lines:\n  "
            + String.join("\n  ", tail(p.output, 15)));
      }
      if (!health.failures.isEmpty()) {
        findings.add("/healthcheck failed " + health.failures.size() + " times (of " + (health.ok.get()
            + health.failures.size()) + ", fresh connection, 2 s timeout, every 250 ms), first: "
            + health.failures.subList(0, Math.min(5, health.failures.size())));
      }
      if (peakRss.get() >= RSS_LIMIT_KIB) {
        findings.add("peak RSS (VmHWM) " + peakRss.get() / 1024 + " MiB, over " + RSS_LIMIT_KIB / 1024 + " MiB");
      }

      // ---- the attackers' answers ----
      Map<String, List<Conn>> byKind = Hostile.byKind(hostile.all());
      if (!ended) findings.add("some attackers had not ended " + slowLife.plusSeconds(25).toSeconds()
          + " s after the window (harness or proxy stuck)");
      String closes = "the server closing the connection";
      expect(findings, byKind, "trickle", Set.of(408, 503), 408, true,
          "400 slots x 'Content-Length: 16000000' + 1 byte/s: 408 (slow_body) or 503 + Retry-After, then " + closes);
      expect(findings, byKind, "chunked", Set.of(408, 413, 503), -1, true,
          "40 slots x endless chunked body at ~1 MB/s: 408, 413 or 503 + Retry-After, then " + closes);
      expect(findings, byKind, "slow-headers", Set.of(408), 408, true,
          "200 slots x headers at 1 byte/s: 408 within http_request_timeout, then " + closes);
      expect(findings, byKind, "bomb", Set.of(413, 503), 413, false,
          "zlib bomb (" + bomb.length / 1024 + " KB -> 256 MiB): 413 (too_large) or 503 + Retry-After");
      expect(findings, byKind, "long-strings", Set.of(400, 503), 400, false,
          "one metric with 16M-char name/type/tagstring: 400 (too_long) or 503 + Retry-After");
      expect(findings, byKind, "tiny-metrics", Set.of(202, 503), -1, false,
          "2.2M tiny metrics, 66 MB inflated (under max_inflated_bytes): 202, or 503 + Retry-After");

      // ---- the well-behaved senders ----
      for (SteadySenders.Sender s : load.senders) {
        if (s.otherCount() > 0) {
          findings.add("sender " + s + ": answers other than 202/503, e.g. " + s.otherExamples);
        }
        if (s.refused503WithoutRetryAfter.get() > 0) {
          findings.add("sender " + s.prefix + ": " + s.refused503WithoutRetryAfter + " answers 503 without Retry-After");
        }
      }
      if (load.accepted() == 0) findings.add("no well-behaved POST was accepted in " + ATTACK.toSeconds() + " s: " + load.senders);

      // ---- delivery and accounting, once idle ----
      boolean idle = DebugState.awaitIdle(p, port, Duration.ofSeconds(40));
      JsonObject state = DebugState.get(port);
      Map<String, Long> expected = new TreeMap<>();
      for (SteadySenders.Sender s : load.senders) expected.put(s.prefix, (long) s.accepted.get() * METRICS_PER_BODY);
      long tinyAccepted = byKind.getOrDefault("tiny-metrics", List.of()).stream().filter(c -> c.status == 202).count();
      if (tinyAccepted > 0) expected.put(AttackBodies.TINY_NAME, tinyAccepted * TINY_METRICS);
      long expectedTotal = expected.values().stream().mapToLong(Long::longValue).sum();
      // The last batches' answers may still be on their way when the queue reads 0.
      waitFor(Duration.ofSeconds(idle ? 10 : 1), () -> !p.process.isAlive()
          || CountingGlobal.merged(globals).values().stream().mapToLong(Long::longValue).sum() >= expectedTotal);
      Map<String, Long> delivered = CountingGlobal.merged(globals);
      List<String> deliveryProblems = new ArrayList<>();
      Set<String> prefixes = new java.util.TreeSet<>(expected.keySet());
      prefixes.addAll(delivered.keySet());
      for (String prefix : prefixes) {
        long want = expected.getOrDefault(prefix, 0L);
        long got = delivered.getOrDefault(prefix, 0L);
        if (want != got) {
          deliveryProblems.add(prefix + ": accepted " + want + ", delivered " + got
              + (got < want ? " (" + (want - got) + " lost)" : " (" + (got - want) + " more than accepted"
                  + (want == 0 ? ": nothing from this sender was ever answered 202)" : ")")));
        }
      }
      if (!deliveryProblems.isEmpty()) findings.add("delivery (metrics per name prefix at the globals): " + deliveryProblems);
      for (CountingGlobal g : globals) {
        if (!g.problems.isEmpty()) findings.add("a global got bodies it could not read: " + g.problems);
      }
      if (!idle) findings.add("the proxy did not report queued == 0 after the window (40 s at most): "
          + (state == null ? "/debug/state unreachable" : state.getJsonObject("counters")));
      String accounting = DebugState.accountingProblem(state, true);
      if (accounting != null) findings.add("accounting: " + accounting);
      if (state != null) {
        long forwarded = DebugState.counter(state, "forwarded");
        long atGlobals = delivered.values().stream().mapToLong(Long::longValue).sum();
        if (forwarded != atGlobals) {
          findings.add("counters.forwarded " + forwarded + " but the globals received " + atGlobals);
        }
        long longRefused = byKind.getOrDefault("long-strings", List.of()).stream().filter(c -> c.status == 400).count();
        long tooLong = DebugState.requestErrors(state, "too_long");
        if (tooLong < longRefused) {
          findings.add("counters.request_errors.too_long is " + (tooLong < 0 ? "missing" : tooLong) + " but "
              + longRefused + " long-string bodies were answered 400");
        }
      }

      String summary = String.format("memory attack: %d ms; legit %s; health %s; peak RSS %d MiB; attacks %s;"
              + " delivered %s; state counters %s",
          window, load.senders, health.summary(), peakRss.get() / 1024, tallies(byKind), delivered,
          state == null ? "unreachable" : state.getJsonObject("counters"));
      System.out.println(summary);
      assertTrue(findings.isEmpty(), findings.size() + " problem(s) under the attack mix:\n- "
          + String.join("\n- ", findings) + "\n\n" + summary);
      p.terminate();
    } finally {
      p.kill(); // first, so senders waiting on it fail at once
      if (hostile != null) hostile.close();
      if (load != null) load.close();
      if (health != null) health.close();
    }
  }

  /**
   * Every connection of {@code kind} got one of {@code allowed} (503 only with Retry-After), at
   * least one got {@code primary} (unless -1), and, if {@code mustClose}, the server closed the
   * connection within the grace after answering.
   */
  private static void expect(List<String> findings, Map<String, List<Conn>> byKind, String kind, Set<Integer> allowed,
      int primary, boolean mustClose, String rule) {
    List<Conn> conns = byKind.getOrDefault(kind, List.of());
    if (conns.isEmpty()) {
      findings.add(kind + ": no connection was opened (test harness)");
      return;
    }
    long connected = conns.stream().filter(c -> c.connectedNanos >= 0).count();
    Predicate<Conn> bad = c -> !c.answered() || !allowed.contains(c.status)
        || (c.status == 503 && c.header("Retry-After") == null) || (mustClose && !c.serverClosed);
    long badCount = conns.stream().filter(bad).count();
    boolean primarySeen = primary < 0 || conns.stream().anyMatch(c -> c.status == primary);
    if (badCount > 0 || !primarySeen || connected == 0) {
      findings.add(kind + " (" + rule + "): " + conns.size() + " connections (" + connected + " connected), outcomes "
          + Hostile.tally(conns) + (primarySeen ? "" : "; none answered " + primary) + "; e.g.\n    "
          + String.join("\n    ", Hostile.examples(conns, badCount > 0 ? bad : c -> true, 3)));
    }
  }

  private static void waitFor(Duration max, java.util.function.BooleanSupplier done) {
    long deadline = System.nanoTime() + max.toNanos();
    while (!done.getAsBoolean() && System.nanoTime() < deadline) LockSupport.parkNanos(50_000_000L);
  }

  private static Map<String, Map<String, Integer>> tallies(Map<String, List<Conn>> byKind) {
    Map<String, Map<String, Integer>> t = new LinkedHashMap<>();
    byKind.forEach((k, v) -> t.put(k, Hostile.tally(v)));
    return t;
  }

  /**
   * HTTP/2 cleartext must be off unless configured: neither a prior-knowledge preface nor an
   * {@code Upgrade: h2c} may get HTTP/2 (streams would bypass the connection cap).
   */
  private static void checkHttp2IsOff(int port, List<String> findings) {
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setSoTimeout(3000);
      // Preface, then an empty SETTINGS frame.
      s.getOutputStream().write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      s.getOutputStream().write(new byte[] {0, 0, 0, 4, 0, 0, 0, 0, 0});
      byte[] first = readSome(s.getInputStream(), 9);
      if (first.length >= 9 && first[3] == 4) {
        findings.add("h2c is on: an HTTP/2 prior-knowledge preface was answered with an HTTP/2 SETTINGS frame");
      }
    } catch (Exception e) {
      // closed or refused: not HTTP/2
    }
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setSoTimeout(3000);
      s.getOutputStream().write(("GET /healthcheck HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade, HTTP2-Settings\r\n"
          + "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      String line = new String(readSome(s.getInputStream(), 12), StandardCharsets.ISO_8859_1);
      if (line.startsWith("HTTP/1.1 101")) findings.add("h2c is on: 'Upgrade: h2c' was answered 101 Switching Protocols");
    } catch (Exception e) {
      // closed or refused: not HTTP/2
    }
  }

  private static byte[] readSome(InputStream in, int n) throws java.io.IOException {
    byte[] b = new byte[n];
    int got = 0;
    while (got < n) {
      int k = in.read(b, got, n - got);
      if (k < 0) break;
      got += k;
    }
    return java.util.Arrays.copyOf(b, got);
  }

  private static List<String> tail(List<String> lines, int n) {
    List<String> copy = List.copyOf(lines);
    return copy.subList(Math.max(0, copy.size() - n), copy.size());
  }
}
