package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.ConsulDouble;
import dev.veneur.proxy.support.ConsulDouble.Instance;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.FaultyGlobal;
import dev.veneur.proxy.support.Ledger;
import dev.veneur.proxy.support.LoadSenders;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.StateMonitor;
import dev.veneur.proxy.support.StatsdSink;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 21, items 2 and 7, against the proxy as its own process with {@code -Xmx256m}, its
 * members from a Consul agent double that answers as Consul does, beside a real load (4 senders x
 * 10 bodies/s of 1000 real metrics, each name unique). Each test ends with the identity
 * {@code received = forwarded + dropped + queued} once idle, nothing dropped, every metric answered
 * 202 delivered exactly once at the owner the ring over the good members gives it, and exit 0 on
 * SIGTERM.
 */
@ExtendWith(VertxExtension.class)
@Timeout(value = 150, unit = TimeUnit.SECONDS)
class ConsulMembersIT {
  static final String SVC = "veneur-global";
  /** What a forged log line would start with, were an address's newline written raw. */
  static final String FORGED = "2026-01-01T00:00:00.000Z ERROR [main] d.v.p.Forged - ";
  private static final Pattern ERROR_LINE = Pattern.compile("^\\S+ ERROR ");

  @TempDir Path dir;
  private final List<FaultyGlobal> globals = new ArrayList<>();
  private final List<Ledger> ledgers = new ArrayList<>();
  private ConsulDouble consul;
  private StatsdSink stats;
  private ProxyProcess proxy;
  private LoadSenders load;

  @AfterEach
  void cleanUp(org.junit.jupiter.api.TestInfo info) {
    if (proxy != null) proxy.saveLog("ConsulMembersIT-" + info.getTestMethod().map(m -> m.getName()).orElse("run"));
    if (load != null) load.stop();
    if (proxy != null && proxy.process.isAlive()) proxy.kill();
    for (FaultyGlobal g : globals) g.stop();
    if (consul != null) consul.close();
    if (stats != null) stats.close();
  }

  private void startGlobals(Vertx vertx) {
    for (int i = 0; i < 3; i++) {
      Ledger l = new Ledger();
      ledgers.add(l);
      globals.add(FaultyGlobal.start(vertx, FaultyGlobal.Mode.HEALTHY, l, null));
    }
  }

  private Set<String> goodUrls() {
    Set<String> s = new TreeSet<>();
    for (FaultyGlobal g : globals) s.add(g.url());
    return s;
  }

  private int startProxy(Vertx vertx, List<Instance> instances) throws Exception {
    consul = ConsulDouble.start(vertx, SVC);
    consul.setInstances(instances);
    stats = StatsdSink.start(vertx);
    int port = TestProxy.freePort();
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "consul_forward_service_name: \"" + SVC + "\"",
        "consul_address: \"" + consul.address() + "\"",
        "consul_refresh_interval: \"10s\"",
        "consul_startup_timeout: \"30s\"",
        "stats_address: \"" + stats.address() + "\"",
        "stats_interval: \"200ms\"",
        "shutdown_timeout: \"5s\"",
        ""));
    proxy = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    Await.until("the proxy answers /debug/state", Duration.ofSeconds(60), Duration.ofMillis(100), () -> {
      if (!proxy.process.isAlive()) throw new AssertionError("the proxy exited at start:\n" + proxy.log());
      return DebugState.get(port) != null;
    });
    return port;
  }

  private static Set<String> members(int port) {
    JsonObject s = DebugState.get(port);
    return s == null ? Set.of() : new TreeSet<>(StateMonitor.strings(s.getJsonArray("members")));
  }

  /** Runs the load for {@code seconds}, calling {@code each} about every 500 ms. */
  private void loadFor(int port, double seconds, Runnable each) {
    load = LoadSenders.start(port, 4, 10);
    long end = System.nanoTime() + (long) (seconds * 1e9);
    while (System.nanoTime() < end) {
      LockSupport.parkNanos(500_000_000L);
      each.run();
    }
    load.stop();
  }

  /**
   * The end of every run: idle, the identity exact, nothing dropped, each metric answered 202
   * delivered exactly once at its owner on the ring over the good members, and a clean stop.
   */
  private void assertEverythingDelivered(int port, String name, boolean placement) throws Exception {
    Path saved = proxy.saveLog("ConsulMembersIT-" + name);
    assertTrue(DebugState.awaitIdle(proxy, port, Duration.ofSeconds(30)), "the queue drains; log " + saved);
    JsonObject state = DebugState.get(port);
    assertNull(DebugState.accountingProblem(state, true), "log " + saved);
    JsonObject c = state.getJsonObject("counters");
    long accepted = load.accepted.get();
    assertTrue(accepted > 0, "the load flowed: " + accepted + " bodies answered 202; " + load.otherExamples);
    assertEquals(accepted * LoadSenders.METRICS_PER_BODY, c.getLong("received"), "received = 1000 x bodies answered 202");
    assertEquals(0L, c.getLong("dropped_total"), "nothing dropped (no_destination or else): " + c.getValue("dropped"));
    HashRing ring = HashRing.of(new ArrayList<>(goodUrls()));
    long once = 0;
    long missing = 0;
    long duplicated = 0;
    long misplaced = 0;
    List<String> wrong = new ArrayList<>();
    for (LoadSenders.SenderLog log : load.logs) {
      for (int seq = 0; seq < log.status.size(); seq++) {
        if (log.status.get(seq) != 202) continue;
        for (int i = 0; i < LoadSenders.METRICS_PER_BODY; i++) {
          String owner = ring.owner(LoadSenders.keyHash(log.sender, seq, i));
          int atOwner = 0;
          int total = 0;
          for (int g = 0; g < globals.size(); g++) {
            int n = ledgers.get(g).count(log.sender, seq, i);
            total += n;
            if (globals.get(g).url().equals(owner)) atOwner += n;
          }
          if (total == 0) missing++;
          else if (total > 1) duplicated++;
          else if (placement && atOwner != 1) misplaced++;
          else once++;
          if ((total != 1 || (placement && atOwner != 1)) && wrong.size() < 5) {
            wrong.add("s" + log.sender + ".b" + seq + ".m" + i + ": " + total + " copies, " + atOwner + " at " + owner);
          }
        }
      }
    }
    long atGlobals = 0;
    for (Ledger l : ledgers) atGlobals += l.total.get();
    System.out.printf("ConsulMembersIT %s: %d bodies answered 202 (%d metrics), %d delivered once%s, %d twice or more,"
        + " %d missing; forwarded %d; globals received %d%n", name, accepted, accepted * LoadSenders.METRICS_PER_BODY,
        once, placement ? " at their owner" : "", duplicated, missing, c.getLong("forwarded"), atGlobals);
    assertEquals(0, missing, "every metric answered 202 is delivered; e.g. " + wrong + "; log " + saved);
    assertEquals(0, misplaced, "each at its owner on the ring over the good members; e.g. " + wrong);
    // Delivery is exactly once except across a POST cut at forward_timeout before its answer
    // (README, "Delivery guarantee"): only then may a retry deliver a batch twice.
    boolean timedOut = proxy.output.stream().anyMatch(l -> l.contains("within forward_timeout"));
    if (!timedOut) assertEquals(0, duplicated, "delivered twice with no POST timed out; e.g. " + wrong);
    assertEquals(c.getLong("forwarded") + duplicated, atGlobals, "forwarded = what the globals received, less duplicates");
    assertEquals(0, proxy.terminate(), "exit code on SIGTERM; log " + saved);
    assertTrue(proxy.output.stream().noneMatch(l -> l.contains("OutOfMemoryError") || l.contains("FATAL")),
        "no OutOfMemoryError; log " + saved);
  }

  /**
   * (a) Every instance registered with its port inside Service.Address (node addresses valid):
   * the issue saw each become http://[127.0.0.1:port]:port, no forwarder start, the ring empty,
   * and 116,246 of 1,371,000 accepted metrics dropped no_destination. Read as host:port, the
   * members are the Go proxy v2's (node address + Service.Port) and nothing is lost.
   */
  @Test
  void everyInstanceWithItsPortInsideServiceAddress(Vertx vertx) throws Exception {
    startGlobals(vertx);
    List<Instance> instances = new ArrayList<>();
    for (FaultyGlobal g : globals) {
      instances.add(new Instance("node-" + g.port(), "127.0.0.1", "veneur", "127.0.0.1:" + g.port(), g.port(), "passing"));
    }
    int port = startProxy(vertx, instances);
    Await.until("the members are host:port from Service.Address", Duration.ofSeconds(30),
        () -> members(port).equals(goodUrls()));
    loadFor(port, 5, () -> { });
    assertEverythingDelivered(port, "port-in-address", true);
  }

  /**
   * (b) Good instances beside garbage ones (port 70000, a newline in the address that would forge
   * a log line, a path and query), with Consul answering again every half second: the good ones
   * get everything; each garbage instance is skipped alone, counted by cause, and logged escaped
   * and throttled; no ERROR at all (the issue saw one per POST to port 70000, to Sentry).
   */
  @Test
  void garbageMembersBesideGoodOnes(Vertx vertx) throws Exception {
    startGlobals(vertx);
    List<Instance> instances = new ArrayList<>();
    for (FaultyGlobal g : globals) instances.add(Instance.passing("node-" + g.port(), "127.0.0.1", g.port()));
    int some = globals.get(0).port();
    instances.add(new Instance("bad-port", "127.0.0.1", "veneur", "127.0.0.1", 70000, "passing"));
    instances.add(new Instance("bad-newline", "127.0.0.1", "veneur", "127.0.0.1\n" + FORGED + "forged line", some, "passing"));
    instances.add(new Instance("bad-path", "127.0.0.1", "veneur", "127.0.0.1/x?y=", 19002, "passing"));
    instances.add(new Instance("bad-node\n" + FORGED + "node", "127.0.0.1\r\n" + FORGED + "node address", "veneur", "",
        some, "passing"));
    int port = startProxy(vertx, instances);
    Await.until("the good instances are the members", Duration.ofSeconds(30), () -> members(port).equals(goodUrls()));
    int before = consul.requests.get();
    List<Instance> reordered = new ArrayList<>(instances);
    // Consul answers again (a new index) every half second: each answer is checked anew.
    loadFor(port, 5, () -> {
      java.util.Collections.rotate(reordered, 1);
      consul.setInstances(reordered);
    });
    assertTrue(consul.requests.get() - before >= 3, "Consul answered again and again: " + (consul.requests.get() - before));
    assertEquals(goodUrls(), members(port));
    Await.until("each cause counted in the self-metrics", () ->
        counted("cause:port") && counted("cause:control_character") && counted("cause:path"));
    List<String> out = List.copyOf(proxy.output);
    assertEverythingDelivered(port, "garbage-members", true);
    long errors = 0;
    for (String line : out) {
      assertTrue(!line.startsWith(FORGED.substring(0, 24)), "a forged line reached the log: " + line);
      assertTrue(!line.contains("uncaught exception"), "no exception escapes to an event loop: " + line);
      if (ERROR_LINE.matcher(line).find()) {
        errors++;
        assertTrue(!line.contains("70000") && !line.contains("x?y=") && !line.contains("bad-"),
            "no ERROR about a garbage member: " + line);
      }
    }
    // With every good global healthy there is nothing to say at ERROR; a starved shared machine
    // may make all three look slow at once (one 'every member is ejected'), no more.
    assertTrue(errors <= 1, errors + " ERROR lines");
    long skipLines = out.stream().filter(l -> l.contains("skipping instance")).count();
    assertTrue(skipLines >= 3 && skipLines <= 8,
        "skipped instances logged once per cause per minute, not once per answer: " + skipLines + " lines");
    assertTrue(out.stream().anyMatch(l -> l.contains("127.0.0.1\\n" + FORGED)), "the newline is shown escaped");
  }

  private boolean counted(String cause) {
    for (StatsdSink.Line l : stats.lines) {
      if (l.name().equals("veneur_proxy.discoverer.invalid_members") && l.tags().contains(cause) && l.value() > 0) return true;
    }
    return false;
  }

  /**
   * (c) A 200 MB Consul answer (the issue: OutOfMemoryError, exit 3): it is read only up to
   * consul_max_answer_bytes (16 MiB), counted as a discovery error, logged once however often it
   * comes back, and the last good members keep every metric; a good answer afterwards applies.
   */
  @Test
  void anOversizeConsulAnswerUnderLoad(Vertx vertx) throws Exception {
    startGlobals(vertx);
    List<Instance> instances = new ArrayList<>();
    for (FaultyGlobal g : globals) instances.add(Instance.passing("node-" + g.port(), "127.0.0.1", g.port()));
    int port = startProxy(vertx, instances.subList(0, 2));
    Set<String> two = new TreeSet<>(List.of(globals.get(0).url(), globals.get(1).url()));
    Await.until("two members", Duration.ofSeconds(30), () -> members(port).equals(two));
    load = LoadSenders.start(port, 4, 10);
    LockSupport.parkNanos(1_000_000_000L);
    consul.setHugeAnswer(200L << 20);
    Await.until("oversize answers refused, again and again", Duration.ofSeconds(60), Duration.ofMillis(200), () -> {
      assertTrue(proxy.process.isAlive(), "the proxy lives through the huge answers:\n" + proxy.log());
      // A /debug/state poll that misses its own timeout on this busy machine says nothing.
      JsonObject st = DebugState.get(port);
      if (st == null) return false;
      assertEquals(two, new TreeSet<>(StateMonitor.strings(st.getJsonArray("members"))), "the last good members stay");
      return stats.counterSum("veneur_proxy.discoverer.errors", "service:" + SVC) >= 3;
    });
    consul.setInstances(instances);
    Await.until("the good answer applies after the huge ones", Duration.ofSeconds(30),
        () -> members(port).equals(goodUrls()));
    LockSupport.parkNanos(1_000_000_000L);
    load.stop();
    List<String> discoveryErrors = proxy.output.stream()
        .filter(l -> ERROR_LINE.matcher(l).find() && l.contains("ConsulDiscoveryVerticle")).toList();
    // The first failed answer is logged (on a starved machine it may be the deadline rather than
    // the cap that cut it first); the rest are only counted.
    assertEquals(1, discoveryErrors.size(), "the oversize answers are logged once for the episode: " + discoveryErrors);
    System.out.println("ConsulMembersIT oversize: " + discoveryErrors.get(0));
    System.out.printf("ConsulMembersIT oversize: the double wrote %d bytes of the last 200 MiB answer%n",
        consul.hugeBytesWritten.get());
    assertTrue(consul.hugeBytesWritten.get() < (64L << 20),
        "the proxy stopped reading an answer early: " + consul.hugeBytesWritten.get() + " bytes written");
    // The ring changed under load (two members, then three): the placement check uses all three
    // only for what was sent after, so check delivery across the globals here, exactly once.
    assertEverythingDelivered(port, "oversize-answer", false);
  }
}
