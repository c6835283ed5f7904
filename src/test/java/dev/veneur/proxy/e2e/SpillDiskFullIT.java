package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.FaultyGlobal;
import dev.veneur.proxy.support.Ledger;
import dev.veneur.proxy.support.LoadSenders;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.StatsdSink;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.support.TinyFs;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 21 item 5: {@code spill_dir} on a real disk that fills (a 32 MB tmpfs), in a real proxy
 * process beside a real load. The disk fills: spilling reports failing (in /debug/state and the
 * self-metrics) with one ERROR, and the proxy goes on answering 202. Space is freed: spilling
 * recovers by itself. Then durability is proven, not assumed: with the global stalled, what is
 * accepted after the recovery is on disk (nothing more counted not kept), the proxy is killed
 * with {@code kill -9}, and the next start replays it. In the end every metric answered 202 was
 * delivered and the accounting identity holds in both runs.
 */
@ExtendWith(VertxExtension.class)
class SpillDiskFullIT {

  @Test
  void aFullDiskIsSurvivedAndDurabilityResumesWhenSpaceReturns(Vertx vertx, @TempDir Path tmp) throws Exception {
    try (TinyFs fs = TinyFs.mount(tmp.resolve("fs"), "32m")) {
      run(vertx, tmp, fs);
    }
  }

  private void run(Vertx vertx, Path tmp, TinyFs fs) throws Exception {
    Ledger ledger = new Ledger();
    FaultyGlobal global = FaultyGlobal.start(vertx, FaultyGlobal.Mode.HEALTHY, ledger, null);
    StatsdSink stats = StatsdSink.start(vertx);
    int port = TestProxy.freePort();
    Path spill = fs.dir.resolve("spill");
    Path yaml = tmp.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "forward_address: \"" + global.url() + "\"",
        "spill_dir: \"" + spill + "\"",
        "stats_address: \"" + stats.address() + "\"",
        "stats_interval: \"500ms\"",
        // The stalled global of the last phase must not turn into drops: no timeout, no ejection.
        "forward_timeout: \"120s\"",
        "eject_after_failures: 0",
        "batch_linger: \"10ms\"", ""));
    fs.fillLeaving(1 << 20);

    ProxyProcess first = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    LoadSenders load = null;
    long notKept;
    double bytesPerMetric;
    double secondsToFail;
    double secondsToRecover;
    try {
      Await.until("proxy up", Duration.ofSeconds(60), () -> DebugState.get(port) != null);
      LoadSenders running = LoadSenders.start(port, 2, 8);
      load = running;
      long loadStarted = System.nanoTime();

      // 1. The disk fills under the load: failing, shown, counted, one ERROR; 202s go on.
      Await.until("spill reported failing", Duration.ofSeconds(60), () -> "failing".equals(spillState(port).getString("status")));
      secondsToFail = (System.nanoTime() - loadStarted) / 1e9;
      JsonObject failing = spillState(port);
      assertTrue(failing.getString("last_error", "").contains("No space left"), failing.encode());
      Await.until("spill.failing 1 in the self-metrics", Duration.ofSeconds(30),
          () -> stats.lines.stream().anyMatch(l -> l.name().endsWith("spill.failing") && l.value() == 1));
      long acceptedWhileFull = running.accepted.get();
      Await.until("202s go on while the disk is full", Duration.ofSeconds(30), () -> running.accepted.get() > acceptedWhileFull + 20);
      assertTrue(spillState(port).getLong("metrics_not_kept") > 0, "metrics accepted without disk are counted");

      // 2. Space returns: spilling recovers by itself.
      fs.freeBallast();
      long freed = System.nanoTime();
      Await.until("spill recovered", Duration.ofSeconds(60), () -> "ok".equals(spillState(port).getString("status")));
      secondsToRecover = (System.nanoTime() - freed) / 1e9;
      JsonObject recovered = spillState(port);
      notKept = recovered.getLong("metrics_not_kept");
      // Everything accepted so far (which includes all that was not kept) reaches the global
      // before the crash below, so the crash can lose none of it.
      List<int[]> before = accepted(load);
      Await.until("what was accepted before the recovery delivered", Duration.ofSeconds(60),
          () -> missing(ledger, before) == 0);

      // 3. Durability resumed: with the global stalled, what is accepted is kept on disk only.
      global.mode.set(FaultyGlobal.Mode.HANG);
      long stalledAt = running.accepted.get();
      Await.until("bodies accepted while the global is stalled", Duration.ofSeconds(60), () -> running.accepted.get() >= stalledAt + 20);
      JsonObject atKillState = DebugState.get(port);
      JsonObject atKill = atKillState.getJsonObject("spill");
      bytesPerMetric = (double) atKill.getLong("bytes_written") / DebugState.counter(atKillState, "received");
      assertEquals(notKept, atKill.getLong("metrics_not_kept"), "everything accepted since the recovery is on disk: " + atKill);
      assertEquals("ok", atKill.getString("status"), atKill.encode());
      assertNull(DebugState.accountingProblem(atKillState, false), atKillState.encode());
      assertEquals(0, DebugState.counter(atKillState, "dropped_total"), "nothing dropped: " + atKillState.encode());
      long errorLines = first.output.stream().filter(l -> l.contains(" ERROR ") && l.contains("spill_dir")).count();
      assertEquals(1, errorLines, "one ERROR for the episode, not one per event loop and attempt:\n" + first.log());
      first.kill();
      first.process.waitFor();
    } finally {
      if (load != null) load.stop();
      first.kill();
      first.saveLog("SpillDiskFullIT-first");
    }
    List<int[]> all = accepted(load);
    try (Stream<Path> files = Files.list(spill)) {
      assertTrue(files.anyMatch(p -> p.toString().endsWith(".spill")), "the crash left spill files");
    }

    // 4. The next start replays it: every metric answered 202 is delivered.
    global.mode.set(FaultyGlobal.Mode.HEALTHY);
    ProxyProcess second = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    try {
      Await.until("second proxy up", Duration.ofSeconds(60), () -> DebugState.get(port) != null);
      Await.until("every metric answered 202 delivered", Duration.ofSeconds(120), () -> missing(ledger, all) == 0);
      assertTrue(DebugState.awaitIdle(second, port, Duration.ofSeconds(60)), second.log());
      JsonObject state = DebugState.get(port);
      assertNull(DebugState.accountingProblem(state, true), String.valueOf(state));
      long replayed = DebugState.counter(state, "received");
      assertTrue(replayed > 0, "the second run replayed the stalled backlog: " + state);
      assertEquals(replayed, DebugState.counter(state, "forwarded"), "all of it forwarded: " + state);
      Await.until("settled spill files deleted", Duration.ofSeconds(30), () -> spillState(port).getInteger("segments") == 0);
      try (Stream<Path> files = Files.list(spill)) {
        assertEquals(0, files.filter(p -> p.toString().endsWith(".spill")).count());
      }
      System.out.printf("spill on a full disk: failing %.1f s after the load started, ok again %.1f s after "
          + "space was freed; %d bodies answered 202 (%d metrics); %d metrics accepted while "
          + "the disk was full were not kept (delivered from memory); after recovery and kill -9, %d replayed; "
          + "all delivered, %d copies in all; %.1f bytes written to spill_dir per metric%n", secondsToFail, secondsToRecover, all.size(), (long) all.size() * LoadSenders.METRICS_PER_BODY,
          notKept, replayed, ledger.total.get(), bytesPerMetric);
      assertEquals(0, second.terminate(), second.log());
    } finally {
      second.kill();
      second.saveLog("SpillDiskFullIT-second");
    }
  }

  private static JsonObject spillState(int port) {
    JsonObject s = DebugState.get(port);
    return s == null ? new JsonObject() : s.getJsonObject("spill", new JsonObject());
  }

  /** (sender, seq) of every body answered 202 so far. */
  private static List<int[]> accepted(LoadSenders load) {
    List<int[]> out = new ArrayList<>();
    for (LoadSenders.SenderLog log : load.logs) {
      List<Integer> status;
      synchronized (log.status) {
        status = new ArrayList<>(log.status);
      }
      for (int seq = 0; seq < status.size(); seq++) if (status.get(seq) == 202) out.add(new int[] {log.sender, seq});
    }
    return out;
  }

  private static long missing(Ledger ledger, List<int[]> bodies) {
    long missing = 0;
    for (int[] b : bodies) {
      for (int i = 0; i < LoadSenders.METRICS_PER_BODY; i++) if (ledger.count(b[0], b[1], i) == 0) missing++;
    }
    return missing;
  }
}
