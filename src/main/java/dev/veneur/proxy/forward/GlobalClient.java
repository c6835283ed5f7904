package dev.veneur.proxy.forward;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.streams.WriteStream;
import io.vertx.ext.web.client.HttpRequest;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import io.vertx.ext.web.client.impl.ClientPhase;
import io.vertx.ext.web.codec.BodyCodec;
import java.nio.charset.StandardCharsets;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Talks to one global with a hard deadline on each exchange. The Web Client's own timeout only
 * fires when <em>no</em> byte arrives for a while, so a global that trickles its answer, or sends
 * {@code 202} with an endless body, would hold a POST forever; here one timer covers the whole
 * exchange (connect, send, headers and body of the answer) and resets the request when it fires.
 * The answer's body is never buffered: its first bytes are kept for a log line, the rest is
 * counted and discarded as it arrives.
 *
 * <p>One per forwarder, used on its event loop only.
 */
final class GlobalClient {
  /**
   * How an exchange ended. {@code status} is the answer's status, or 0 when none came (an error,
   * or the deadline before the status line). {@code timedOut} with a status: the status line came
   * but the body did not end by the deadline (a trickling or endless answer).
   */
  record Outcome(int status, Throwable error, boolean timedOut, long elapsedNanos, String excerpt) {
    boolean ok() {
      return status / 100 == 2;
    }
  }

  private static final int EXCERPT = 200;
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(GlobalClient.class);

  private final Vertx vertx;
  private final WebClient client;
  private final io.vertx.core.http.HttpClient http;
  /** The request each exchange sends, found again by the interceptor to learn its client request. */
  private final Map<HttpRequest<?>, Exchange> byRequest = new IdentityHashMap<>();

  /** New connections use these (forward_tls files rewritten on disk); open ones keep their session. */
  io.vertx.core.Future<Boolean> updateSSLOptions(io.vertx.core.net.ClientSSLOptions options) {
    return client.updateSSLOptions(options, true);
  }

  GlobalClient(Vertx vertx, WebClientOptions options, PoolOptions pool) {
    this.vertx = vertx;
    // Connection-level errors (a reset, say) also fail the request in progress, which the
    // forwarder counts and logs once per episode; Vert.x would log each at ERROR besides.
    http = vertx.httpClientBuilder().with(options).with(pool)
        .withConnectHandler(conn -> conn.exceptionHandler(e -> LOG.debug("connection to a global: {}", e.toString())))
        .build();
    this.client = WebClient.wrap(http, options);
    client.addInterceptor(ctx -> {
      if (ctx.phase() == ClientPhase.SEND_REQUEST) {
        Exchange x = byRequest.get(ctx.request());
        if (x != null) {
          x.clientRequest = ctx.clientRequest();
          // A request reset before it ended (at its deadline, or dropped unsent below) fails the
          // exchange, which the forwarder counts and logs once per episode; without a handler here
          // Vert.x would also log every such reset at ERROR ("Stream reset"), to Sentry.
          x.clientRequest.exceptionHandler(e -> LOG.debug("request to a global: {}", e.toString()));
          if (x.done) {
            // The deadline passed while a connection was being found: don't send at all. Failing
            // the context resets the request; going on to the send phase with a reset request
            // made the Web Client throw a NullPointerException on the event loop.
            ctx.fail(new java.util.concurrent.TimeoutException("forward_timeout passed before the request was sent"));
            return;
          }
        }
      } else if (ctx.phase() == ClientPhase.RECEIVE_RESPONSE) {
        // The status line is in, before the body: what the global decided, whatever its body does.
        Exchange x = byRequest.get(ctx.request());
        if (x != null && ctx.clientResponse() != null) x.status = ctx.clientResponse().statusCode();
      }
      ctx.next();
    });
  }

  /** POSTs a deflated JSON body to {@code url}. {@code onSlow} runs once if no answer by {@code slowMs}. */
  void post(String url, Buffer body, long deadlineMs, long slowMs, Runnable onSlow, Consumer<Outcome> done) {
    HttpRequest<Buffer> req = client.postAbs(url)
        .putHeader(HttpHeaders.CONTENT_TYPE.toString(), "application/json")
        .putHeader(HttpHeaders.CONTENT_ENCODING.toString(), "deflate");
    exchange(req, body, deadlineMs, slowMs, onSlow, done);
  }

  void get(String url, long deadlineMs, Consumer<Outcome> done) {
    exchange(client.getAbs(url), null, deadlineMs, 0, null, done);
  }

  private void exchange(HttpRequest<Buffer> base, Buffer body, long deadlineMs, long slowMs,
      Runnable onSlow, Consumer<Outcome> done) {
    Exchange x = new Exchange(done);
    HttpRequest<Void> req = base.as(BodyCodec.pipe(x.sink, false));
    byRequest.put(req, x);
    x.deadline = vertx.setTimer(Math.max(1, deadlineMs), t -> {
      x.deadline = -1;
      // Settled as a timeout first: the reset below fails the request at once, and that failure
      // must not be taken for the outcome.
      x.finish(x.status, null, true);
      if (x.clientRequest != null) x.clientRequest.reset();
    });
    if (slowMs > 0 && onSlow != null) {
      x.slow = vertx.setTimer(slowMs, t -> {
        x.slow = -1;
        if (!x.done) onSlow.run();
      });
    }
    Future<HttpResponse<Void>> f = body == null ? req.send() : req.sendBuffer(body);
    f.onComplete(ar -> {
      // Only now: until the request is done, the interceptor may still meet it (a connection
      // found after the deadline) and must see that it is finished, to reset rather than send.
      byRequest.remove(req);
      if (ar.succeeded()) x.finish(ar.result().statusCode(), null, false);
      else x.finish(x.status, ar.cause(), false); // a status line may have come before the failure
    });
  }

  void close() {
    client.close();
    http.close();
  }

  private final class Exchange {
    final Consumer<Outcome> callback;
    final long started = System.nanoTime();
    final DiscardingSink sink = new DiscardingSink();
    HttpClientRequest clientRequest;
    /** The answer's status once its status line arrived; 0 before. */
    int status;
    long deadline = -1;
    long slow = -1;
    boolean done;

    Exchange(Consumer<Outcome> callback) {
      this.callback = callback;
    }

    void finish(int status, Throwable error, boolean timedOut) {
      if (this.done) return;
      this.done = true;
      if (deadline >= 0) vertx.cancelTimer(deadline);
      if (slow >= 0) vertx.cancelTimer(slow);
      callback.accept(new Outcome(status, error, timedOut, System.nanoTime() - started, sink.excerpt()));
    }
  }

  /** Keeps the first bytes of an answer for a log line; drops the rest as it arrives. */
  private static final class DiscardingSink implements WriteStream<Buffer> {
    private final byte[] kept = new byte[EXCERPT];
    private int keptLen;

    String excerpt() {
      return new String(kept, 0, keptLen, StandardCharsets.UTF_8).replace('\n', ' ').trim();
    }

    @Override
    public WriteStream<Buffer> exceptionHandler(Handler<Throwable> handler) {
      return this;
    }

    @Override
    public Future<Void> write(Buffer data) {
      int n = Math.min(EXCERPT - keptLen, data.length());
      if (n > 0) {
        data.getBytes(0, n, kept, keptLen);
        keptLen += n;
      }
      return Future.succeededFuture();
    }

    @Override
    public Future<Void> end() {
      return Future.succeededFuture();
    }

    @Override
    public WriteStream<Buffer> setWriteQueueMaxSize(int maxSize) {
      return this;
    }

    @Override
    public boolean writeQueueFull() {
      return false;
    }

    @Override
    public WriteStream<Buffer> drainHandler(Handler<Void> handler) {
      return this;
    }
  }
}
