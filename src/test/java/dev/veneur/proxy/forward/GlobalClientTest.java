package dev.veneur.proxy.forward;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.LogCapture;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.WebClientOptions;
import io.vertx.junit5.VertxExtension;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The client of one global, against a global that takes requests and never answers. */
@ExtendWith(VertxExtension.class)
class GlobalClientTest {
  /** What Vert.x logs during each test (its HTTP client's errors included). */
  @RegisterExtension final LogCapture vertxLog = LogCapture.of("io.vertx");

  /**
   * One connection allowed, held by an exchange the global has not answered yet: a second
   * exchange waits for the connection, and its deadline passes while it waits. When the global
   * then answers the first, the pool hands the connection to the second's request: it must be
   * dropped unsent, and nothing may be thrown on the event loop (the Web Client once threw a
   * NullPointerException there, logged at ERROR, each time a global that hung came back). Nor may
   * Vert.x log the dropped request's reset at ERROR (it does for a request without an exception
   * handler), which would reach Sentry for every timeout of a hanging global.
   */
  @Test
  void anExchangeWhoseDeadlinePassesWhileItWaitsForAConnectionIsNeverSent(Vertx vertx) throws Exception {
    List<Throwable> uncaught = new CopyOnWriteArrayList<>();
    vertx.exceptionHandler(uncaught::add);
    AtomicInteger requests = new AtomicInteger();
    CompletableFuture<HttpServerRequest> held = new CompletableFuture<>();
    HttpServer global = vertx.createHttpServer()
        .requestHandler(req -> {
          requests.incrementAndGet();
          // The first is answered only when the test says so, any later one at once.
          if (!held.complete(req)) req.response().setStatusCode(202).end();
        })
        .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    String url = "http://127.0.0.1:" + global.actualPort() + "/import";

    Context loop = vertx.getOrCreateContext();
    CompletableFuture<GlobalClient.Outcome> first = new CompletableFuture<>();
    CompletableFuture<GlobalClient.Outcome> second = new CompletableFuture<>();
    java.util.concurrent.atomic.AtomicReference<GlobalClient> clientRef = new java.util.concurrent.atomic.AtomicReference<>();
    loop.runOnContext(v -> {
      GlobalClient client = new GlobalClient(vertx, new WebClientOptions().setKeepAlive(true),
          new PoolOptions().setHttp1MaxSize(1));
      clientRef.set(client);
      client.post(url, Buffer.buffer("[]"), 30_000, 0, null, first::complete);
      client.post(url, Buffer.buffer("[]"), 200, 0, null, second::complete);
    });

    GlobalClient.Outcome waited = second.get(10, TimeUnit.SECONDS);
    assertTrue(waited.timedOut(), "the waiting exchange ends at its deadline");
    assertEquals(0, waited.status());
    HttpServerRequest firstRequest = held.get(10, TimeUnit.SECONDS);
    firstRequest.response().setStatusCode(202).end();
    assertEquals(202, first.get(10, TimeUnit.SECONDS).status());

    // The freed connection goes to the stale request, which must be dropped before it is written;
    // then a third exchange gets a connection and is answered.
    CompletableFuture<GlobalClient.Outcome> third = new CompletableFuture<>();
    loop.runOnContext(v -> clientRef.get().post(url, Buffer.buffer("[]"), 10_000, 0, null, third::complete));
    assertEquals(202, third.get(15, TimeUnit.SECONDS).status());
    // Everything the client's event loop did before this task has run (the stale request's fate included).
    CompletableFuture<Void> marker = new CompletableFuture<>();
    loop.runOnContext(v -> marker.complete(null));
    marker.get(10, TimeUnit.SECONDS);
    assertEquals(2, requests.get(), "the stale request was never sent (only the first and the third were)");
    assertTrue(uncaught.isEmpty(), "thrown on the event loop: " + uncaught);
    assertEquals(List.of(), vertxLog.events().stream().filter(e -> e.getLevel() == ch.qos.logback.classic.Level.ERROR)
        .map(e -> e.getLoggerName() + ": " + e.getFormattedMessage()).toList(), "logged at ERROR by Vert.x");
  }
}
