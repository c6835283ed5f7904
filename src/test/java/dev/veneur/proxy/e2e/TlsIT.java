package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.GrpcGlobal;
import dev.veneur.proxy.support.TestCerts;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import io.vertx.junit5.VertxExtension;
import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS with certificates made by the test (a CA, server and client certificates, an expired one, a
 * CA nobody trusts): {@code /import} over TLS that verifies its clients, certificates rotated on
 * disk under a sender, the v14 TLS gRPC listener, globals reached over TLS and verified (one whose
 * certificate does not verify is left and its metrics go to the other), and a handshake flood
 * beside real posts.
 */
@ExtendWith(VertxExtension.class)
class TlsIT {
  @TempDir Path dir;
  private TestProxy proxy;
  private final List<WebClient> clients = new ArrayList<>();

  @AfterEach
  void stop() {
    for (WebClient c : clients) c.close();
    if (proxy != null) proxy.stop();
  }

  private WebClient client(Vertx vertx, TestCerts.Ca trust, TestCerts.Issued mine, boolean keepAlive) {
    WebClientOptions o = new WebClientOptions().setSsl(true).setVerifyHost(true).setKeepAlive(keepAlive)
        .setTrustOptions(new PemTrustOptions().addCertPath(trust.certFile.toString()));
    if (mine != null) o.setKeyCertOptions(mine.options());
    WebClient c = WebClient.create(vertx, o);
    clients.add(c);
    return c;
  }

  private static Buffer body(String prefix, int n) {
    return Buffer.buffer(Bodies.utf8(Bodies.generate(prefix, n, prefix.hashCode()).encode()));
  }

  private Future<HttpResponse<Buffer>> post(WebClient c, String prefix) {
    return c.request(HttpMethod.POST, proxy.port, "127.0.0.1", "/import").sendBuffer(body(prefix, 100));
  }

  private long handshakeErrors(String listener, String cause) {
    return proxy.metrics().registry().counter("tls.handshake_errors_total#listener:" + listener + ",cause:" + cause)
        .getCount();
  }

  private TestProxy startTlsProxy(Vertx vertx, TestCerts.Ca ca, TestCerts.Issued server, TestGlobal global) {
    return TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("http_tls", true)
        .put("tls", new JsonObject().put("ca_file", ca.certFile.toString())
            .put("cert_file", server.certFile().toString()).put("key_file", server.keyFile().toString())));
  }

  @Test
  void importOverTlsTakesOnlyClientsWhoseCertificatesVerify(Vertx vertx) {
    TestCerts.Ca ca = TestCerts.ca(dir, "ca");
    TestCerts.Ca stranger = TestCerts.ca(dir, "stranger-ca");
    TestCerts.Issued server = ca.issue(dir, "proxy");
    TestGlobal global = TestGlobal.start(vertx);
    proxy = startTlsProxy(vertx, ca, server, global);

    assertEquals(202, post(client(vertx, ca, ca.issue(dir, "local"), true), "good").await().statusCode());
    // No certificate, one from a CA the proxy does not trust, an expired one: each a failed
    // handshake, counted by cause; none of them costs the proxy anything else.
    for (TestCerts.Issued bad : new TestCerts.Issued[] {null, stranger.issue(dir, "intruder"),
        ca.issueExpired(dir, "expired")}) {
      Future<HttpResponse<Buffer>> r = post(client(vertx, ca, bad, true), "bad");
      Await.until("refused", r::isComplete);
      assertTrue(r.failed(), "a client with " + (bad == null ? "no certificate" : bad.cert().getSubjectX500Principal())
          + " got an answer: " + (r.succeeded() ? r.result().statusCode() : ""));
    }
    // A JDK client offers only a certificate whose issuer the server names as acceptable: with
    // the stranger's, it sends none, which is what the proxy sees and counts.
    Await.until("handshake failures counted by cause", () -> handshakeErrors("http", "expired_certificate") == 1
        && handshakeErrors("http", "no_client_certificate") + handshakeErrors("http", "untrusted_certificate") == 2);
    // A client that expects another CA for the server refuses the proxy itself.
    Future<HttpResponse<Buffer>> wrongServer = post(client(vertx, stranger, ca.issue(dir, "local2"), true), "x");
    Await.until("done", wrongServer::isComplete);
    assertTrue(wrongServer.failed());
    // And it goes on serving the good ones.
    assertEquals(202, post(client(vertx, ca, ca.issue(dir, "local3"), false), "good2").await().statusCode());
    Await.until("delivered", () -> global.metrics.size() == 200);
    proxy.awaitSettled();
    assertEquals(200, proxy.metrics().forwarded());
  }

  @Test
  void aCertificateRotatedOnDiskIsServedWithoutFailingARequest(Vertx vertx) throws Exception {
    TestCerts.Ca ca = TestCerts.ca(dir, "ca");
    TestCerts.Issued first = ca.issue(dir, "proxy");
    TestGlobal global = TestGlobal.start(vertx);
    proxy = startTlsProxy(vertx, ca, first, global);
    TestCerts.Issued local = ca.issue(dir, "local");
    // A new connection per request (each a handshake), and one kept alive, posting until told.
    WebClient fresh = client(vertx, ca, local, false);
    WebClient kept = client(vertx, ca, local, true);
    AtomicInteger ok = new AtomicInteger();
    List<String> failures = new CopyOnWriteArrayList<>();
    AtomicBoolean stop = new AtomicBoolean();
    Set<BigInteger> served = ConcurrentHashMap.newKeySet();
    AtomicInteger seq = new AtomicInteger();
    Runnable[] loop = new Runnable[1];
    loop[0] = () -> {
      if (stop.get()) return;
      int n = seq.incrementAndGet();
      WebClient c = n % 2 == 0 ? fresh : kept;
      c.request(HttpMethod.POST, proxy.port, "127.0.0.1", "/import").sendBuffer(body("rot" + n, 10)).onComplete(ar -> {
        if (ar.succeeded() && ar.result().statusCode() == 202) ok.incrementAndGet();
        else failures.add(ar.succeeded() ? "status " + ar.result().statusCode() : String.valueOf(ar.cause()));
        vertx.setTimer(5, t -> loop[0].run());
      });
    };
    loop[0].run();
    // Which certificate a new connection gets, asked with a plain TLS client.
    io.vertx.core.net.NetClient probe = vertx.createNetClient(new io.vertx.core.net.NetClientOptions().setSsl(true)
        .setTrustOptions(new PemTrustOptions().addCertPath(ca.certFile.toString())).setKeyCertOptions(local.options())
        .setHostnameVerificationAlgorithm("HTTPS"));
    java.util.function.Supplier<BigInteger> servedNow = () -> {
      io.vertx.core.net.NetSocket s = probe.connect(proxy.port, "127.0.0.1").await();
      try {
        return ((java.security.cert.X509Certificate) s.peerCertificates().get(0)).getSerialNumber();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      } finally {
        s.close();
      }
    };
    assertEquals(first.serial(), servedNow.get());
    Await.until("posting", () -> ok.get() > 20);
    TestCerts.Issued second = ca.issue(dir, "proxy-next");
    TestCerts.rotate(second, first);
    Await.until("new connections get the new certificate", Duration.ofSeconds(20), () -> {
      BigInteger s = servedNow.get();
      served.add(s);
      return s.equals(second.serial());
    });
    int before = ok.get();
    Await.until("posting on", () -> ok.get() > before + 20);
    stop.set(true);
    probe.close();
    assertEquals(List.of(), failures, "no request failed across the rotation");
    Await.until("all delivered", () -> global.metrics.size() == ok.get() * 10);
  }

  @Test
  void grpcOverTlsInAndOutAndAGlobalThatDoesNotVerifyIsLeft(Vertx vertx) {
    TestCerts.Ca ca = TestCerts.ca(dir, "ca");
    TestCerts.Ca stranger = TestCerts.ca(dir, "stranger-ca");
    TestCerts.Issued server = ca.issue(dir, "proxy");
    GrpcGlobal good = GrpcGlobal.start(vertx, ca.issue(dir, "global-good").options());
    GrpcGlobal impostor = GrpcGlobal.start(vertx, stranger.issue(dir, "global-impostor").options());
    int grpcTls = TestProxy.freePort();
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("grpc_forward_address", good.member() + "," + impostor.member())
        .put("grpc_tls_address", "127.0.0.1:" + grpcTls)
        .put("tls", new JsonObject().put("ca_file", ca.certFile.toString())
            .put("cert_file", server.certFile().toString()).put("key_file", server.keyFile().toString()))
        .put("forward_tls", new JsonObject().put("ca_file", ca.certFile.toString())
            .put("cert_file", server.certFile().toString()).put("key_file", server.keyFile().toString()))
        .put("eject_after_failures", 1)
        .put("forward_timeout", "2s"));
    // A v14 local over TLS with its certificate.
    TestCerts.Issued local = ca.issue(dir, "local");
    io.vertx.grpc.client.GrpcClient grpc = io.vertx.grpc.client.GrpcClient.client(vertx,
        new io.vertx.core.http.HttpClientOptions().setSsl(true).setUseAlpn(true).setVerifyHost(true)
            .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2)
            .setTrustOptions(new PemTrustOptions().addCertPath(ca.certFile.toString()))
            .setKeyCertOptions(local.options()));
    try {
      forwardrpc.ForwardGrpcClient stub = forwardrpc.ForwardGrpcClient.create(grpc,
          io.vertx.core.net.SocketAddress.inetSocketAddress(grpcTls, "127.0.0.1"));
      int sent = 0;
      for (int call = 0; call < 20; call++) {
        forwardrpc.ForwardOuterClass.MetricList.Builder l = forwardrpc.ForwardOuterClass.MetricList.newBuilder();
        for (int i = 0; i < 50; i++) {
          l.addMetrics(metricpb.MetricOuterClass.Metric.newBuilder().setName("tls." + call + "." + i)
              .setType(metricpb.MetricOuterClass.Type.Counter).setScope(metricpb.MetricOuterClass.Scope.Global)
              .setCounter(metricpb.MetricOuterClass.CounterValue.newBuilder().setValue(1)));
        }
        stub.sendMetrics(l.build()).await();
        sent += 50;
      }
      int all = sent;
      // The impostor's certificate does not verify: its share is retried on the good global.
      Await.until("every metric at the global whose certificate verifies", Duration.ofSeconds(30),
          () -> good.metrics.size() == all);
      assertEquals(0, impostor.metrics.size(), "nothing delivered to a global that does not verify");
      proxy.awaitSettled();
      assertEquals(all, proxy.metrics().forwarded());
      assertEquals(0, proxy.metrics().droppedTotal());
    } finally {
      grpc.close();
      good.stop();
      impostor.stop();
    }
  }

  /**
   * HTTPS globals verified against forward_tls.ca_file, the proxy showing its certificate (mTLS);
   * one with a certificate from another CA gets nothing, its share goes to the other; and the
   * proxy's client certificate, rewritten on disk, is what new connections show.
   */
  @Test
  void httpsGlobalsAreVerifiedAndTheProxysCertificateRotates(Vertx vertx) throws Exception {
    TestCerts.Ca ca = TestCerts.ca(dir, "ca");
    TestCerts.Ca stranger = TestCerts.ca(dir, "stranger-ca");
    TestCerts.Issued mine = ca.issue(dir, "proxy-client");
    TestGlobal good = TestGlobal.startMutualTls(vertx, ca.issue(dir, "global-good").options(), ca.certFile.toString());
    TestGlobal impostor = TestGlobal.startTls(vertx, stranger.issue(dir, "global-impostor").options());
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_addresses", new JsonArray().add(good.url()).add(impostor.url()))
        .put("forward_tls", new JsonObject().put("ca_file", ca.certFile.toString())
            .put("cert_file", mine.certFile().toString()).put("key_file", mine.keyFile().toString()))
        .put("eject_after_failures", 1)
        // The first handshakes of a fresh JVM on a busy machine can take seconds.
        .put("forward_timeout", "5s")
        // Connections to the globals close after a second idle: the rotation below is seen by
        // the next connection, as it is in production after idle_connection_timeout.
        .put("idle_connection_timeout", "1s"));
    for (int i = 0; i < 10; i++) assertEquals(202, proxy.post(Bodies.utf8(Bodies.generate("https" + i, 100, i).encode()), null).statusCode());
    Await.until("everything at the global that verifies", Duration.ofSeconds(30), () -> good.metrics.size() == 1000);
    assertEquals(0, impostor.metrics.size());
    assertTrue(good.clientSerials.stream().allMatch(mine.serial()::equals), "the proxy showed its certificate");

    TestCerts.Issued next = ca.issue(dir, "proxy-client-next");
    TestCerts.rotate(next, mine);
    // New connections show the new certificate; a connection already open may go on with the old.
    int[] seq = {0};
    Await.until("the rotated certificate in use", Duration.ofSeconds(30), Duration.ofMillis(1500), () -> {
      proxy.post(Bodies.utf8(Bodies.generate("rot" + seq[0], 10, seq[0]).encode()), null);
      seq[0]++;
      return good.clientSerials.contains(next.serial());
    });
    proxy.awaitSettled();
    assertEquals(0, proxy.metrics().droppedTotal());
  }

  @Test
  void aHandshakeFloodBesideRealPostsCostsThemNothing(Vertx vertx) throws Exception {
    TestCerts.Ca ca = TestCerts.ca(dir, "ca");
    TestCerts.Issued server = ca.issue(dir, "proxy");
    TestGlobal global = TestGlobal.start(vertx);
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("http_tls", true)
        .put("http_request_timeout", "3s")
        .put("tls", new JsonObject().put("ca_file", ca.certFile.toString())
            .put("cert_file", server.certFile().toString()).put("key_file", server.keyFile().toString())));
    // 300 connections that start a handshake and never finish it, and 300 full handshakes without
    // a client certificate, while a local with a good one posts 50 bodies.
    List<java.net.Socket> stalled = new ArrayList<>();
    Vertx flood = Vertx.vertx();
    try {
      for (int i = 0; i < 300; i++) {
        java.net.Socket s = new java.net.Socket("127.0.0.1", proxy.port);
        // A TLS record header announcing a ClientHello, then nothing.
        s.getOutputStream().write(new byte[] {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, (byte) 0xfc});
        stalled.add(s);
      }
      WebClient anonymous = WebClient.create(flood, new WebClientOptions().setSsl(true).setKeepAlive(false)
          .setTrustOptions(new PemTrustOptions().addCertPath(ca.certFile.toString())));
      List<Future<?>> attempts = new ArrayList<>();
      for (int i = 0; i < 300; i++) {
        attempts.add(anonymous.request(HttpMethod.POST, proxy.port, "127.0.0.1", "/import").sendBuffer(body("anon", 1)));
      }
      WebClient good = client(vertx, ca, ca.issue(dir, "local"), true);
      for (int i = 0; i < 50; i++) assertEquals(202, post(good, "flood" + i).await().statusCode());
      Future.join(attempts).otherwise(x -> null).await();
      for (Future<?> a : attempts) assertTrue(a.failed(), "no anonymous post got in");
      Await.until("all 50 bodies delivered", () -> global.metrics.size() == 5000);
      proxy.awaitSettled();
      assertEquals(5000, proxy.metrics().forwarded());
      assertEquals(0, proxy.metrics().droppedTotal());
      assertTrue(handshakeErrors("http", "no_client_certificate") >= 300,
          "counted: " + handshakeErrors("http", "no_client_certificate"));
      anonymous.close();
      // The stalled handshakes are closed by the proxy at the handshake deadline
      // (http_request_timeout, 3 s here), not held for ever.
      for (java.net.Socket s : stalled) {
        s.setSoTimeout(15_000);
        int r;
        try {
          r = s.getInputStream().read();
        } catch (java.net.SocketException reset) {
          r = -1;
        }
        assertEquals(-1, r, "a stalled handshake was closed by the proxy");
      }
    } finally {
      for (java.net.Socket s : stalled) s.close();
      flood.close();
    }
  }
}
