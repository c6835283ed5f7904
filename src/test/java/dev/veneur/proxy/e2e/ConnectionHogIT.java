package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.AttackBodies;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.CountingGlobal;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.HealthPoller;
import dev.veneur.proxy.support.Hostile;
import dev.veneur.proxy.support.Hostile.Plan;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.SteadySenders;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 21, item 4: one client (127.0.0.2) keeps {@link #HOG} idle sockets open against a cap of
 * {@link #CAP}, opening a new one whenever the proxy closes one. It used to take every slot:
 * health checks refused, legitimate senders failing. Now it gets its share
 * ({@code http_max_connections_per_client}, by default a quarter of the cap), the rest of its
 * connections are closed at accept and counted; the senders from another address get every POST
 * answered 202, health checks on {@code http_address} and on the admin listener are all answered,
 * every accepted metric is delivered and the accounting identity holds.
 */
@ExtendWith(VertxExtension.class)
class ConnectionHogIT {
  private static final int CAP = 1200;
  private static final int HOG = 2000;
  private static final int SENDERS = 4;
  private static final Duration RUN = Duration.ofSeconds(20);

  @Test
  void oneClientWithThousandsOfIdleSocketsCannotStarveTheOthersOrTheProbes(Vertx vertx, @TempDir Path dir)
      throws Exception {
    JsonArray captured = AttackBodies.captured();
    CountingGlobal g1 = CountingGlobal.start(vertx);
    CountingGlobal g2 = CountingGlobal.start(vertx);
    int port = TestProxy.freePort();
    int admin = TestProxy.freePort();
    Path file = dir.resolve("proxy.yaml");
    Files.writeString(file, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "admin_address: \"127.0.0.1:" + admin + "\"",
        "http_max_connections: " + CAP,
        "forward_timeout: \"60s\"",
        "forward_addresses: [\"" + g1.url() + "\", \"" + g2.url() + "\"]", ""));
    ProxyProcess p = ProxyProcess.start(file, Map.of(), "-Xmx256m");
    List<String> findings = new ArrayList<>();
    try {
      Await.until("the proxy answers /healthcheck", Duration.ofSeconds(60),
          () -> HealthPoller.check(port, 2000) == null || !p.process.isAlive());
      assertTrue(p.process.isAlive(), "the proxy died on start-up:\n" + p.log());

      Hostile hog = new Hostile(port).from(slot -> "127.0.0.2");
      // Idle: connect and send nothing; when the proxy closes one, open another.
      hog.sustain(HOG, Plan.request("idle", new byte[0]).lifetime(Duration.ofSeconds(120)),
          System.nanoTime() + RUN.plusSeconds(5).toNanos(), 0, Duration.ZERO);
      Await.until("the hog holds its share", Duration.ofSeconds(30), () -> {
        JsonObject s = DebugState.get(admin);
        return s != null && s.getInteger("connections") >= CAP / 4;
      });
      JsonObject during = DebugState.get(admin);
      System.out.println("with the hog connected: connections " + during.getInteger("connections")
          + ", descriptors " + during.getJsonObject("descriptors").encode());

      HealthPoller httpHealth = HealthPoller.start(port, Duration.ofMillis(250), Duration.ofSeconds(5));
      HealthPoller adminHealth = HealthPoller.start(admin, Duration.ofMillis(250), Duration.ofSeconds(5));
      Map<String, List<byte[]>> bodies = new LinkedHashMap<>();
      for (int i = 0; i < SENDERS; i++) {
        List<byte[]> list = new ArrayList<>();
        for (int k = 0; k < 4; k++) list.add(AttackBodies.prefixed(captured, "S" + i, 200, 31 * i + k));
        bodies.put("S" + i, list);
      }
      SteadySenders senders = SteadySenders.start(port, bodies, Duration.ofMillis(50), Duration.ofSeconds(30));
      long until = System.nanoTime() + RUN.toNanos();
      while (System.nanoTime() < until && p.process.isAlive()) {
        java.util.concurrent.locks.LockSupport.parkNanos(200_000_000L);
      }
      senders.close();
      httpHealth.close();
      adminHealth.close();
      hog.close();
      System.out.println("senders: " + senders.senders + "; health on http_address: " + httpHealth.summary()
          + "; on the admin listener: " + adminHealth.summary());

      for (SteadySenders.Sender s : senders.senders) {
        if (s.refused503.get() > 0 || s.otherCount() > 0 || s.accepted.get() == 0) {
          findings.add("sender " + s + ", e.g. " + s.otherExamples);
        }
      }
      if (!httpHealth.failures.isEmpty()) findings.add("health checks on http_address failed: " + httpHealth.summary()
          + ", e.g. " + httpHealth.failures.subList(0, Math.min(3, httpHealth.failures.size())));
      if (!adminHealth.failures.isEmpty()) findings.add("health checks on the admin listener failed: "
          + adminHealth.summary() + ", e.g. " + adminHealth.failures.subList(0, Math.min(3, adminHealth.failures.size())));
      if (httpHealth.ok.get() == 0 || adminHealth.ok.get() == 0) findings.add("no health check was made");

      boolean idle = DebugState.awaitIdle(p, admin, Duration.ofSeconds(60));
      JsonObject state = DebugState.get(admin);
      long refusedPerClient = state == null ? -1 : DebugState.requestErrors(state, "too_many_connections_per_client");
      System.out.println("refused connections by cause: "
          + (state == null ? "?" : state.getJsonObject("counters").getJsonObject("request_errors")));
      if (refusedPerClient <= 0) findings.add("no connection counted too_many_connections_per_client");
      Map<String, Long> expected = new TreeMap<>();
      for (SteadySenders.Sender s : senders.senders) expected.put(s.prefix, 200L * s.accepted.get());
      long expectedTotal = expected.values().stream().mapToLong(Long::longValue).sum();
      List<CountingGlobal> globals = List.of(g1, g2);
      Await.until("every accepted metric at the globals", Duration.ofSeconds(idle ? 20 : 1),
          () -> CountingGlobal.merged(globals).values().stream().mapToLong(Long::longValue).sum() >= expectedTotal);
      Map<String, Long> delivered = CountingGlobal.merged(globals);
      if (!expected.equals(delivered)) findings.add("accepted " + expected + " but delivered " + delivered);
      String accounting = DebugState.accountingProblem(state, true);
      if (accounting != null) findings.add("accounting: " + accounting);
      if (state != null && DebugState.counter(state, "received") != expectedTotal) {
        findings.add("received " + DebugState.counter(state, "received") + " but the senders got 202 for " + expectedTotal);
      }
      if (!p.process.isAlive()) findings.add("the proxy exited with code " + p.process.exitValue());
      assertTrue(findings.isEmpty(), findings.size() + " problem(s):\n- " + String.join("\n- ", findings)
          + "\n(log: " + p.saveLog("ConnectionHogIT") + ")");
      p.terminate();
    } finally {
      p.kill();
    }
  }
}
