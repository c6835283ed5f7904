package dev.veneur.proxy.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.SentryStandIn;
import dev.veneur.proxy.support.StatsdSink;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** Self-metrics over real UDP, errors to a real HTTP Sentry stand-in, JFR dumps on demand. */
@ExtendWith(VertxExtension.class)
class SelfMetricsTest {

  @Test
  void statsdReceivesTheDocumentedNamesWithTagsAndTrueValues(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("stats_address", sink.address())
        .put("stats_interval", "100ms"));
    try {
      for (int i = 0; i < 3; i++) {
        byte[] json = Bodies.utf8(Bodies.generate("stats" + i, 400, i).encode());
        assertEquals(202, proxy.post(Bodies.deflate(json), "deflate").statusCode());
      }
      assertEquals(400, proxy.post(Bodies.utf8("{not json"), null).statusCode());
      assertEquals(415, proxy.post(Bodies.utf8("[]"), "br").statusCode());
      proxy.awaitSettled();

      String p = "veneur_proxy.";
      Await.until("received 1200 over StatsD", () -> sink.counterSum(p + "metrics.received_total", "") == 1200);
      Await.until("forwarded 1200 over StatsD", () -> sink.counterSum(p + "metrics.forwarded_total", "") == 1200);
      Await.until("per-destination count", () ->
          sink.counterSum(p + "metrics_by_destination", "destination:" + global.url()) == 1200);
      Await.until("the bad JSON, tagged", () -> sink.counterSum(p + "import.request_error_total", "cause:json") == 1);
      Await.until("the bad encoding, tagged",
          () -> sink.counterSum(p + "import.request_error_total", "cause:unknown_content_encoding") == 1);
      Await.until("queue gauge back at 0", () -> sink.lastGauge(p + "metrics.queued", "") == 0);
      for (String name : new String[] {"import.response_duration_ns.p99", "forward.duration_ns.p50",
          "proxy.duration_ns.max", "forward.content_length_bytes.p99", "forward.post_total", "event_loop.lag_ms.max", "jvm.heap_used_bytes",
          "http.connections"}) {
        Await.until(name + " reported", () -> sink.seen(p + name));
      }
      // The identity, from the outside: received = forwarded + dropped + queued.
      assertEquals(sink.counterSum(p + "metrics.received_total", ""),
          sink.counterSum(p + "metrics.forwarded_total", "") + sink.lastGauge(p + "metrics.queued", ""));
    } finally {
      proxy.stop();
      sink.close();
    }
  }

  @Test
  void errorsReachSentryWithHostAndVersion(Vertx vertx) {
    SentryStandIn sentry = SentryStandIn.start(vertx);
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("sentry_dsn", sentry.dsn()));
    try {
      // An exception escaping a handler on an event loop.
      vertx.runOnContext(v -> {
        throw new IllegalStateException("forced for the Sentry test");
      });
      Await.until("an envelope with the forced error", Duration.ofSeconds(30), () ->
          sentry.envelopes.stream().anyMatch(e -> e.contains("forced for the Sentry test")));
      String env = sentry.envelopes.stream().filter(e -> e.contains("forced for the Sentry test")).findFirst().get();
      assertTrue(env.contains("\"release\":\"veneur-proxy@"), env);
      assertTrue(env.contains("\"server_name\":\""), env);
      assertTrue(sentry.paths.stream().allMatch(x -> x.equals("/api/42/envelope/")), sentry.paths.toString());
      // The proxy keeps serving.
      assertEquals(202, proxy.post(Bodies.utf8(Bodies.generate("after", 10, 1).encode()), null).statusCode());
    } finally {
      proxy.stop();
      sentry.close();
    }
  }

  @Test
  void withoutADsnNothingIsSent(Vertx vertx) {
    SentryStandIn sentry = SentryStandIn.start(vertx);
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject().put("forward_address", global.url()));
    try {
      vertx.runOnContext(v -> {
        throw new IllegalStateException("no DSN, nowhere to go");
      });
      assertEquals(202, proxy.post(Bodies.utf8(Bodies.generate("x", 10, 1).encode()), null).statusCode());
      proxy.awaitSettled();
      assertTrue(sentry.envelopes.isEmpty());
    } finally {
      proxy.stop();
      sentry.close();
    }
  }

  @Test
  void profilingDumpsAFlightRecordingOnDemand(Vertx vertx, @TempDir Path dir) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("enable_profiling", true)
        .put("profiling_dir", dir.toString()));
    try {
      var r = proxy.postPath("/debug/profile");
      assertEquals(200, r.statusCode(), r.body());
      Path file = Path.of(r.body().trim());
      assertTrue(Files.size(file) > 0 && file.startsWith(dir), file.toString());
    } finally {
      proxy.stop();
    }
    try (var files = Files.list(dir)) {
      assertTrue(files.anyMatch(f -> f.getFileName().toString().contains("shutdown")), "dumped at stop");
    }
  }
}
