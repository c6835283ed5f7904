package dev.veneur.proxy.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.DnsDouble;
import dev.veneur.proxy.support.DnsDouble.Mode;
import dev.veneur.proxy.support.DnsDouble.Rec;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * DNS discovery against a real DNS server on 127.0.0.1 ({@link DnsDouble}, UDP), with real globals:
 * SRV and A names, changes, TTLs, a server that fails or is silent (the last good ring stays, the
 * next server is asked), and NXDOMAIN (the ring empties on the second answer, not the first).
 */
@ExtendWith(VertxExtension.class)
class DnsDiscoveryIT {
  private static final String SRV = "_http._tcp.veneur-global.metrics.svc.cluster.local";
  private static final String NAME = "veneur-global.metrics.svc.cluster.local";

  private final java.util.List<AutoCloseable> closing = new java.util.ArrayList<>();
  private TestProxy proxy;

  @AfterEach
  void stop() throws Exception {
    if (proxy != null) proxy.stop();
    for (AutoCloseable c : closing) c.close();
  }

  private DnsDouble dns() {
    DnsDouble d = DnsDouble.start();
    closing.add(d);
    return d;
  }

  private long errors(String name) {
    return proxy.metrics().counter("discoverer.errors", "service", name).getCount();
  }

  private void post(String prefix) {
    JsonArray body = Bodies.generate(prefix, 200, prefix.hashCode());
    assertEquals(202, proxy.post(Bodies.utf8(body.encode()), null).statusCode());
  }

  @Test
  void srvTargetsAreTheRingAndChangesAndTtlsAreFollowed(Vertx vertx) {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    DnsDouble dns = dns();
    dns.set(SRV, Rec.srv(a.port(), "global-0.veneur-global.metrics.svc.cluster.local.", 300),
        Rec.srv(b.port(), "global-1.veneur-global.metrics.svc.cluster.local.", 300));
    dns.set("global-0.veneur-global.metrics.svc.cluster.local", Rec.a("127.0.0.1", 300));
    dns.set("global-1.veneur-global.metrics.svc.cluster.local", Rec.a("127.0.0.1", 300));
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("dns_forward_name", SRV)
        .put("dns_servers", new JsonArray().add(dns.address()))
        .put("dns_refresh_interval", "300ms"));
    // Members written as Consul's importer writes them: http://<address>:<port>, in ring order.
    assertEquals(List.of(a.url(), b.url()).stream().sorted().toList(), proxy.ringMembers().stream().sorted().toList());
    post("dns-srv");
    Await.until("both globals get their share", () -> a.metrics.size() + b.metrics.size() == 200
        && !a.metrics.isEmpty() && !b.metrics.isEmpty());

    dns.set(SRV, Rec.srv(b.port(), "global-1.veneur-global.metrics.svc.cluster.local", 1));
    Await.until("one global left", () -> proxy.ringMembers().equals(List.of(b.url())));
    proxy.awaitSettled();

    // With a long interval, the SRV answer's TTL (1 s) decides when it is asked again.
    proxy.stop();
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("dns_forward_name", SRV)
        .put("dns_servers", new JsonArray().add(dns.address()))
        .put("dns_refresh_interval", "1h"));
    int before = dns.asked(SRV, "SRV");
    Await.until("asked again when the TTL ran out", Duration.ofSeconds(10), () -> dns.asked(SRV, "SRV") >= before + 2);
  }

  @Test
  void aFailingServerKeepsTheLastGoodRingAndNxdomainEmptiesItOnTheSecondAnswer(Vertx vertx) {
    TestGlobal a = TestGlobal.start(vertx);
    DnsDouble dns = dns();
    dns.set(NAME, Rec.a("127.0.0.1", 30));
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("dns_forward_name", NAME)
        .put("dns_forward_port", a.port())
        .put("dns_servers", new JsonArray().add(dns.address()))
        .put("dns_refresh_interval", "300ms"));
    assertEquals(List.of(a.url()), proxy.ringMembers());

    for (Mode m : List.of(Mode.SERVFAIL, Mode.SILENT)) {
      dns.mode.set(m);
      long errorsBefore = errors(NAME);
      int asked = dns.asked(NAME, "A");
      Await.until(m + " answered three times", Duration.ofSeconds(30), () -> dns.asked(NAME, "A") >= asked + 3
          && errors(NAME) >= errorsBefore + 2);
      assertEquals(List.of(a.url()), proxy.ringMembers(), "the last good ring stays through " + m);
      post("dns-" + m);
    }
    dns.mode.set(Mode.ANSWER);
    Await.until("all posted delivered", () -> a.metrics.size() == 400);

    // NXDOMAIN: kept for one more interval, then the ring is emptied. What the proxy already
    // accepted (here queued behind a slow global) is still delivered: the leaving forwarder drains
    // its queue to its global before it stops, as any member leaving the ring does.
    a.delayMs.set(1500);
    for (int i = 0; i < 5; i++) post("queued" + i);
    int asked = dns.asked(NAME, "A");
    dns.mode.set(Mode.NXDOMAIN);
    Await.until("the ring emptied", Duration.ofSeconds(30), () -> proxy.ringMembers().isEmpty());
    assertTrue(dns.asked(NAME, "A") >= asked + 2, "emptied only after a second NXDOMAIN: " + (dns.asked(NAME, "A") - asked));
    a.delayMs.set(0);
    Await.until("what was accepted is delivered all the same", Duration.ofSeconds(30), () -> a.metrics.size() == 400 + 1000);
    assertEquals(0, proxy.metrics().droppedTotal(), "nothing accepted was dropped when the name went away");
    assertEquals(503, proxy.post(Bodies.utf8(Bodies.generate("none", 10, 1).encode()), null).statusCode(),
        "no global: refused, not queued");
    // A readiness probe sees it too, and sends locals to another proxy meanwhile.
    Await.until("/healthcheck 503 without a global", () -> proxy.get("/healthcheck").statusCode() == 503);
    dns.mode.set(Mode.ANSWER);
    Await.until("the ring back", () -> proxy.ringMembers().equals(List.of(a.url())));
    Await.until("/healthcheck 200 again", () -> proxy.get("/healthcheck").statusCode() == 200);
    proxy.awaitSettled();
  }

  @Test
  void theNextServerIsAskedWhenOneIsSilentAndGrpcGlobalsAreNamedAsV14NamesThem(Vertx vertx) {
    DnsDouble silent = dns();
    silent.mode.set(Mode.SILENT);
    DnsDouble good = dns();
    dev.veneur.proxy.support.GrpcGlobal g = dev.veneur.proxy.support.GrpcGlobal.start(vertx);
    good.set("_grpc._tcp.veneur-global.test", Rec.srv(g.port(), "g.test", 60));
    good.set("g.test", Rec.a("127.0.0.1", 60));
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("dns_forward_grpc_name", "_grpc._tcp.veneur-global.test")
        .put("dns_servers", silent.address() + "," + good.address())
        .put("dns_refresh_interval", "2s"));
    assertEquals(List.of("127.0.0.1:" + g.port()), proxy.ringMembers(), "host:port, no scheme: a gRPC global");
    assertTrue(silent.queries.get() > 0, "the first server was asked first");
    // Counters (Bodies.generate's histograms carry no t-digest, which gRPC cannot say).
    JsonArray counters = new JsonArray();
    for (int i = 0; i < 200; i++) {
      counters.add(new JsonObject().put("name", "dns.grpc." + i).put("type", "counter").put("tagstring", "a:b")
          .put("tags", new JsonArray().add("a:b")).put("value", "AQAAAAAAAAA="));
    }
    assertEquals(202, proxy.post(Bodies.utf8(counters.encode()), null).statusCode());
    Await.until("delivered by gRPC", () -> g.metrics.size() == 200);
    g.stop();
  }
}
