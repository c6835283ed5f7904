package dev.veneur.proxy.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.ConsulDouble.Instance;
import dev.veneur.proxy.support.ConsulDouble;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Consul discovery against a Consul HTTP API double on a real port, with real globals. Refresh
 * intervals are long (5m) unless a test needs otherwise, so a change that reaches the ring in
 * seconds proves the blocking queries work, not the poll.
 */
@ExtendWith(VertxExtension.class)
class ConsulDiscoveryIT {
  static final String SVC = "veneur-global";

  private Vertx vertx;
  private ConsulDouble consul;
  private TestGlobal a;
  private TestGlobal b;
  private TestGlobal c;
  private TestProxy proxy;
  private int bodySeq;

  @BeforeEach
  void start(Vertx vertx) {
    this.vertx = vertx;
    consul = ConsulDouble.start(vertx, SVC);
    a = TestGlobal.start(vertx);
    b = TestGlobal.start(vertx);
    c = TestGlobal.start(vertx);
  }

  @AfterEach
  void stop() {
    if (proxy != null) proxy.stop();
    consul.close();
  }

  private TestProxy startProxy(String refresh) {
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("consul_forward_service_name", SVC)
        .put("consul_address", consul.address())
        .put("consul_token", "s3cret")
        .put("consul_refresh_interval", refresh)
        .put("consul_startup_timeout", "15s"));
    return proxy;
  }

  private static Instance node(String name, TestGlobal g) {
    return Instance.passing(name, "127.0.0.1", g.port());
  }

  private static Set<String> urls(TestGlobal... gs) {
    Set<String> s = new TreeSet<>();
    for (TestGlobal g : gs) s.add(g.url());
    return s;
  }

  private void awaitMembers(Set<String> expected) {
    Await.equal("ring members", expected, () -> new TreeSet<>(proxy.ringMembers()));
  }

  /** Posts n fresh metrics and checks each arrives once, at the owner on the expected ring. */
  private void postAndCheckPlacement(int n, Set<String> expectedMembers, TestGlobal... globals) {
    for (TestGlobal g : globals) {
      g.metrics.clear();
    }
    JsonArray body = Bodies.generate("consul" + (bodySeq++), n, bodySeq);
    assertEquals(202, proxy.post(Bodies.deflate(Bodies.utf8(body.encode())), "deflate").statusCode());
    Await.until(n + " metrics delivered", () -> {
      int sum = 0;
      for (TestGlobal g : globals) sum += g.metrics.size();
      return sum == n;
    });
    proxy.awaitSettled();
    HashRing ring = HashRing.of(new ArrayList<>(expectedMembers));
    Set<String> seen = new HashSet<>();
    for (TestGlobal g : globals) {
      for (JsonObject m : g.metrics) {
        String key = Bodies.key(m);
        assertTrue(seen.add(key), "delivered twice: " + key);
        assertEquals(ring.owner(HashRing.hashKey(key)), g.url(), "placement of " + key);
      }
    }
  }

  @Test
  void nodesSharingOneServiceIdAllReceiveTheirShare() {
    // Every node registers the service under the same ID, as in the captured Consul answer.
    consul.setInstances(List.of(node("node-a", a), node("node-b", b), node("node-c", c)));
    startProxy("5m");
    awaitMembers(urls(a, b, c));
    postAndCheckPlacement(3000, urls(a, b, c), a, b, c);
    // Each node gets its ring share (placement checked above, metric by metric). How large that
    // share is depends on the ports the globals got (they are in the members the ring hashes): a
    // fixed floor such as "over 300 of 3000" failed when a port draw gave one node 4.8%.
    for (TestGlobal g : List.of(a, b, c)) {
      assertTrue(g.metrics.size() > 0, "each node gets a share: " + g.metrics.size());
    }
    assertEquals("s3cret", consul.lastToken, "the ACL token reaches Consul");
    // The blocking query follows the first answer after the importer's minimum gap (100 ms); on a
    // fast machine the placement check above can finish sooner, so wait for it rather than race.
    Await.until("the importer uses blocking queries", () -> consul.blockingRequests.get() > 0);
    // The importer records its sync once its registrations complete, which the ring may see first.
    Await.equal("destinations gauge", 3L, () -> {
      var g = proxy.metrics().registry().getGauges().get("discoverer.destination_number#service:" + SVC);
      return g == null ? null : g.getValue();
    });
    Await.until("an update was timed", () -> {
      var t = proxy.metrics().registry().getTimers().get("discoverer.update_duration_ns#service:" + SVC);
      return t != null && t.getCount() > 0;
    });
  }

  @Test
  void capturedConsulAnswersBecomeMembers() throws Exception {
    consul.setRawAnswer(fixture("health_service_two.json"));
    startProxy("5m");
    awaitMembers(Set.of("http://10.1.10.12:8000", "http://10.1.10.13:8000"));
    consul.setRawAnswer(fixture("health_service_one.json"));
    Set<String> one = new TreeSet<>();
    for (Object o : new JsonArray(fixture("health_service_one.json"))) {
      JsonObject e = (JsonObject) o;
      one.add("http://" + e.getJsonObject("Service").getString("Address") + ":"
          + e.getJsonObject("Service").getInteger("Port"));
    }
    awaitMembers(one);
    long errors = proxy.metrics().count("discoverer.errors", "service", SVC);
    consul.setRawAnswer(fixture("health_service_zero.json"));
    Await.until("zero healthy counted as a discovery error",
        () -> proxy.metrics().count("discoverer.errors", "service", SVC) > errors);
    assertEquals(one, new TreeSet<>(proxy.ringMembers()), "an empty answer keeps the last ring");
  }

  private static String fixture(String name) {
    return new String(Bodies.resource("fixtures/veneur-v2.0.0/consul/" + name), StandardCharsets.UTF_8);
  }

  @Test
  void checksTurningCriticalAndNodesJoiningMoveOnlyTheChangedMembersKeys() {
    Instance na = node("node-a", a);
    Instance nb = node("node-b", b);
    Instance nc = node("node-c", c);
    consul.setInstances(List.of(na, nb, nc));
    startProxy("5m");
    awaitMembers(urls(a, b, c));

    List<String[]> keys = new ArrayList<>();
    for (int i = 0; i < 3000; i++) keys.add(new String[] {"churn.key." + i, "counter", "env:test,n:" + (i % 7)});
    Map<Integer, String> before = routes(keys);

    consul.setInstances(List.of(na, nb, nc.withStatus("critical")));
    awaitMembers(urls(a, b));
    Map<Integer, String> without = routes(keys);
    int moved = 0;
    for (int i = 0; i < keys.size(); i++) {
      boolean wasOnC = before.get(i).equals(c.url());
      boolean changed = !before.get(i).equals(without.get(i));
      assertEquals(wasOnC, changed, "key " + i + " moves iff its owner left");
      if (changed) moved++;
    }
    assertTrue(moved > 0);
    postAndCheckPlacement(2000, urls(a, b), a, b, c);
    assertEquals(0, c.metrics.size(), "nothing reaches the member that left");

    // c passes its check again, and a fourth node joins: keys move only onto them.
    TestGlobal d = TestGlobal.start(vertx);
    consul.setInstances(List.of(na, nb, nc, node("node-d", d)));
    awaitMembers(urls(a, b, c, d));
    Map<Integer, String> withD = routes(keys);
    for (int i = 0; i < keys.size(); i++) {
      String now = withD.get(i);
      if (!now.equals(without.get(i))) {
        assertTrue(now.equals(c.url()) || now.equals(d.url()), "key " + i + " moved only to a joiner");
      }
    }
    postAndCheckPlacement(2000, urls(a, b, c, d), a, b, c, d);
  }

  private Map<Integer, String> routes(List<String[]> keys) {
    Map<Integer, String> out = new HashMap<>();
    for (int i = 0; i < keys.size(); i++) {
      String[] k = keys.get(i);
      out.put(i, proxy.route(k[0], k[1], k[2]));
    }
    return out;
  }

  @Test
  void serviceAddressWinsOverNodeAddress() {
    // 192.0.2.1 is TEST-NET-1: nothing answers there, so a delivery proves the service address won.
    consul.setInstances(List.of(
        new Instance("node-a", "192.0.2.1", "veneur", "127.0.0.1", a.port(), "passing"),
        new Instance("node-b", "127.0.0.1", "veneur", "", b.port(), "passing")));
    startProxy("5m");
    awaitMembers(urls(a, b));
    postAndCheckPlacement(1000, urls(a, b), a, b);
  }

  @Test
  void nodeAddressAsTheGoProxyTookItWhenAsked() {
    // The reverse of the test above: the node's address is the reachable one, the service's is
    // TEST-NET-1, and consul_member_address: node (the Go proxy v2's choice) picks the node's.
    consul.setInstances(List.of(
        new Instance("node-a", "127.0.0.1", "veneur", "192.0.2.1", a.port(), "passing"),
        new Instance("node-b", "127.0.0.1", "veneur", "", b.port(), "passing")));
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("consul_forward_service_name", SVC)
        .put("consul_address", consul.address())
        .put("consul_member_address", "node")
        .put("consul_refresh_interval", "5m")
        .put("consul_startup_timeout", "15s"));
    awaitMembers(urls(a, b));
    postAndCheckPlacement(1000, urls(a, b), a, b);
  }

  @Test
  void consulFailuresKeepTheLastGoodMembers() {
    consul.setInstances(List.of(node("node-a", a), node("node-b", b)));
    startProxy("1s");
    awaitMembers(urls(a, b));

    for (ConsulDouble.Mode bad : List.of(ConsulDouble.Mode.ERROR_500, ConsulDouble.Mode.HANG)) {
      long errors = proxy.metrics().count("discoverer.errors", "service", SVC);
      consul.mode(bad);
      Await.until("Consul " + bad + " counted", Duration.ofSeconds(30),
          () -> proxy.metrics().count("discoverer.errors", "service", SVC) > errors);
      postAndCheckPlacement(500, urls(a, b), a, b);
      consul.mode(ConsulDouble.Mode.OK);
    }

    long errors = proxy.metrics().count("discoverer.errors", "service", SVC);
    consul.down();
    Await.until("Consul down counted", () -> proxy.metrics().count("discoverer.errors", "service", SVC) > errors);
    postAndCheckPlacement(500, urls(a, b), a, b);

    consul.setInstances(List.of());
    consul.up();
    long beforeEmpty = proxy.metrics().count("discoverer.errors", "service", SVC);
    Await.until("empty answer counted", () -> proxy.metrics().count("discoverer.errors", "service", SVC) > beforeEmpty);
    postAndCheckPlacement(500, urls(a, b), a, b);

    // Recovery: the next healthy answer is applied.
    consul.setInstances(List.of(node("node-a", a), node("node-b", b), node("node-c", c)));
    awaitMembers(urls(a, b, c));
    postAndCheckPlacement(500, urls(a, b, c), a, b, c);
    assertEquals(0, proxy.metrics().droppedTotal());
  }

  @Test
  void anIndexThatGoesBackwardsIsReset() {
    consul.setInstances(List.of(node("node-a", a)));
    consul.setInstances(List.of(node("node-a", a)));
    consul.setInstances(List.of(node("node-a", a)));
    startProxy("5m");
    awaitMembers(urls(a));
    // A snapshot restore while the proxy's query is held open: the index drops below what the
    // proxy holds, then the members change. (A query arriving after the drop would, as in real
    // Consul, wait out its whole `wait` before seeing the lower index.)
    Await.until("the proxy's query is held open", () -> consul.blockedNow() > 0);
    consul.setIndex(0);
    consul.setInstances(List.of(node("node-a", a), node("node-b", b)));
    awaitMembers(urls(a, b));
    // Had the proxy kept its old index it would now block for the whole 5m wait.
    consul.setInstances(List.of(node("node-a", a), node("node-b", b), node("node-c", c)));
    awaitMembers(urls(a, b, c));
  }

  /**
   * Issue 21: every instance registered with its port inside Service.Address. Each is read as
   * host:port, so the members are what the Go proxy v2 placed (node address + Service.Port) and
   * nothing is dropped; before, each became http://[127.0.0.1:port]:port and the ring went empty.
   */
  @Test
  void aServiceAddressCarryingItsPortIsReadAsHostAndPort() {
    List<Instance> all = new ArrayList<>();
    for (TestGlobal g : List.of(a, b, c)) {
      all.add(new Instance("node-" + g.port(), "127.0.0.1", "veneur", "127.0.0.1:" + g.port(), g.port(), "passing"));
    }
    consul.setInstances(all);
    startProxy("5m");
    awaitMembers(urls(a, b, c));
    postAndCheckPlacement(2000, urls(a, b, c), a, b, c);
    assertEquals(0, proxy.metrics().droppedTotal());
  }

  /** Garbage instances are left out one by one, counted by cause; the good ones get everything. */
  @Test
  void garbageInstancesAreSkippedAloneAndCounted() {
    consul.setInstances(List.of(node("node-a", a), node("node-b", b),
        new Instance("bad-port", "127.0.0.1", "veneur", "127.0.0.1", 70000, "passing"),
        new Instance("bad-newline", "127.0.0.1", "veneur", "127.0.0.1\nFORGED", c.port(), "passing"),
        new Instance("bad-path", "127.0.0.1", "veneur", "127.0.0.1/x?y=", c.port(), "passing")));
    startProxy("5m");
    awaitMembers(urls(a, b));
    postAndCheckPlacement(1000, urls(a, b), a, b, c);
    assertEquals(0, c.metrics.size());
    Await.until("each cause counted", () -> count("port") >= 1 && count("control_character") >= 1 && count("path") >= 1);
    // An answer with only garbage: nothing usable, so the last good ring stays.
    long errors = proxy.metrics().count("discoverer.errors", "service", SVC);
    long ports = count("port");
    consul.setInstances(List.of(new Instance("bad-port", "127.0.0.1", "veneur", "127.0.0.1", 70000, "passing")));
    Await.until("the garbage-only answer counted", () -> count("port") > ports
        && proxy.metrics().count("discoverer.errors", "service", SVC) > errors);
    postAndCheckPlacement(500, urls(a, b), a, b, c);
  }

  private long count(String cause) {
    var counter = proxy.metrics().registry().getCounters()
        .get("discoverer.invalid_members#source:consul:" + SVC + ",cause:" + cause);
    return counter == null ? 0 : counter.getCount();
  }

  /** An answer past consul_max_answer_bytes is an error: the last good members stay. */
  @Test
  void anOversizeAnswerKeepsTheLastGoodMembers() {
    consul.setInstances(List.of(node("node-a", a), node("node-b", b)));
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("consul_forward_service_name", SVC)
        .put("consul_address", consul.address())
        .put("consul_refresh_interval", "5m")
        .put("consul_max_answer_bytes", "1MiB")
        .put("consul_startup_timeout", "15s"));
    awaitMembers(urls(a, b));
    long errors = proxy.metrics().count("discoverer.errors", "service", SVC);
    consul.setHugeAnswer(50L << 20);
    // Several in a row: each one's connection must be given up, or the client's pool runs dry.
    Await.until("oversize answers counted", Duration.ofSeconds(30),
        () -> proxy.metrics().count("discoverer.errors", "service", SVC) > errors + 6);
    assertTrue(consul.hugeBytesWritten.get() < (20L << 20), "the proxy stopped reading early: " + consul.hugeBytesWritten.get());
    postAndCheckPlacement(500, urls(a, b), a, b);
    consul.setInstances(List.of(node("node-a", a), node("node-b", b), node("node-c", c)));
    awaitMembers(urls(a, b, c));
  }
}
