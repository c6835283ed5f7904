package dev.veneur.proxy.ingest.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.ingest.Refusals;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.RawResponse;
import dev.veneur.proxy.telemetry.LogThrottle;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * Admission of connections to the {@code /import} listener, over a real Vert.x HTTP server whose
 * connection handler is {@link HttpConnections#onConnection} and raw sockets: the open count in
 * {@code ctx.connections()}, the cap in force ({@code http_max_connections: 2}, which the descriptor
 * plan leaves at 2 under any usable {@code ulimit -n}), and the {@link ConnectionGuard} it installs.
 */
class HttpConnectionsTest {
  private static final Duration WAIT = Duration.ofSeconds(5);
  private static Vertx vertx;

  private ProxyContext ctx;
  private Refusals refusals;
  private HttpServer server;
  private int port;
  /** Take the accept gate out of the listener once installed, so onConnection meets every connection. */
  private boolean withoutGate;
  /** Whether each connection the handler saw had a guard after onConnection. */
  private final List<Boolean> guarded = new java.util.concurrent.CopyOnWriteArrayList<>();
  private final AtomicBoolean gateSeen = new AtomicBoolean();
  /** The listening channel, as the first connection shows it. */
  private final java.util.concurrent.atomic.AtomicReference<io.netty.channel.Channel> listener =
      new java.util.concurrent.atomic.AtomicReference<>();
  private final List<Socket> sockets = new ArrayList<>();

  @BeforeAll
  static void vertx() {
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void closeVertx() {
    vertx.close().await();
  }

  private void start(String requestTimeout) {
    ctx = new ProxyContext(ProxyConfig.from(new JsonObject().put("forward_address", "http://127.0.0.1:1")
        .put("http_max_connections", 2).put("http_max_connections_per_client", 0)
        .put("http_request_timeout", requestTimeout)));
    assertEquals(2, ctx.descriptors().inboundCap(), "the cap in force");
    refusals = new Refusals(ctx.metrics(), null, new LogThrottle(LoggerFactory.getLogger(HttpConnectionsTest.class),
        600_000));
    HttpConnections connections = new HttpConnections(vertx, ctx, refusals);
    // As ImportVerticle's listener: HTTP/1.1 only (h2c would delay the connection handler to the
    // first byte).
    server = vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(false));
    server.connectionHandler(conn -> {
      connections.onConnection(conn);
      guarded.add(ConnectionGuard.of(conn) != null);
      io.netty.channel.Channel ch = ((io.vertx.core.net.impl.ConnectionBase) conn).channel();
      if (ch.parent() != null) listener.set(ch.parent());
      if (ch.parent() != null && ch.parent().pipeline().get(AcceptGate.NAME) != null) {
        gateSeen.set(true);
        if (withoutGate) ch.parent().pipeline().remove(AcceptGate.NAME);
      }
    });
    server.requestHandler(req -> {
      // As ImportVerticle: the request takes its deadline over from the guard until answered.
      ConnectionGuard guard = ConnectionGuard.of(req.connection());
      if (guard != null) {
        guard.requestStarted();
        req.response().endHandler(v -> guard.answered());
      }
      req.response().end("ok");
    });
    port = server.listen(0, "127.0.0.1").await().actualPort();
  }

  @AfterEach
  void stop() throws IOException {
    for (Socket s : sockets) s.close();
    if (server != null) {
      Await.until("open connections after the clients closed", WAIT, () -> ctx.connections().get() == 0);
      server.close().await();
    }
  }

  /** Waits (5 s at most) until {@code actual} yields {@code expected}; the failure shows the last value. */
  private static <T> void awaitEq(String what, T expected, java.util.function.Supplier<T> actual) {
    try {
      Await.until(what, WAIT, () -> expected.equals(actual.get()));
    } catch (AssertionError e) {
      assertEquals(expected, actual.get(), what);
      throw e;
    }
  }

  private long counted(String cause) {
    return ctx.metrics().registry().counter(refusals.name(cause)).getCount();
  }

  // ---------------------------------------------------------------------------------------------

  @Test
  void connectionsAreCountedWhileOpenAndGuarded() throws Exception {
    start("10s");
    Socket a = connect();
    Socket b = connect();
    awaitEq("two open", 2, () -> ctx.connections().get());
    assertEquals(List.of(true, true), guarded, "each connection has its guard");
    // They serve requests.
    assertEquals(200, get(a));
    assertEquals(200, get(b));
    a.close();
    awaitEq("one open after a client closed", 1, () -> ctx.connections().get());
    b.close();
    awaitEq("none open", 0, () -> ctx.connections().get());
    assertEquals(0, counted("too_many_connections"));
  }

  /**
   * The third connection past a cap of 2 is closed and counted. With the accept gate in place (as in
   * the proxy: onConnection installs it) the gate closes it before Vert.x hands it over.
   */
  @Test
  void theConnectionPastTheCapIsClosedAndCounted() throws Exception {
    start("10s");
    Socket a = connect();
    Socket b = connect();
    awaitEq("two open", 2, () -> ctx.connections().get());
    assertTrue(gateSeen.get(), "onConnection installed the accept gate");
    // Installed from an event loop, the gate sees accepts once the listener's thread has added it
    // (CI L19: the third connection, a moment sooner, went past it to onConnection).
    Await.until("the gate in force", WAIT, () -> AcceptGate.inForce(listener.get()));
    Socket c = connect();
    assertClosed(c);
    awaitEq("too_many_connections counted once", 1L, () -> counted("too_many_connections"));
    assertEquals(2, ctx.connections().get(), "the two under the cap stay open");
    assertEquals(200, get(a));
    assertEquals(200, get(b));
  }

  /** The same without the accept gate: onConnection itself must close the third and count it. */
  @Test
  void onConnectionItselfClosesTheConnectionPastTheCap() throws Exception {
    withoutGate = true;
    start("10s");
    Socket a = connect();
    Socket b = connect();
    awaitEq("two open", 2, () -> ctx.connections().get());
    Await.until("the gate is out", WAIT, () -> gateSeen.get());
    Socket c = connect();
    assertClosed(c);
    awaitEq("too_many_connections counted once", 1L, () -> counted("too_many_connections"));
    awaitEq("the closed one is no longer counted", 2, () -> ctx.connections().get());
    assertEquals(3, guarded.size(), "onConnection saw the third");
    assertEquals(false, guarded.get(2), "the refused connection got no guard");
    assertEquals(200, get(a));
    assertEquals(200, get(b));
    // A slot freed is a slot taken again.
    a.close();
    awaitEq("one open", 1, () -> ctx.connections().get());
    Socket d = connect();
    awaitEq("two open again", 2, () -> ctx.connections().get());
    assertEquals(200, get(d));
    assertEquals(1L, counted("too_many_connections"));
  }

  /**
   * Headers trickling in one byte at a time never complete: past http_request_timeout (300 ms) from
   * their first byte the guard answers 408, closes, and slow_headers is counted.
   */
  @Test
  void headersTooSlowAreClosedAfterHttpRequestTimeoutAndCounted() throws Exception {
    start("300ms");
    Socket s = connect();
    OutputStream out = s.getOutputStream();
    byte[] head = "POST /import HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}".getBytes(StandardCharsets.US_ASCII);
    AtomicReference<Long> closedAt = new AtomicReference<>();
    long t0 = System.nanoTime();
    // A byte every 50 ms would take ~2.7 s for the whole head: the deadline comes first.
    CompletableFuture<Void> trickle = CompletableFuture.runAsync(() -> {
      try {
        for (byte c : head) {
          out.write(c);
          out.flush();
          Thread.sleep(50); // the sender's pace, not a wait for the proxy
        }
      } catch (IOException | InterruptedException closed) {
        // closed by the proxy
      }
    });
    String answer = readAll(s);
    closedAt.set((System.nanoTime() - t0) / 1_000_000);
    assertTrue(answer.startsWith("HTTP/1.1 408"), "answered 408: " + answer);
    assertTrue(closedAt.get() >= 250 && closedAt.get() < 2_000,
        "closed at http_request_timeout from the first byte: " + closedAt.get() + " ms");
    awaitEq("slow_headers counted", 1L, () -> counted("slow_headers"));
    assertEquals(0, counted("idle_connection"));
    trickle.get(5, TimeUnit.SECONDS);
    awaitEq("none open", 0, () -> ctx.connections().get());
  }

  /** A connection that sends nothing is closed after http_request_timeout too, counted idle, not slow. */
  @Test
  void aSilentConnectionIsClosedAfterHttpRequestTimeoutAsIdle() throws Exception {
    start("300ms");
    Socket s = connect();
    awaitEq("one open", 1, () -> ctx.connections().get());
    assertEquals("", readAll(s), "closed without an answer");
    awaitEq("idle_connection counted", 1L, () -> counted("idle_connection"));
    assertEquals(0, counted("slow_headers"));
    awaitEq("none open", 0, () -> ctx.connections().get());
  }

  // ---------------------------------------------------------------------------------------------

  private Socket connect() throws IOException {
    Socket s = new Socket("127.0.0.1", port);
    s.setSoTimeout(5_000);
    sockets.add(s);
    return s;
  }

  /** One GET on the connection; the status of its answer. */
  private static int get(Socket s) throws IOException {
    s.getOutputStream().write("GET /x HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
    return RawResponse.read(s).status();
  }


  /** Everything the server sends until it closes; fails if it stays open past the socket timeout. */
  private static String readAll(Socket s) throws IOException {
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    InputStream in = s.getInputStream();
    byte[] buf = new byte[4096];
    try {
      int n;
      while ((n = in.read(buf)) != -1) got.write(buf, 0, n);
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the connection is still open; got: " + got.toString(StandardCharsets.US_ASCII));
    } catch (IOException reset) {
      // closed with unread data
    }
    return got.toString(StandardCharsets.US_ASCII);
  }

  private static void assertClosed(Socket s) throws IOException {
    assertNotNull(readAll(s));
  }
}
