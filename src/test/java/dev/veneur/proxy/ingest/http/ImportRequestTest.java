package dev.veneur.proxy.ingest.http;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.ingest.ImportRefusal;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.RawResponse;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * One {@code /import} body received within the memory budget, over a real Vert.x HTTP server, a
 * real {@link ProxyContext} (its {@link dev.veneur.proxy.memory.MemoryBudget}) and raw sockets
 * that control how fast and how much they send. The request handler hands each request to
 * {@link ImportRequest} paused, as Vert.x Web's router does; no {@link ConnectionGuard} is
 * installed (ImportRequest works without one). Each request's deadline comes from its
 * {@code X-Deadline-Ms} header (10 s without), so one test can give two requests different ones.
 *
 * <p>Every test ends with the budget's {@code used} and {@code receiving} back at 0 once the test
 * released the bodies the sink received, and every request with exactly one outcome.
 */
class ImportRequestTest {
  private static final Duration WAIT = Duration.ofSeconds(5);
  private static Vertx vertx;

  private ProxyContext ctx;
  private HttpServer server;
  private int port;
  /** Every outcome the sink saw, in order. */
  private final ConcurrentLinkedQueue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
  /** Outcomes per request: any request told twice is a failure. */
  private final Map<HttpServerRequest, Integer> perRequest = new IdentityHashMap<>();
  /** Requests the handler started. */
  private volatile int started;
  /** Requests the test abandoned on purpose: they have no outcome. */
  private int abandoned;
  private final List<Socket> sockets = new ArrayList<>();

  /** What the sink was told about one request. */
  record Outcome(String path, int status, String cause, boolean close, byte[] body, ImportRequest request,
      Context loop, long usedAtReceipt) {
    boolean received() {
      return request != null;
    }
  }

  private final ImportRequest.Sink sink = new ImportRequest.Sink() {
    @Override
    public void received(ImportRequest request) {
      told(request.req);
      ByteArrayOutputStream copy = new ByteArrayOutputStream();
      for (ByteBuffer b : request.body()) {
        byte[] a = new byte[b.remaining()];
        b.get(a);
        copy.writeBytes(a);
      }
      outcomes.add(new Outcome(request.req.path(), 202, null, false, copy.toByteArray(), request,
          Vertx.currentContext(), ctx.budget().used()));
      request.req.response().setStatusCode(202).end();
    }

    @Override
    public void refused(HttpServerRequest req, ImportRefusal refusal, boolean close) {
      told(req);
      outcomes.add(new Outcome(req.path(), refusal.status, refusal.cause, close, null, null, null, -1));
      req.response().setStatusCode(refusal.status).putHeader("Connection", close ? "close" : "keep-alive")
          .end(refusal.reason());
      if (close) req.connection().close();
    }
  };

  private synchronized void told(HttpServerRequest req) {
    perRequest.merge(req, 1, Integer::sum);
  }

  @BeforeAll
  static void vertx() {
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void closeVertx() {
    vertx.close().await();
  }

  /** A server on 127.0.0.1 port 0 whose requests go to ImportRequest under {@code config}. */
  private void start(JsonObject config) {
    JsonObject c = new JsonObject().put("forward_address", "http://127.0.0.1:1").put("max_body_bytes", 1_000_000)
        .put("memory_budget", 1 << 20).put("http_request_timeout", "10s");
    c.mergeIn(config);
    ctx = new ProxyContext(ProxyConfig.from(c));
    server = vertx.createHttpServer();
    server.requestHandler(req -> {
      started++;
      req.pause(); // as the router hands it over
      String d = req.getHeader("X-Deadline-Ms");
      long deadlineNanos = TimeUnit.MILLISECONDS.toNanos(d == null ? 10_000 : Long.parseLong(d));
      new ImportRequest(vertx, ctx, req, deadlineNanos, sink).begin();
    });
    port = server.listen(0, "127.0.0.1").await().actualPort();
  }

  @AfterEach
  void stop() throws IOException {
    for (Socket s : sockets) s.close();
    if (server != null) server.close().await();
    synchronized (this) {
      for (Map.Entry<HttpServerRequest, Integer> e : perRequest.entrySet()) {
        assertEquals(1, e.getValue(), "outcomes of " + e.getKey().path());
      }
      assertEquals(started - abandoned, perRequest.size(), "every request started and not abandoned has an outcome");
    }
  }

  // ---------------------------------------------------------------------------------------------

  @Test
  void aCompleteBodyIsHandedOnWithItsBytesReservedUntilReleased() throws Exception {
    start(new JsonObject());
    byte[] body = random(200_000, 1);
    Socket s = connect();
    OutputStream out = s.getOutputStream();
    out.write(head("/a", body.length));
    // In pieces, so the body arrives in several reads.
    for (int off = 0; off < body.length; off += 50_000) {
      out.write(body, off, 50_000);
      out.flush();
    }
    Outcome o = next();
    assertTrue(o.received(), "received, not refused: " + o);
    assertArrayEquals(body, o.body, "the body as sent");
    assertEquals(body.length, o.request.bodyBytes());
    assertEquals(body.length, ctx.budget().used(), "the body stays reserved until released");
    assertEquals(0, ctx.budget().receiving(), "no longer receiving");
    assertEquals(202, status(s));
    release(o);
    assertBudgetEmpty();
  }

  @Test
  void aDeclaredLengthOverMaxBodyBytesIsRefused413AndClosedWithoutReading() throws Exception {
    start(new JsonObject().put("max_body_bytes", 10_000));
    Socket s = connect();
    s.getOutputStream().write(head("/declared", 10_001));
    Outcome o = next();
    assertRefused(o, 413, "too_large");
    assertEquals(413, status(s));
    assertClosed(s);
    assertBudgetEmpty();
  }

  /** max_body_bytes is the largest body taken, declared or read: exactly that much is received. */
  @Test
  void aBodyOfExactlyMaxBodyBytesIsReceived() throws Exception {
    start(new JsonObject().put("max_body_bytes", 10_000));
    byte[] body = random(10_000, 13);
    Socket s = connect();
    s.getOutputStream().write(head("/exact", body.length));
    s.getOutputStream().write(body);
    Outcome o = next();
    assertTrue(o.received(), "received: " + o);
    assertArrayEquals(body, o.body);
    assertEquals(202, status(s));
    release(o);
    assertBudgetEmpty();
  }

  @Test
  void aChunkedBodyReadPastMaxBodyBytesIsRefused413AndLetGo() throws Exception {
    start(new JsonObject().put("max_body_bytes", 10_000));
    Socket s = connect();
    OutputStream out = s.getOutputStream();
    out.write(("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .getBytes(StandardCharsets.US_ASCII));
    // 4,000-byte chunks until refused: the third goes past 10,000.
    CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
      byte[] chunk = random(4_000, 2);
      try {
        for (int i = 0; i < 100; i++) {
          out.write(("fa0\r\n").getBytes(StandardCharsets.US_ASCII));
          out.write(chunk);
          out.write("\r\n".getBytes(StandardCharsets.US_ASCII));
          out.flush();
        }
      } catch (IOException closed) {
        // refused and closed
      }
    });
    Outcome o = next();
    assertRefused(o, 413, "too_large");
    assertClosed(s);
    writer.get(5, TimeUnit.SECONDS);
    assertBudgetEmpty();
  }

  @Test
  void aBodyNotInByTheDeadlineWhileFreeToSendIsRefused408() throws Exception {
    start(new JsonObject());
    Socket s = connect();
    OutputStream out = s.getOutputStream();
    long t0 = System.nanoTime();
    out.write(head("/slow", 1_000, "X-Deadline-Ms: 300\r\n"));
    out.write(random(10, 3));
    out.flush();
    Outcome o = next();
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertRefused(o, 408, "slow_body");
    assertTrue(ms >= 250, "refused at its deadline, not before: " + ms + " ms");
    assertEquals(408, status(s));
    assertClosed(s);
    assertBudgetEmpty();
  }

  /**
   * The budget (1 MiB) is smaller than the two bodies (900,000 bytes each). A sends 300,000 bytes
   * of its body; B sends all of its body, filling the budget with partial bodies: B reads on
   * through the full budget (it leads) and is received. A, sending the rest, is held back (its
   * partial body is too small to lead), waits without a 503 until the test releases B, then reads
   * on and is received whole.
   */
  @Test
  void theLeadReadsOnAndTheWaiterCompletesOnceTheLeadIsReleased() throws Exception {
    start(new JsonObject().put("memory_wait_timeout", "10s"));
    long limit = ctx.budget().limit();
    HeldBack h = aHeldBackBehindB(4, 5);
    Sender a = h.a();
    Sender b = h.b();
    Outcome ob = h.ob();
    CompletableFuture<Void> rest = h.rest();
    assertTrue(ob.usedAtReceipt >= limit, "B read on past the limit: " + ob.usedAtReceipt);
    assertArrayEquals(b.body, ob.body);
    assertTrue(outcomes.isEmpty(), "A has no outcome while it waits: " + outcomes);
    assertTrue(ctx.budget().receiving() < a.body.length, "A is not read whole");

    release(ob);
    Outcome oa = next();
    assertTrue(oa.received(), "A received once B was released, not refused: " + oa);
    assertEquals("/a", oa.path);
    assertArrayEquals(a.body, oa.body);
    rest.get(5, TimeUnit.SECONDS);
    assertEquals(202, status(a.socket));
    assertEquals(202, status(b.socket));
    release(oa);
    assertBudgetEmpty();
  }

  /** As above, but nobody releases B: A waits memory_wait_timeout and is refused 503. */
  @Test
  void aWaiterNobodyMakesRoomForIsRefused503AfterMemoryWaitTimeout() throws Exception {
    start(new JsonObject().put("memory_wait_timeout", "200ms"));
    HeldBack h = aHeldBackBehindB(6, 7);
    Sender a = h.a();
    Sender b = h.b();
    Outcome ob = h.ob();
    CompletableFuture<Void> rest = h.rest();
    long t0 = System.nanoTime();
    Outcome oa = next();
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertEquals("/a", oa.path);
    assertRefused(oa, 503, "overloaded");
    assertTrue(ms < 3_000, "refused after memory_wait_timeout (200 ms), not the deadline: " + ms + " ms");
    assertClosed(a.socket);
    rest.handle((v, e) -> null).get(5, TimeUnit.SECONDS);
    assertEquals(0, ctx.budget().waiting());
    assertEquals(0, ctx.budget().receiving(), "A's partial body let go");
    assertEquals(b.body.length, ctx.budget().used(), "only B is still held");
    release(ob);
    assertBudgetEmpty();
  }

  /**
   * Held back for memory when its deadline comes: the proxy's fault, 503, not the sender's 408. B
   * (900,000 bytes, not released) is received first; A's first reads then find the budget full,
   * with too little of a partial body to lead, and wait: memory_wait_timeout is 10 s, A's deadline
   * 300 ms.
   */
  @Test
  void aRequestHeldBackAtItsDeadlineIsRefused503() throws Exception {
    start(new JsonObject().put("memory_wait_timeout", "10s"));
    Sender b = new Sender("/b", random(900_000, 9), null);
    b.send(0, b.body.length);
    Outcome ob = next();
    assertEquals("/b", ob.path);
    assertTrue(ob.received());

    long t0 = System.nanoTime();
    Sender a = new Sender("/a", random(900_000, 8), "X-Deadline-Ms: 300\r\n");
    CompletableFuture<Void> rest = a.sendAsync(0, a.body.length);
    Await.until("A waits for memory", WAIT, () -> ctx.budget().waiting() == 1);
    Outcome oa = next();
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertEquals("/a", oa.path);
    assertRefused(oa, 503, "overloaded");
    assertTrue(ms >= 250 && ms < 5_000, "at its deadline (300 ms), not memory_wait_timeout: " + ms + " ms");
    assertClosed(a.socket);
    rest.handle((v, e) -> null).get(5, TimeUnit.SECONDS);
    assertEquals(0, ctx.budget().receiving());
    assertEquals(0, ctx.budget().waiting());
    release(ob);
    assertBudgetEmpty();
  }

  /**
   * A sender that goes away mid-body is abandoned: no outcome (there is nobody to answer), and its
   * partial body goes back to the budget.
   */
  @Test
  void aSenderGoneMidBodyIsLetGoWithoutAnOutcome() throws Exception {
    start(new JsonObject());
    Socket s = connect();
    s.getOutputStream().write(head("/gone", 100_000));
    s.getOutputStream().write(random(40_000, 10));
    s.getOutputStream().flush();
    Await.until("40,000 bytes are in", WAIT, () -> ctx.budget().receiving() == 40_000);
    s.close();
    assertBudgetEmpty();
    assertTrue(outcomes.isEmpty(), "no outcome: " + outcomes);
    abandoned = 1;
  }

  /**
   * The same while held back for memory: A leaves the queue and its bytes go back, B untouched. A
   * paused socket may not see its peer's close (Vert.x stops reading it, and the NIO transport
   * only learns of a close by reading): then memory_wait_timeout (300 ms) ends the wait with a
   * 503 to nobody. Either way A holds nothing past memory_wait_timeout.
   */
  @Test
  void aSenderGoneWhileHeldBackLeavesTheQueueAndTheBudget() throws Exception {
    start(new JsonObject().put("memory_wait_timeout", "300ms"));
    HeldBack h = aHeldBackBehindB(11, 12);
    Sender a = h.a();
    Sender b = h.b();
    Outcome ob = h.ob();
    CompletableFuture<Void> rest = h.rest();
    a.socket.setSoLinger(true, 0); // a reset: the writer blocked in write() fails at once
    a.socket.close();
    Await.until("A leaves the queue and lets its bytes go", WAIT,
        () -> ctx.budget().waiting() == 0 && ctx.budget().receiving() == 0);
    assertEquals(b.body.length, ctx.budget().used(), "only B is still held");
    rest.handle((v, e) -> null).get(5, TimeUnit.SECONDS);
    if (outcomes.isEmpty()) {
      abandoned = 1; // the close was seen: abandoned, nobody to answer
    } else {
      Outcome oa = next();
      assertEquals("/a", oa.path);
      assertRefused(oa, 503, "overloaded");
    }
    release(ob);
    assertBudgetEmpty();
  }

  // ---------------------------------------------------------------------------------------------

  /** One raw-socket sender of a body with a Content-Length, in as many parts as the test likes. */
  private final class Sender {
    final String path;
    final byte[] body;
    final Socket socket;
    private final OutputStream out;

    Sender(String path, byte[] body, String extraHeaders) throws IOException {
      this.path = path;
      this.body = body;
      this.socket = connect();
      this.out = socket.getOutputStream();
      out.write(head(path, body.length, extraHeaders == null ? "" : extraHeaders));
    }

    void send(int from, int to) throws IOException {
      out.write(body, from, to - from);
      out.flush();
    }

    /** Sends on another thread: a body held back by the proxy blocks its writer. */
    CompletableFuture<Void> sendAsync(int from, int to) {
      CompletableFuture<Void> f = new CompletableFuture<>();
      Thread t = new Thread(() -> {
        try {
          send(from, to);
          f.complete(null);
        } catch (IOException e) {
          f.completeExceptionally(e);
        }
      }, "sender" + path);
      t.setDaemon(true);
      t.start();
      return f;
    }
  }

  /** A's first 300,000 bytes in, B whole after them (B leads), A's rest sent and waiting for memory. */
  private record HeldBack(Sender a, Sender b, Outcome ob, CompletableFuture<Void> rest) {}

  /**
   * Two 900,000-byte bodies on the 1 MiB budget: A sends its first 300,000 bytes, then B all of its
   * body, which it reads whole through the full budget (it leads); then A's rest is sent and A
   * waits for memory.
   */
  private HeldBack aHeldBackBehindB(long seedA, long seedB) throws Exception {
    Sender a = new Sender("/a", random(900_000, seedA), null);
    Sender b = new Sender("/b", random(900_000, seedB), null);
    a.send(0, 300_000);
    Await.until("A's first 300,000 bytes are in", WAIT, () -> ctx.budget().receiving() == 300_000);
    b.send(0, b.body.length);
    Outcome ob = next();
    assertEquals("/b", ob.path, "B leads: read whole through the full budget");
    assertTrue(ob.received(), "B received: " + ob);
    CompletableFuture<Void> rest = a.sendAsync(300_000, a.body.length);
    Await.until("A waits for memory", WAIT, () -> ctx.budget().waiting() == 1);
    return new HeldBack(a, b, ob, rest);
  }

  private Socket connect() throws IOException {
    Socket s = new Socket("127.0.0.1", port);
    s.setSoTimeout(5_000);
    sockets.add(s);
    return s;
  }

  private static byte[] head(String path, long contentLength) {
    return head(path, contentLength, "");
  }

  private static byte[] head(String path, long contentLength, String extra) {
    return ("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
        + contentLength + "\r\n" + extra + "\r\n").getBytes(StandardCharsets.US_ASCII);
  }

  private static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  /** The next outcome, waited for. */
  private Outcome next() {
    Await.until("an outcome", WAIT, () -> !outcomes.isEmpty());
    return outcomes.poll();
  }

  private void assertRefused(Outcome o, int status, String cause) {
    assertEquals(status, o.status, "status of " + o);
    assertEquals(cause, o.cause, "cause of " + o);
    assertTrue(o.close, "a refusal before the body was read whole closes the connection: " + o);
  }

  /** Releases a received body on its event loop, as the decoder would. */
  private void release(Outcome o) throws Exception {
    CompletableFuture<Void> done = new CompletableFuture<>();
    o.loop.runOnContext(v -> {
      o.request.release();
      done.complete(null);
    });
    done.get(5, TimeUnit.SECONDS);
  }

  private void assertBudgetEmpty() {
    Await.until("the budget is empty (used " + ctx.budget().used() + ", receiving " + ctx.budget().receiving()
        + ")", WAIT, () -> ctx.budget().used() == 0 && ctx.budget().receiving() == 0);
    assertEquals(0, ctx.budget().waiting(), "nobody waits");
  }

  /** The status of the response the socket reads next. */
  private static int status(Socket s) throws IOException {
    return RawResponse.read(s).status();
  }

  /** The server closed the connection: reads end (or reset), within the socket timeout. */
  private static void assertClosed(Socket s) throws IOException {
    InputStream in = s.getInputStream();
    byte[] buf = new byte[8192];
    try {
      while (in.read(buf) != -1) {
        // drain the answer
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the connection is still open");
    } catch (IOException reset) {
      // closed with unread data: a reset
    }
  }
}
