package dev.veneur.proxy.support;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.Inflater;

/**
 * A global Veneur double on a real socket: inflates each POST /import like a global would, keeps
 * every metric it received, and answers with a status the test can change (or never answers).
 */
public final class TestGlobal {
  public final List<JsonObject> metrics = new CopyOnWriteArrayList<>();
  public final List<Post> posts = new CopyOnWriteArrayList<>();
  public final AtomicInteger status = new AtomicInteger(202);
  public final AtomicInteger refusedPosts = new AtomicInteger();
  /** Milliseconds to wait before answering an accepted POST: a slow global with finite capacity. */
  public final AtomicInteger delayMs = new AtomicInteger();
  /**
   * When set, a POST whose inflated body contains this text is answered 400 (and recorded in
   * {@link #refusedPosts}) as a Go global answers a batch its decoder refuses.
   */
  public final java.util.concurrent.atomic.AtomicReference<String> refuseIfContains =
      new java.util.concurrent.atomic.AtomicReference<>();
  public final AtomicInteger postsSeen = new AtomicInteger();
  private HttpServer server;
  private int port;

  /** One received request as the proxy sent it. */
  public record Post(String contentEncoding, String contentType, byte[] rawBody, String json) {}

  public static TestGlobal start(Vertx vertx) {
    return start(vertx, null);
  }

  /** A global serving HTTPS with {@code tls} (certificate and key), reached as https://127.0.0.1:port. */
  public static TestGlobal startTls(Vertx vertx, io.vertx.core.net.KeyCertOptions tls) {
    return start(vertx, tls);
  }

  /** Serial numbers of the client certificates the proxy presented, one per request (HTTPS with client auth). */
  public final List<java.math.BigInteger> clientSerials = new CopyOnWriteArrayList<>();
  private static String clientCa;

  /** As {@link #startTls}, asking for a client certificate that chains to {@code caFile}. */
  public static synchronized TestGlobal startMutualTls(Vertx vertx, io.vertx.core.net.KeyCertOptions tls, String caFile) {
    clientCa = caFile;
    try {
      return start(vertx, tls);
    } finally {
      clientCa = null;
    }
  }

  private static TestGlobal start(Vertx vertx, io.vertx.core.net.KeyCertOptions tls) {
    TestGlobal g = new TestGlobal();
    g.tls = tls != null;
    io.vertx.core.http.HttpServerOptions options = new io.vertx.core.http.HttpServerOptions();
    if (tls != null) options.setSsl(true).setKeyCertOptions(tls);
    if (clientCa != null) {
      options.setClientAuth(io.vertx.core.http.ClientAuth.REQUIRED)
          .setTrustOptions(new io.vertx.core.net.PemTrustOptions().addCertPath(clientCa));
    }
    g.server = vertx.createHttpServer(options).requestHandler(req -> req.body().onSuccess(body -> {
      if (req.isSSL() && req.connection().sslSession() != null) {
        try {
          java.security.cert.Certificate[] peer = req.connection().sslSession().getPeerCertificates();
          g.clientSerials.add(((java.security.cert.X509Certificate) peer[0]).getSerialNumber());
        } catch (javax.net.ssl.SSLPeerUnverifiedException none) {
          // no client certificate asked for
        }
      }
      int answer = g.status.get();
      if ("/healthcheck".equals(req.path())) {
        // Healthy exactly when imports would succeed; hangs when they hang.
        if (answer != 0) req.response().setStatusCode(answer / 100 == 2 ? 200 : answer).end();
        return;
      }
      if (!"/import".equals(req.path())) {
        req.response().setStatusCode(404).end();
        return;
      }
      if (answer == 0) return; // hang: accept the body, never answer
      if (answer / 100 != 2) {
        g.refusedPosts.incrementAndGet();
        int d = g.delayMs.get();
        if (d > 0) vertx.setTimer(d, t -> req.response().setStatusCode(answer).end("refused by test"));
        else req.response().setStatusCode(answer).end("refused by test");
        return;
      }
      byte[] raw = body.getBytes();
      String json = "deflate".equals(req.getHeader("Content-Encoding"))
          ? inflate(raw) : new String(raw, java.nio.charset.StandardCharsets.UTF_8);
      g.postsSeen.incrementAndGet();
      String poison = g.refuseIfContains.get();
      if (poison != null && json.contains(poison)) {
        g.refusedPosts.incrementAndGet();
        req.response().setStatusCode(400).end("json: cannot decode this batch");
        return;
      }
      g.posts.add(new Post(req.getHeader("Content-Encoding"), req.getHeader("Content-Type"), raw, json));
      // One copy of the list per POST: adding metric by metric copied the whole list each time,
      // work quadratic in what the global holds (seconds for 24,000 metrics), done on an event loop
      // the proxy under test may share, which stalled it (BlockedThreadChecker: 5 s here).
      List<JsonObject> received = new java.util.ArrayList<>();
      for (Object o : new JsonArray(json)) received.add((JsonObject) o);
      g.metrics.addAll(received);
      int delay = g.delayMs.get();
      if (delay > 0) vertx.setTimer(delay, t -> req.response().setStatusCode(answer).end());
      else req.response().setStatusCode(answer).end();
    }));
    g.port = g.server.listen(0, "127.0.0.1").await().actualPort();
    return g;
  }

  public String url() {
    return (tls ? "https" : "http") + "://127.0.0.1:" + port;
  }

  private boolean tls;

  public int port() {
    return port;
  }

  public void stop() {
    server.close().await();
  }

  static String inflate(byte[] raw) {
    Inflater inf = new Inflater();
    try {
      inf.setInput(raw);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buf = new byte[8192];
      while (!inf.finished()) {
        int n = inf.inflate(buf);
        if (n == 0 && inf.needsInput()) throw new IllegalStateException("truncated deflate body");
        out.write(buf, 0, n);
      }
      return out.toString(java.nio.charset.StandardCharsets.UTF_8);
    } catch (java.util.zip.DataFormatException e) {
      throw new IllegalStateException("proxy sent a body that is not zlib: " + e.getMessage(), e);
    } finally {
      inf.end();
    }
  }
}
