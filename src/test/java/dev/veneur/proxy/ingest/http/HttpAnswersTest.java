package dev.veneur.proxy.ingest.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.ingest.ImportRefusal;
import dev.veneur.proxy.ingest.Refusals;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.ManualTimers;
import dev.veneur.proxy.support.RawResponse;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.junit5.VertxExtension;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.LoggerFactory;

/**
 * How a refused request is answered and its connection let go, over a real Vert.x HTTP server and
 * a raw socket client (which controls the framing and can go on writing a body after the answer).
 * The lingering close runs on a hand-moved clock; the clock is only ever touched on the server's
 * event loop, where HttpAnswers sets its timers, so the timer's action runs there as in the proxy.
 */
@ExtendWith(VertxExtension.class)
class HttpAnswersTest {
  private static final String TOO_LARGE = "request body exceeds max_body_bytes (1000 bytes)";
  private static final String OVERLOADED = "the proxy's memory budget is full (memory_budget); retry later";

  private final ManualTimers timers = new ManualTimers();
  private final ProxyMetrics metrics = new ProxyMetrics();
  private final HttpAnswers answers = new HttpAnswers(timers,
      new Refusals(metrics, null, new LogThrottle(LoggerFactory.getLogger(HttpAnswersTest.class), 600_000)));
  /** Connections the server saw close. */
  private final AtomicInteger closed = new AtomicInteger();
  private Context loop;
  private int port;
  private final java.util.List<Socket> sockets = new java.util.ArrayList<>();

  @BeforeEach
  void start(Vertx vertx) {
    vertx.deployVerticle(new VerticleBase() {
      @Override
      public Future<?> start() {
        loop = context;
        HttpServer server = vertx.createHttpServer();
        server.connectionHandler(c -> c.closeHandler(v -> closed.incrementAndGet()));
        server.requestHandler(HttpAnswersTest.this::handle);
        return server.listen(0, "127.0.0.1").onSuccess(s -> port = s.actualPort());
      }
    }).await();
  }

  @AfterEach
  void closeSockets() throws IOException {
    for (Socket s : sockets) s.close();
  }

  /** What the routes of the test server do: each refuses, or reports the framing, one way. */
  private void handle(HttpServerRequest req) {
    switch (req.path()) {
      case "/too-large" -> {
        // As ImportRequest does on a body over max_body_bytes: the rest is not read.
        req.pause();
        answers.refuse(req, new ImportRefusal(413, "too_large", TOO_LARGE), true);
      }
      case "/overloaded" -> req.end().onComplete(v ->
          answers.refuse(req, new ImportRefusal(503, "overloaded", OVERLOADED), false));
      case "/bad-after-body" -> req.end().onComplete(v ->
          answers.refuse(req, new ImportRefusal(400, "json", "no metric a global would accept"), true));
      case "/framing" -> req.end().onComplete(v -> req.response().end(
          HttpAnswers.badFraming(req, false) + "\n" + HttpAnswers.badFraming(req, true)));
      default -> req.response().setStatusCode(404).end();
    }
  }

  // ------------------------------------------------------------------ helpers

  /** Runs {@code s} on the server's event loop (where the timers are set) and returns its value. */
  private <T> T onLoop(Supplier<T> s) throws Exception {
    CompletableFuture<T> f = new CompletableFuture<>();
    loop.runOnContext(v -> {
      try {
        f.complete(s.get());
      } catch (Throwable t) {
        f.completeExceptionally(t);
      }
    });
    return f.get(5, TimeUnit.SECONDS);
  }

  private void advance(long ms) throws Exception {
    onLoop(() -> {
      timers.advance(ms);
      return null;
    });
  }

  private Socket connect() throws IOException {
    Socket s = new Socket("127.0.0.1", port);
    s.setSoTimeout(5_000);
    sockets.add(s);
    return s;
  }

  private static void write(Socket s, String text) throws IOException {
    OutputStream out = s.getOutputStream();
    out.write(text.getBytes(StandardCharsets.ISO_8859_1));
    out.flush();
  }

  private static void writeBytes(Socket s, int n) throws IOException {
    byte[] b = new byte[n];
    java.util.Arrays.fill(b, (byte) 'x');
    s.getOutputStream().write(b);
    s.getOutputStream().flush();
  }

  /**
   * True once the server has closed the connection: a read ends (or is reset, if the close raced
   * bytes still on their way). False if nothing comes within the socket's timeout.
   */
  private static boolean closedByServer(Socket s) throws IOException {
    try {
      return s.getInputStream().read() < 0;
    } catch (SocketTimeoutException stillOpen) {
      return false;
    } catch (SocketException reset) {
      return true;
    }
  }

  private long refusedCount(String cause) {
    return metrics.registry().counter(ProxyMetrics.IMPORT_ERRORS + "#cause:" + cause).getCount();
  }

  private void awaitLingering() {
    Await.until("the lingering close is armed", Duration.ofSeconds(5), () -> {
      try {
        return onLoop(timers::pending) == 1;
      } catch (Exception e) {
        throw new AssertionError(e);
      }
    });
  }

  // ------------------------------------------------------------------ refusals

  /** The answer a sender gets to a body it may not finish: one line, and "this connection ends". */
  private static void assertTooLargeAnswer(RawResponse r) {
    assertEquals("HTTP/1.1 413 Request Entity Too Large", r.statusLine());
    assertEquals("close", r.header("connection"), "the rest of the body will not be read");
    assertEquals("text/plain; charset=utf-8", r.header("content-type"));
    assertNull(r.header("retry-after"), "Retry-After is for a 503 only");
    assertEquals(TOO_LARGE + "\n", r.body(), "one line: the reason");
  }

  @Test
  void aRefusedBodyIsAnsweredThenReadToItsEndAndTheConnectionCloses() throws Exception {
    Socket s = connect();
    write(s, "POST /too-large HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n");
    writeBytes(s, 1000);

    assertTooLargeAnswer(RawResponse.read(s));
    awaitLingering();
    assertEquals(List.of(HttpAnswers.LINGER_MS), onLoop(timers::delays));
    assertEquals(0, onLoop(closed::get), "not closed under a sender still writing: it would get a reset");

    // The sender goes on writing the body it declared, and can: the server reads and drops it.
    writeBytes(s, 299_000);
    assertTrue(closedByServer(s), "closed once the body ended");
    Await.until("the server saw the close", Duration.ofSeconds(5), () -> closed.get() == 1);
    assertEquals(0, onLoop(timers::pending), "the linger timer is cancelled with the body's end");
    assertEquals(1, refusedCount("too_large"));
  }

  @Test
  void aSenderThatStopsMidBodyIsClosedOnWhenTheLingerTimeIsUp() throws Exception {
    Socket s = connect();
    write(s, "POST /too-large HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n");
    writeBytes(s, 1000);
    assertTooLargeAnswer(RawResponse.read(s));
    awaitLingering();

    advance(HttpAnswers.LINGER_MS - 1);
    assertEquals(1, onLoop(timers::pending), "not yet");
    assertEquals(0, onLoop(closed::get));
    advance(1);
    assertTrue(closedByServer(s), "closed when the linger time is up, body or not");
    Await.until("the server saw the close", Duration.ofSeconds(5), () -> closed.get() == 1);
    assertEquals(1, refusedCount("too_large"));
  }

  @Test
  void aRequestReadWholeIsClosedAtOnceWithoutLingering() throws Exception {
    Socket s = connect();
    write(s, "POST /bad-after-body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    RawResponse r = RawResponse.read(s);
    assertEquals("HTTP/1.1 400 Bad Request", r.statusLine());
    assertEquals("close", r.header("connection"));
    assertEquals("no metric a global would accept\n", r.body());
    assertTrue(closedByServer(s), "nothing left to read: closed after the answer");
    assertEquals(List.of(), onLoop(timers::delays), "no linger timer for a body already read");
    assertEquals(1, refusedCount("json"));
  }

  @Test
  void a503SaysWhenToRetryAndKeepsTheConnection() throws Exception {
    Socket s = connect();
    for (int i = 1; i <= 2; i++) {
      write(s, "POST /overloaded HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
      RawResponse r = RawResponse.read(s);
      assertEquals("HTTP/1.1 503 Service Unavailable", r.statusLine());
      assertEquals("1", r.header("retry-after"));
      assertFalse("close".equals(r.header("connection")), "the body was read: the connection may go on");
      assertEquals(OVERLOADED + "\n", r.body());
      // The second answer on the same socket is the proof the connection was kept.
      assertEquals(i, refusedCount("overloaded"), "counted by cause, each time");
    }
    assertEquals(0, onLoop(closed::get));
    assertEquals(List.of(), onLoop(timers::delays));
  }

  // ------------------------------------------------------------------ framing

  /** The framing verdict for a request with {@code headers} and {@code body}: without, then with the guard's flag. */
  private List<String> framing(String headers, String body) throws Exception {
    Socket s = connect();
    write(s, "POST /framing HTTP/1.1\r\nHost: t\r\n" + headers + "\r\n" + body);
    RawResponse r = RawResponse.read(s);
    assertEquals("HTTP/1.1 200 OK", r.statusLine(), r.body());
    return List.of(r.body().split("\n", -1));
  }

  private static final String BOTH = "a request with both Content-Length and Transfer-Encoding is refused";

  @Test
  void soundFramingPassesUnlessTheGuardSawBothOnTheWire() throws Exception {
    assertEquals(List.of("null", BOTH), framing("Content-Length: 5\r\n", "hello"));
    assertEquals(List.of("null", BOTH), framing("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"));
    assertEquals(List.of("null", BOTH), framing("Transfer-Encoding: Chunked \r\n", "0\r\n\r\n"),
        "a coding's name is case-insensitive");
  }

  @Test
  void codingsOtherThanChunkedAreUnsupported() throws Exception {
    assertEquals(List.of("unsupported Transfer-Encoding 'gzip, chunked': only chunked", BOTH),
        framing("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"));
    assertEquals(List.of("unsupported Transfer-Encoding 'chunked, chunked': only chunked", BOTH),
        framing("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"));
  }

  @Test
  void aRequestThatShowsBothFramingsIsRefused() throws Exception {
    // Netty keeps Content-Length beside a Transfer-Encoding it does not frame by: HttpAnswers sees both.
    assertEquals(List.of(BOTH, BOTH), framing("Transfer-Encoding: gzip\r\nContent-Length: 5\r\n", "hello"));
  }
}
