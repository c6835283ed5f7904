package dev.veneur.proxy.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.FaultyGlobal;
import dev.veneur.proxy.support.Ledger;
import dev.veneur.proxy.support.LoadSenders;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 21, item 1: config files that once killed a running proxy (an alias bomb under SnakeYAML's
 * alias limit, a 100 MB file, a 10 MB override) written over a real {@code -Xmx256m} proxy process
 * under load. Each is a rejected change (counted, the running config kept), the process stays up
 * without an OutOfMemoryError or a blocked event loop, a valid change after them still applies,
 * and every metric answered 202 reaches exactly one global. At start, the same files are exit 2
 * naming the bound.
 */
@ExtendWith(VertxExtension.class)
class ConfigBoundsIT {
  @TempDir Path dir;

  private static void writeAtomically(Path file, String content) throws Exception {
    Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
    Files.writeString(tmp, content);
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  /** A sparse file of {@code size} bytes moved over {@code file}: costs no disk, only its size is large. */
  private static void writeHuge(Path file, long size) throws Exception {
    Path tmp = file.resolveSibling("." + file.getFileName() + ".huge");
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      ch.write(ByteBuffer.wrap("a: b\n".getBytes()), 0);
      ch.write(ByteBuffer.wrap("c: d\n".getBytes()), size - 5);
    }
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  private static String yaml(int port, List<String> dests) {
    StringBuilder sb = new StringBuilder()
        .append("http_address: \"127.0.0.1:").append(port).append("\"\n")
        .append("config_scan_interval: \"100ms\"\n")
        .append("shutdown_timeout: \"5s\"\n")
        .append("forward_addresses:\n");
    for (String d : dests) sb.append("  - \"").append(d).append("\"\n");
    return sb.toString();
  }

  private static long reloadErrors(int port) {
    JsonObject s = DebugState.get(port);
    return s == null ? -1 : s.getJsonObject("config", new JsonObject()).getLong("reload_errors", -1L);
  }

  @Test
  void hostileConfigFilesUnderLoadAreRejectedAndCostNoAcceptedMetric(Vertx vertx) throws Exception {
    Ledger la = new Ledger();
    Ledger lb = new Ledger();
    Ledger lc = new Ledger();
    FaultyGlobal a = FaultyGlobal.start(vertx, FaultyGlobal.Mode.HEALTHY, la, null);
    FaultyGlobal b = FaultyGlobal.start(vertx, FaultyGlobal.Mode.HEALTHY, lb, null);
    FaultyGlobal c = FaultyGlobal.start(vertx, FaultyGlobal.Mode.HEALTHY, lc, null);
    int port = TestProxy.freePort();
    Path file = dir.resolve("proxy.yaml");
    Path override = dir.resolve("proxy-50-big.yaml");
    writeAtomically(file, yaml(port, List.of(a.url(), b.url())));
    ProxyProcess p = ProxyProcess.start(file, Map.of(), "-Xmx256m");
    LoadSenders load = null;
    try {
      Await.until("the proxy answers", Duration.ofSeconds(60), Duration.ofMillis(100), () -> {
        if (!p.process.isAlive()) throw new AssertionError("the proxy exited at start:\n" + p.log());
        return DebugState.get(port) != null;
      });
      load = LoadSenders.start(port, 4, 10);
      Await.until("load flows", Duration.ofSeconds(30), () -> load(p, port) > 0);

      // 1. The alias bomb (601 bytes, 48 aliases) over the main file.
      writeAtomically(file, BoundedYamlTest.aliasBomb(16, 3));
      awaitErrors(p, port, 1);
      // 2. A bomb within the alias bound, wide at the bottom (half a million nodes as JSON).
      writeAtomically(file, BoundedYamlTest.aliasBomb(10, 2, 500));
      awaitErrors(p, port, 2);
      // 3. 100 MB over the main file.
      writeHuge(file, 100L << 20);
      awaitErrors(p, port, 3);
      // 4. The main file good again (the running config: no change), then a 10 MB override beside it.
      writeAtomically(file, yaml(port, List.of(a.url(), b.url())));
      writeHuge(override, 10L << 20);
      awaitErrors(p, port, 4);
      // It stays there for 30 scans: refused once, not again at every scan.
      long seen = reloadErrors(port);
      long lines = rejectedLines(p);
      // The scans are the proxy's own: 30 of them at config_scan_interval 100ms is 3 s of its time.
      long until = System.nanoTime() + 3_000_000_000L;
      Await.until("30 more scans pass", Duration.ofSeconds(20), Duration.ofMillis(100), () -> System.nanoTime() >= until);
      assertEquals(seen, reloadErrors(port), "the same broken file is counted once");
      assertEquals(lines, rejectedLines(p), "and logged once");
      // 5. Override gone, a real change: the watcher still applies changes.
      Files.delete(override);
      writeAtomically(file, yaml(port, List.of(b.url(), c.url())));
      Await.until("members [B, C]", Duration.ofSeconds(10), Duration.ofMillis(100), () -> {
        JsonObject s = DebugState.get(port);
        return s != null && Set.copyOf(s.getJsonArray("members").getList()).equals(Set.of(b.url(), c.url()));
      });
      LoadSenders running = load;
      long acceptedAtChange = running.accepted.get();
      Await.until("load goes on after the change", Duration.ofSeconds(10),
          () -> running.accepted.get() > acceptedAtChange + 20);
      load.stop();
      assertTrue(p.process.isAlive(), "the proxy is up:\n" + p.log());
      assertTrue(DebugState.awaitIdle(p, port, Duration.ofSeconds(30)), "drained");
      JsonObject state = DebugState.get(port);
      String problem = DebugState.accountingProblem(state, true);
      assertEquals(null, problem);

      long missing = 0;
      long duplicated = 0;
      String example = null;
      for (LoadSenders.SenderLog log : load.logs) {
        for (int seq = 0; seq < log.status.size(); seq++) {
          if (log.status.get(seq) != 202) continue;
          for (int i = 0; i < LoadSenders.METRICS_PER_BODY; i++) {
            int n = la.count(log.sender, seq, i) + lb.count(log.sender, seq, i) + lc.count(log.sender, seq, i);
            if (n == 0) missing++;
            if (n > 1) duplicated++;
            if (n != 1 && example == null) example = "s" + log.sender + ".b" + seq + ".m" + i + " x" + n;
          }
        }
      }
      long accepted = load.accepted.get();
      assertTrue(accepted > 100, "bodies accepted: " + accepted);
      assertEquals(0, load.other.get(), "requests answered neither 202 nor 503: " + load.otherExamples);
      assertEquals(0, missing, "accepted metrics lost, e.g. " + example);
      assertEquals(0, duplicated, "accepted metrics duplicated, e.g. " + example);
      JsonObject ct = state.getJsonObject("counters");
      assertEquals(accepted * LoadSenders.METRICS_PER_BODY, ct.getLong("received"));
      assertEquals(0L, ct.getLong("dropped_total"), ct.encode());
      assertEquals(la.total.get() + lb.total.get() + lc.total.get(), ct.getLong("forwarded"));
      for (String bad : List.of("OutOfMemoryError", "FATAL", "has been blocked for", "Thread blocked")) {
        assertTrue(p.output.stream().noneMatch(l -> l.contains(bad)), "the proxy logged " + bad + ":\n" + p.log());
      }
      assertTrue(p.logged("proxy-50-big.yaml is 10485760 bytes, over the bound of 262144"), p.log());
      assertEquals(0, p.terminate(Duration.ofSeconds(30)));
    } finally {
      if (load != null) load.requestStop();
      p.saveLog("ConfigBoundsIT");
      p.kill();
      p.process.waitFor();
      if (load != null) load.stop();
      a.stop();
      b.stop();
      c.stop();
    }
  }

  private static long load(ProxyProcess p, int port) {
    JsonObject s = DebugState.get(port);
    return s == null ? 0 : DebugState.counter(s, "received");
  }

  private static long rejectedLines(ProxyProcess p) {
    return p.output.stream().filter(l -> l.contains("config reload rejected")).count();
  }

  private static void awaitErrors(ProxyProcess p, int port, long n) {
    Await.until("config reload errors == " + n, Duration.ofSeconds(20), Duration.ofMillis(100), () -> {
      if (!p.process.isAlive()) throw new AssertionError("the proxy died:\n" + p.log());
      return reloadErrors(port) == n;
    });
  }

  @Test
  void atStartTheSameFilesAreExitTwoNamingTheBound() throws Exception {
    List<String[]> cases = new ArrayList<>();
    cases.add(new String[] {BoundedYamlTest.aliasBomb(16, 3), "aliases"});
    cases.add(new String[] {BoundedYamlTest.aliasBomb(10, 2, 500), "expands to more than 100000 YAML nodes"});
    cases.add(new String[] {null, "is 104857600 bytes, over the bound of 262144 bytes"});
    for (String[] k : cases) {
      Path file = dir.resolve("proxy.yaml");
      if (k[0] == null) writeHuge(file, 100L << 20);
      else writeAtomically(file, k[0]);
      ProxyProcess p = ProxyProcess.start(file, Map.of(), "-Xmx64m");
      assertTrue(p.process.waitFor(60, TimeUnit.SECONDS), "exited");
      assertEquals(2, p.process.exitValue(), p.log());
      Await.until("the reason is printed", () -> p.logged(k[1]));
      assertTrue(p.output.stream().noneMatch(l -> l.contains("OutOfMemoryError")), p.log());
    }
  }
}
