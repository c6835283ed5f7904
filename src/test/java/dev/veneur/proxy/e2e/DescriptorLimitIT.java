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
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 21, item 3: with {@code ulimit -n 1024}, 20 globals and a burst of 950 locals (each from
 * its own loopback address, as hosts are), the inbound cap used to be {@code nofile - 128}: inbound
 * connections took the descriptors the forwarders needed ({@code Too many open files}, healthy
 * globals ejected, metrics dropped {@code no_destination}, health checks failed). Now the cap
 * leaves room for every global's pool and a reserve, says so in one WARN with the numbers, and
 * shows the figures in {@code /debug/state}; the burst's refused connections are counted, every
 * 202 is delivered, and health checks on the admin listener all answer.
 */
@ExtendWith(VertxExtension.class)
class DescriptorLimitIT {
  private static final int NOFILE = 1024;
  private static final int GLOBALS = 20;
  private static final int LOCALS = 950;
  private static final int METRICS = 100;
  private static final int BURSTS = 2;

  @Test
  void aLowDescriptorLimitLowersTheInboundCapSoOutboundNeverRunsOut(Vertx vertx, @TempDir Path dir) throws Exception {
    JsonArray captured = AttackBodies.captured();
    List<CountingGlobal> globals = new ArrayList<>();
    for (int i = 0; i < GLOBALS; i++) globals.add(CountingGlobal.start(vertx));
    int port = TestProxy.freePort();
    int admin = TestProxy.freePort();
    List<String> yaml = new ArrayList<>(List.of(
        "http_address: \"127.0.0.1:" + port + "\"",
        "admin_address: \"127.0.0.1:" + admin + "\"",
        // Small batches: every forwarder has many ready at once, so its whole pool (8) opens.
        "batch_max_metrics: 100",
        // On this shared machine a global's answer can take seconds under the burst; slowness
        // alone must not eject here: only failures (a connection that cannot be opened) would.
        "eject_slow_after: \"0s\"",
        "memory_wait_timeout: \"20s\"",
        // A POST cut at its deadline by a global slow on this busy machine would be sent again and
        // counted twice (at-least-once): give it time.
        "forward_timeout: \"60s\"",
        "http_request_timeout: \"30s\"",
        "forward_addresses:"));
    for (CountingGlobal g : globals) yaml.add("  - \"" + g.url() + "\"");
    Path file = dir.resolve("proxy.yaml");
    Files.writeString(file, String.join("\n", yaml) + "\n");
    ProxyProcess p = ProxyProcess.startWithNofile(NOFILE, file, Map.of(), "-Xmx256m");
    List<String> findings = new ArrayList<>();
    long[] accepted = new long[LOCALS];
    try {
      Await.until("the proxy answers /healthcheck", Duration.ofSeconds(60),
          () -> HealthPoller.check(port, 2000) == null || !p.process.isAlive());
      assertTrue(p.process.isAlive(), "the proxy died on start-up:\n" + p.log());
      // The admin listener starts after the import listeners: /healthcheck can answer before it does.
      Await.until("the admin listener answers /debug/state", Duration.ofSeconds(30), () -> DebugState.get(admin) != null);
      JsonObject fds = DebugState.get(admin).getJsonObject("descriptors");
      System.out.println("descriptors at start: " + fds.encode());
      long cap = fds.getLong("inbound_cap");
      if (fds.getLong("nofile") != NOFILE) findings.add("nofile in /debug/state: " + fds.getLong("nofile"));
      if (cap + (long) GLOBALS * 8 + fds.getLong("reserve") > NOFILE) {
        findings.add("inbound cap " + cap + " leaves no room for " + GLOBALS + " x 8 outbound: " + fds.encode());
      }
      if (!p.logged("http_max_connections 4096 lowered to " + cap)) {
        findings.add("no WARN saying the cap was lowered to " + cap);
      }

      HealthPoller adminHealth = HealthPoller.start(admin, Duration.ofMillis(250), Duration.ofSeconds(5));
      List<byte[]> bodies = IntStream.range(0, LOCALS).parallel()
          .mapToObj(i -> Hostile.postImport(AttackBodies.prefixed(captured, "L" + i, METRICS, 13 * i), "deflate"))
          .toList();
      int peakOpen = 0;
      for (int b = 0; b < BURSTS; b++) {
        // Each local from its own address, as hosts are (the per-client cap is not under test here).
        Hostile hostile = new Hostile(port).from(slot -> "127.1." + (slot / 250) + "." + (slot % 250 + 1));
        List<Conn> conns = new ArrayList<>();
        for (int i = 0; i < LOCALS; i++) {
          conns.add(hostile.open(Plan.request("local", bodies.get(i)).gated()
              .lifetime(Duration.ofSeconds(60)).closeGrace(Duration.ZERO), i));
        }
        Await.until("all burst connections open or closed", Duration.ofSeconds(30),
            () -> conns.stream().allMatch(c -> c.connectedNanos >= 0 || c.finished()));
        hostile.release(conns);
        long until = System.nanoTime() + Duration.ofSeconds(70).toNanos();
        while (!conns.stream().allMatch(Conn::finished) && System.nanoTime() < until) {
          JsonObject s = DebugState.get(admin);
          if (s != null) peakOpen = Math.max(peakOpen, s.getJsonObject("descriptors").getInteger("open"));
          java.util.concurrent.locks.LockSupport.parkNanos(100_000_000L);
        }
        hostile.close();
        for (int i = 0; i < LOCALS; i++) if (conns.get(i).status == 202) accepted[i] += METRICS;
        System.out.printf("burst %d: %s%n", b + 1, Hostile.tally(conns));
        if (conns.stream().noneMatch(c -> c.status == 202)) findings.add("burst " + (b + 1) + ": nothing accepted");
      }
      adminHealth.close();
      // (A /debug/state slower than 5 s on this busy machine is not a finding; its absence is.)
      System.out.println("descriptors open at most " + peakOpen + " of " + NOFILE + "; admin health checks: "
          + adminHealth.summary());
      if (!adminHealth.failures.isEmpty()) {
        findings.add("health checks on the admin listener failed: " + adminHealth.summary() + ", e.g. "
            + adminHealth.failures.subList(0, Math.min(3, adminHealth.failures.size())));
      }
      boolean idle = DebugState.awaitIdle(p, admin, Duration.ofSeconds(60));
      long expectedTotal = java.util.Arrays.stream(accepted).sum();
      Await.until("every accepted metric at the globals", Duration.ofSeconds(idle ? 20 : 1),
          () -> CountingGlobal.merged(globals).values().stream().mapToLong(Long::longValue).sum() >= expectedTotal
              || !p.process.isAlive());
      Map<String, Long> delivered = CountingGlobal.merged(globals);
      Map<String, Long> expected = new TreeMap<>();
      for (int i = 0; i < LOCALS; i++) if (accepted[i] > 0) expected.put("L" + i, accepted[i]);
      if (!expected.equals(delivered)) {
        findings.add("delivered by prefix differs from accepted: " + expected.size() + " senders accepted "
            + expectedTotal + " metrics, globals got " + delivered.values().stream().mapToLong(Long::longValue).sum());
      }
      List<String> emfile = p.output.stream().filter(l -> l.contains("Too many open files")).toList();
      if (!emfile.isEmpty()) findings.add(emfile.size() + " 'Too many open files' lines, first: " + emfile.get(0));
      List<String> ejections = p.output.stream().filter(l -> l.contains("ejected http")).toList();
      if (!ejections.isEmpty()) findings.add(ejections.size() + " healthy globals ejected, first: " + ejections.get(0));
      JsonObject state = DebugState.get(admin);
      JsonObject dropped = state == null ? new JsonObject() : state.getJsonObject("counters").getJsonObject("dropped");
      if (dropped.getLong("no_destination", 0L) != 0) findings.add("dropped no_destination: " + dropped);
      String accounting = DebugState.accountingProblem(state, true);
      if (accounting != null) findings.add("accounting: " + accounting);
      if (state != null) {
        System.out.println("refused connections: " + state.getJsonObject("counters").getJsonObject("request_errors"));
        long forwarded = DebugState.counter(state, "forwarded");
        if (forwarded != expectedTotal) findings.add("forwarded " + forwarded + " but accepted " + expectedTotal);
      }
      if (!p.process.isAlive()) findings.add("the proxy exited with code " + p.process.exitValue());
      assertTrue(findings.isEmpty(), findings.size() + " problem(s):\n- " + String.join("\n- ", findings)
          + "\n(log: " + p.saveLog("DescriptorLimitIT") + ")");
      p.terminate();
    } finally {
      p.kill();
    }
  }
}
