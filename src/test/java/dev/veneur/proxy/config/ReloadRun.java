package dev.veneur.proxy.config;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.ConsulDouble;
import dev.veneur.proxy.support.FaultyGlobal;
import dev.veneur.proxy.support.Ledger;
import dev.veneur.proxy.support.LoadSenders;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.StateMonitor;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;

/**
 * Issue 9: a config manager rewriting the proxy's file under load. The proxy runs as its own
 * process with -Xmx256m (the heap the issue saw run out on every event loop); four paced (10 bodies/s each)
 * closed-loop senders post real 1000-metric bodies with unique metric names; the file is replaced
 * atomically (temp file + rename) every second for {@value #REWRITES} s, alternating between two
 * destination sets of three healthy globals. Expected:
 *
 * <ul>
 *   <li>every rewrite takes effect: {@code /debug/state}'s {@code members} follow the file
 *       within {@link #APPLY_WITHIN} of each rewrite (the issue found {@code forward_addresses}
 *       never applied on reload);
 *   <li>no loss, no duplicates: each metric answered 202 arrives at exactly one global, exactly
 *       once; nothing is dropped (every global is healthy); metrics of refused bodies arrive
 *       nowhere;
 *   <li>the identity is exact at the end ({@code received = forwarded + dropped_total},
 *       {@code queued = queued_bytes = 0}, {@code forwarded} = what the globals got) and
 *       {@code queued}/{@code queued_bytes} never read negative, polled every 50 ms throughout;
 *   <li>the counters stay still once drained, watched until {@value #WATCH_AFTER_FIRST_CHANGE_S} s
 *       after the first change: the issue saw a hand-off lost during a change surface 30 s later
 *       as 54,000 {@code no_destination} drops and a negative {@code queued};
 *   <li>the process stays up and answers, logs no OutOfMemoryError, stays within its memory
 *       budget and an RSS bound, and exits 0 on SIGTERM with a summary equal to its counters.
 * </ul>
 *
 * <p>The globals answer after a delay chosen per run (far below every timeout, so they stay
 * healthy) so that at each change batches are queued and in flight for the destination that
 * leaves. One run of {@link #run} is one test; {@link ReloadUnderLoadIT} and
 * {@link ReloadAtQueueCapIT} choose the options.
 */
final class ReloadRun {
  static final int REWRITES = 20;
  static final Duration APPLY_WITHIN = Duration.ofSeconds(5);
  static final int WATCH_AFTER_FIRST_CHANGE_S = 32;
  static final long RSS_BOUND_MIB = 640;

  /**
   * @param label names the run in reports and the saved proxy log
   * @param list {@code forward_addresses} lists [A, B] / [B, C], else {@code forward_address} A / B
   * @param globalDelayMs how long the globals take to answer during the load
   * @param fastDrain whether the globals answer at once after the load, to drain a large queue fast
   * @param extraYaml more config lines, the same in every version of the file
   * @param consul the globals come from Consul instead: the file alternates between two Consul
   *     services, on two Consul agents, whose healthy instances are [A, B] and [B, C]
   */
  record Options(String label, boolean list, long globalDelayMs, boolean fastDrain, List<String> extraYaml,
      boolean consul) {
    Options(String label, boolean list, long globalDelayMs, boolean fastDrain, List<String> extraYaml) {
      this(label, list, globalDelayMs, fastDrain, extraYaml, false);
    }
  }

  private ReloadRun() {}

  /** {@code consulAgent} null: static destinations ({@code dests}), else that agent's service. */
  private static String yaml(int port, List<String> dests, boolean list, List<String> extra, String consulAgent,
      String consulService) {
    StringBuilder sb = new StringBuilder()
        .append("http_address: \"127.0.0.1:").append(port).append("\"\n")
        // Scans ten times a second [3s], so a rewrite applies well within its second.
        .append("config_scan_interval: \"100ms\"\n")
        // Shorter than the default 10s to keep the stop short.
        .append("shutdown_timeout: \"5s\"\n");
    for (String l : extra) sb.append(l).append('\n');
    if (consulAgent != null) {
      sb.append("consul_address: \"").append(consulAgent).append("\"\n");
      sb.append("consul_forward_service_name: \"").append(consulService).append("\"\n");
    } else if (list) {
      sb.append("forward_addresses:\n");
      for (String d : dests) sb.append("  - \"").append(d).append("\"\n");
    } else {
      sb.append("forward_address: \"").append(dests.get(0)).append("\"\n");
    }
    return sb.toString();
  }

  /** Replaces the file as editors and config managers do, so a scan never sees half a file. */
  private static void writeAtomically(Path file, String content) throws Exception {
    Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
    Files.writeString(tmp, content);
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  static void run(Vertx vertx, Path dir, Options o) throws Exception {
    boolean list = o.list();
    Ledger la = new Ledger();
    Ledger lb = new Ledger();
    Ledger lc = new Ledger();
    FaultyGlobal a = FaultyGlobal.start(vertx, FaultyGlobal.Mode.SLOW, la, null);
    FaultyGlobal b = FaultyGlobal.start(vertx, FaultyGlobal.Mode.SLOW, lb, null);
    FaultyGlobal c = FaultyGlobal.start(vertx, FaultyGlobal.Mode.SLOW, lc, null);
    for (FaultyGlobal g : List.of(a, b, c)) g.slowMs = o.globalDelayMs();
    List<List<String>> variants = list
        ? List.of(List.of(a.url(), b.url()), List.of(b.url(), c.url()))
        : List.of(List.of(a.url()), List.of(b.url()));
    String key = o.consul() ? "consul_forward_service_name" : list ? "forward_addresses" : "forward_address";
    List<ConsulDouble> agents = new ArrayList<>();
    if (o.consul()) {
      for (int v = 0; v < 2; v++) {
        ConsulDouble agent = ConsulDouble.start(vertx, "globals-" + v);
        List<ConsulDouble.Instance> instances = new ArrayList<>();
        for (String url : variants.get(v)) {
          int gport = Integer.parseInt(url.substring(url.lastIndexOf(':') + 1));
          instances.add(ConsulDouble.Instance.passing("node-" + gport, "127.0.0.1", gport));
        }
        agent.setInstances(instances);
        agents.add(agent);
      }
    }
    int port = TestProxy.freePort();
    java.util.function.IntFunction<String> version = v -> yaml(port, variants.get(v), list, o.extraYaml(),
        o.consul() ? agents.get(v).address() : null, "globals-" + v);
    Path file = dir.resolve("proxy.yaml");
    writeAtomically(file, version.apply(0));
    ProxyProcess p = ProxyProcess.start(file, Map.of(), "-Xmx256m");
    List<String> violations = new ArrayList<>();
    StringBuilder figures = new StringBuilder();
    StateMonitor mon = null;
    LoadSenders load = null;
    try {
      StateMonitor probe = StateMonitor.unstarted(port);
      Await.until("the proxy answers /debug/state", Duration.ofSeconds(60), Duration.ofMillis(100), () -> {
        if (!p.process.isAlive()) throw new AssertionError("the proxy exited at start:\n" + p.log());
        return probe.read() != null;
      });
      mon = StateMonitor.start(port, p, 50);
      StateMonitor m = mon;
      long loadStart = System.nanoTime();
      load = LoadSenders.start(port, 4, 10);
      int applied = 0;
      long firstChange = 0;
      List<Long> applyMs = new ArrayList<>();
      for (int k = 1; k <= REWRITES; k++) {
        long due = loadStart + k * 1_000_000_000L;
        long wait = due - System.nanoTime();
        if (wait > 0) LockSupport.parkNanos(wait);
        List<String> want = variants.get(k % 2);
        long wrote = System.nanoTime();
        if (k == 1) firstChange = wrote;
        writeAtomically(file, version.apply(k % 2));
        int rewrite = k;
        Set<String> wantSet = Set.copyOf(want);
        try {
          Await.until("rewrite " + k, APPLY_WITHIN, Duration.ofMillis(50), () -> {
            JsonObject s = m.read();
            return s != null && Set.copyOf(StateMonitor.strings(s.getJsonArray("members"))).equals(wantSet);
          });
          applied++;
          applyMs.add((System.nanoTime() - wrote) / 1_000_000);
        } catch (AssertionError e) {
          JsonObject s = m.read();
          violations.add("rewrite " + rewrite + " of " + REWRITES + " (" + key + ": " + want + ") did not take "
              + "effect within " + APPLY_WITHIN.toSeconds() + " s: /debug/state members are "
              + (s == null ? "(no answer)" : s.getJsonArray("members")) + "; no further rewrites");
          break;
        }
      }
      // The load runs its full time even when the rewrites stopped early.
      long loadEnd = loadStart + REWRITES * 1_000_000_000L + 500_000_000L;
      while (System.nanoTime() < loadEnd) LockSupport.parkNanos(loadEnd - System.nanoTime());
      load.stop();
      double loadSeconds = load.seconds();
      boolean aliveAfterLoad = p.process.isAlive();
      if (o.fastDrain()) {
        for (FaultyGlobal g : List.of(a, b, c)) g.mode.set(FaultyGlobal.Mode.HEALTHY);
      }

      // Drain, then watch the counters stand still until well past the first change.
      JsonObject[] settled = new JsonObject[1];
      String drainProblem = null;
      try {
        Await.until("queued == 0", Duration.ofSeconds(30), Duration.ofMillis(100), () -> {
          JsonObject s = m.read();
          if (s != null && s.getJsonObject("counters").getLong("queued") == 0) {
            settled[0] = s;
            return true;
          }
          return false;
        });
      } catch (AssertionError e) {
        JsonObject s = m.read();
        drainProblem = "the queue did not drain within 30 s after the load stopped: "
            + (s == null ? "/debug/state did not answer" : "counters " + s.getJsonObject("counters").encode());
        violations.add(drainProblem);
      }
      JsonObject state = settled[0];
      if (state != null && firstChange != 0) {
        long watchUntil = Math.max(firstChange + WATCH_AFTER_FIRST_CHANGE_S * 1_000_000_000L,
            System.nanoTime() + 2_000_000_000L);
        JsonObject before = state.getJsonObject("counters");
        while (System.nanoTime() < watchUntil) {
          LockSupport.parkNanos(200_000_000L);
          JsonObject s = m.read();
          if (s == null) continue;
          JsonObject now = s.getJsonObject("counters");
          if (!now.equals(before)) {
            violations.add(String.format("the counters moved %.1f s after the first change although the load had "
                    + "stopped and the queue had drained: %s, then %s", (System.nanoTime() - firstChange) / 1e9,
                before.encode(), now.encode()));
            break;
          }
        }
        JsonObject last = m.read();
        if (last != null) state = last;
      }
      mon.close();

      // Exactly once, across all three globals.
      long exact = 0, missing = 0, duplicated = 0, refusedDelivered = 0;
      String exMissing = null, exDup = null, exRefused = null;
      for (LoadSenders.SenderLog log : load.logs) {
        for (int seq = 0; seq < log.status.size(); seq++) {
          int status = log.status.get(seq);
          if (status == 0) continue;
          if (status != 202) {
            if (la.bodyTotal(log.sender, seq) + lb.bodyTotal(log.sender, seq) + lc.bodyTotal(log.sender, seq) > 0) {
              refusedDelivered++;
              if (exRefused == null) exRefused = "s" + log.sender + ".b" + seq + " (HTTP " + status + ")";
            }
            continue;
          }
          for (int i = 0; i < LoadSenders.METRICS_PER_BODY; i++) {
            int ca = la.count(log.sender, seq, i);
            int cb = lb.count(log.sender, seq, i);
            int cc = lc.count(log.sender, seq, i);
            int n = ca + cb + cc;
            String who = "s" + log.sender + ".b" + seq + ".m" + i + " (A " + ca + ", B " + cb + ", C " + cc + ")";
            if (n == 1) exact++;
            else if (n == 0) {
              missing++;
              if (exMissing == null) exMissing = who;
            } else {
              duplicated++;
              if (exDup == null) exDup = who;
            }
          }
        }
      }
      long accepted = load.accepted.get();
      if (accepted == 0) violations.add("no body was accepted: the load never flowed " + load.otherExamples);
      if (missing > 0) violations.add("lost: " + missing + " accepted metrics reached no global; e.g. " + exMissing);
      if (duplicated > 0) {
        violations.add("duplicated: " + duplicated + " accepted metrics reached the globals more than once; e.g. " + exDup);
      }
      if (refusedDelivered > 0) {
        violations.add(refusedDelivered + " bodies answered with an error still reached a global; e.g. " + exRefused);
      }
      if (load.other.get() > 0) {
        violations.add(load.other.get() + " requests got neither 202 nor 503: " + load.otherExamples);
      }
      if (load.refusedWithoutRetryAfter.get() > 0) {
        violations.add(load.refusedWithoutRetryAfter.get() + " 503s without Retry-After");
      }
      for (Ledger l : List.of(la, lb, lc)) {
        if (l.foreign.get() > 0) violations.add("a global got metrics no sender sent: " + l.firstForeign.get());
      }
      for (FaultyGlobal g : List.of(a, b, c)) {
        if (g.undecodable.get() > 0) violations.add(g.url() + " got undecodable bodies: " + g.firstDecodeError.get());
        if (g.abandoned.get() > 0) {
          violations.add(g.url() + " had " + g.abandoned.get() + " POSTs abandoned before its "
              + o.globalDelayMs() + " ms answer");
        }
      }
      long atGlobals = la.total.get() + lb.total.get() + lc.total.get();
      if (state != null) {
        JsonObject ct = state.getJsonObject("counters");
        long received = ct.getLong("received");
        long forwarded = ct.getLong("forwarded");
        long droppedTotal = ct.getLong("dropped_total");
        if (received != accepted * LoadSenders.METRICS_PER_BODY) {
          violations.add("received " + received + " != " + accepted + " bodies answered 202 x 1000");
        }
        if (received != forwarded + droppedTotal || ct.getLong("queued") != 0 || ct.getLong("queued_bytes") != 0) {
          violations.add("identity not exact once idle: " + ct.encode());
        }
        if (droppedTotal != 0) violations.add("dropped with every global healthy: " + ct.getJsonObject("dropped").encode());
        if (forwarded != atGlobals) {
          violations.add("forwarded " + forwarded + " != metrics the globals received " + atGlobals);
        }
      }
      if (mon.minQueued < 0 || mon.minQueuedBytes < 0) violations.add("a gauge read negative: " + mon.firstNegative);
      if (mon.failures > 0) {
        violations.add("/debug/state failed " + mon.failures + " of " + mon.polls + " polls; first: " + mon.firstFailure);
      }
      if (mon.firstOverBudget != null) violations.add("memory over budget: " + mon.firstOverBudget);
      long peakMib = mon.peakRssKib.get() / 1024;
      if (peakMib >= RSS_BOUND_MIB) violations.add("peak RSS " + peakMib + " MiB >= " + RSS_BOUND_MIB + " MiB");
      if (!aliveAfterLoad) violations.add("the proxy process died during the load");
      p.output.stream().filter(l -> l.contains("OutOfMemoryError") || l.contains("FATAL")).findFirst()
          .ifPresent(l -> violations.add("the proxy logged: " + l));

      ProxyProcess.StopSummary summary = null;
      if (p.process.isAlive()) {
        try {
          int code = p.terminate(Duration.ofSeconds(20));
          if (code != 0) violations.add("exit code " + code + " after SIGTERM");
        } catch (AssertionError e) {
          violations.add("the proxy did not exit within 20 s of SIGTERM");
        }
        summary = p.stopSummary();
        if (summary == null) violations.add("no stop summary line after SIGTERM");
        else if (state != null && drainProblem == null) {
          JsonObject ct = state.getJsonObject("counters");
          if (summary.received() != ct.getLong("received") || summary.forwarded() != ct.getLong("forwarded")
              || summary.dropped() != ct.getLong("dropped_total")) {
            violations.add("stop summary '" + summary.line().replaceAll(".*(stopped:)", "$1")
                + "' differs from the settled counters " + ct.encode());
          }
        }
      }

      figures.append(String.format("  %d of %d rewrites applied (ms each: %s)%n", applied, REWRITES, applyMs));
      figures.append(String.format("  load: %.1f s, %d requests, %d accepted, %d refused, %d other%n", loadSeconds,
          load.requests(), accepted, load.refused.get(), load.other.get()));
      figures.append(String.format("  globals: A %d, B %d, C %d; exactly once %d, missing %d, duplicated %d%n",
          la.total.get(), lb.total.get(), lc.total.get(), exact, missing, duplicated));
      figures.append(String.format("  proxy: %s; queued min %d max %d, queued_bytes min %d; peak RSS %d MiB; "
              + "member sets seen %s%n", state == null ? "no state" : state.getJsonObject("counters").encode(),
          mon.minQueued == Long.MAX_VALUE ? 0 : mon.minQueued, mon.maxQueued,
          mon.minQueuedBytes == Long.MAX_VALUE ? 0 : mon.minQueuedBytes, peakMib, mon.memberSets.size()));
      if (summary != null) figures.append("  stop: ").append(summary.line().replaceAll(".*(stopped:)", "$1")).append('\n');
      figures.append("  proxy log: ").append(p.saveLog("ReloadRun-" + o.label())).append('\n');
      String report = o.label() + ": "
          + (violations.isEmpty() ? "all expectations held\n" : violations.size() + " expectation(s) broken:\n")
          + (violations.isEmpty() ? "" : "  - " + String.join("\n  - ", violations) + "\n")
          + "figures:\n" + figures;
      System.out.println(report);
      if (!violations.isEmpty()) throw new AssertionError(report);
    } finally {
      if (load != null) load.requestStop();
      if (mon != null) mon.close();
      p.kill();
      p.process.waitFor();
      if (load != null) load.stop();
      a.stop();
      b.stop();
      c.stop();
      for (ConsulDouble agent : agents) agent.close();
    }
  }
}
