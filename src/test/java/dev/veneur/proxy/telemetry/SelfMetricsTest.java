package dev.veneur.proxy.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.codahale.metrics.Gauge;
import com.codahale.metrics.Histogram;
import com.codahale.metrics.Timer;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.SentryStandIn;
import dev.veneur.proxy.support.StatsdSink;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
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
      Await.until("the bad JSON, tagged", () -> sink.counterSum(p + "import.request_error_total", "cause:json") == 1);
      Await.until("the bad encoding, tagged",
          () -> sink.counterSum(p + "import.request_error_total", "cause:unknown_content_encoding") == 1);
      Await.until("queue gauge back at 0", () -> sink.lastGauge(p + "metrics.queued", "") == 0);
      // Timers as DogStatsD timings, histograms as DogStatsD histograms, one line per sample.
      for (String name : new String[] {"import.response_duration_ns", "forward.duration_ns", "proxy.duration_ns"}) {
        Await.until(name + " as |ms", () -> sink.seenTyped(p + name, "ms"));
      }
      for (String name : new String[] {"forward.content_length_bytes", "event_loop.lag_ms"}) {
        Await.until(name + " as |h", () -> sink.seenTyped(p + name, "h"));
      }
      Await.until("POSTs counted", () -> sink.counterSum(p + "forward.post_total", "") >= 1);
      // Every POST's body size is one |h sample: the agent's .count is the number of POSTs.
      Await.until("one size sample per POST", () -> sink.sampledCount(p + "forward.content_length_bytes", "", "h")
          == sink.counterSum(p + "forward.post_total", ""));
      for (String name : new String[] {"jvm.heap_used_bytes", "http.connections"}) {
        Await.until(name + " as |g", () -> sink.seenTyped(p + name, "g"));
      }
      // The identity, from the outside: received = forwarded + dropped + queued.
      assertEquals(sink.counterSum(p + "metrics.received_total", ""),
          sink.counterSum(p + "metrics.forwarded_total", "") + sink.lastGauge(p + "metrics.queued", ""));
      // No Dropwizard-snapshot series any more: the agent computes percentiles from the samples.
      for (StatsdSink.Line l : sink.lines) {
        assertFalse(l.name().matches(".*\\.(p50|p99|max|count)$"), l.raw());
        if (l.name().endsWith("_ns")) assertEquals("ms", l.type(), l.raw());
      }
    } finally {
      proxy.stop();
      sink.close();
    }
  }

  /**
   * The series a Go veneur-proxy 2.0.0 produces, through the whole proxy, with v2's names, wire
   * types and tags. Needs the call sites described in the telemetry branch's hand-over (import
   * timer tags, forward part:json, the zero error count, metrics_by_destination as an event gauge,
   * import.metrics_total): enable it when they land.
   */
  @Test
  void goProxySeriesThroughTheWholeProxy(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("stats_address", sink.address())
        .put("stats_interval", "100ms"));
    try {
      for (int i = 0; i < 3; i++) {
        byte[] json = Bodies.utf8(Bodies.generate("v2s" + i, 400, i).encode());
        assertEquals(202, proxy.post(Bodies.deflate(json), "deflate").statusCode());
      }
      assertEquals(202, proxy.post(Bodies.utf8(Bodies.generate("v2plain", 100, 9).encode()), null).statusCode());
      assertEquals(400, proxy.post(Bodies.utf8("{not json"), null).statusCode());
      proxy.awaitSettled();
      String p = "veneur_proxy.";
      Await.until("import timings tagged part/encoding, one per 202",
          () -> sink.sampledCount(p + "import.response_duration_ns", "part:request,encoding:deflate", "ms") == 3
              && sink.sampledCount(p + "import.response_duration_ns", "part:request,encoding:identity", "ms") == 1);
      Await.until("metrics per sender", () -> sink.counterSum(p + "import.metrics_total",
          "remote_addr:127.0.0.1,veneurglobalonly") == 1300);
      // One sample per accepted request (four 202s), when its last chunk has been delivered.
      Await.until("proxy.duration_ns untagged, one per accepted request",
          () -> sink.sampledCount(p + "proxy.duration_ns", "", "ms") == 4);
      Await.until("forward.duration_ns part:json", () -> sink.sampledCount(p + "forward.duration_ns", "part:json", "ms") >= 1);
      Await.until("forward.content_length_bytes untagged |h", () -> sink.sampledCount(p + "forward.content_length_bytes", "", "h") >= 1);
      Await.until("the zero error count after successful forwards",
          () -> !sink.lines(p + "forward.error_total", "", "c").isEmpty());
      assertEquals(0, sink.counterSum(p + "forward.error_total", ""));
      Await.until("metrics_by_destination as a gauge",
          () -> !sink.lines(p + "metrics_by_destination", "destination:" + global.url(), "g").isEmpty());
      for (StatsdSink.Line l : sink.lines(p + "metrics_by_destination", "destination:" + global.url(), "g")) {
        assertTrue(l.value() > 0 && l.value() <= 1300, l.raw());
      }
      for (StatsdSink.Line l : sink.lines) {
        if (l.name().equals(p + "metrics_by_destination")) assertEquals("g", l.type(), l.raw());
        if (l.name().equals(p + "import.response_duration_ns")) assertTrue(l.tags().startsWith("part:request,encoding:"), l.raw());
      }
    } finally {
      proxy.stop();
      sink.close();
    }
  }

  // ---- The reporter against a registry, over real UDP: exact wire types, rates, packing. ----

  private static final String P = "t.";

  private static StatsdReporter reporter(Vertx vertx, IntervalRegistry registry, StatsdSink sink) {
    return new StatsdReporter(vertx, registry, sink.address(), P);
  }

  /** Sends a marker through the same reporter and waits for it: everything sent before has arrived. */
  private static void barrier(IntervalRegistry registry, StatsdReporter reporter, StatsdSink sink) {
    double before = sink.counterSum(P + "barrier", "");
    registry.counter("barrier").inc();
    reporter.report();
    Await.until("the barrier line", () -> sink.counterSum(P + "barrier", "") == before + 1);
  }

  private static List<String> raw(StatsdSink sink, String name) {
    List<String> out = new ArrayList<>();
    for (StatsdSink.Line l : sink.lines) if (l.name().equals(P + name)) out.add(l.raw());
    return out;
  }

  @Test
  void timersAreOneMsLinePerSampleInNanosecondsWithTheirTags(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    IntervalRegistry reg = new IntervalRegistry(1000);
    StatsdReporter rep = reporter(vertx, reg, sink);
    try {
      Timer t = reg.timer("proxy.duration_ns");
      t.update(1500, TimeUnit.NANOSECONDS);
      t.update(2, TimeUnit.MILLISECONDS);
      t.update(7, TimeUnit.MICROSECONDS);
      reg.timer(ProxyMetrics.withTags("import.response_duration_ns", "part:request", "encoding:deflate"))
          .update(Duration.ofNanos(123_456));
      rep.report();
      Await.until("4 timing lines", () -> sink.lines.size() == 4);
      assertEquals(List.of("t.proxy.duration_ns:1500|ms", "t.proxy.duration_ns:2000000|ms", "t.proxy.duration_ns:7000|ms"),
          raw(sink, "proxy.duration_ns"));
      assertEquals(List.of("t.import.response_duration_ns:123456|ms|#part:request,encoding:deflate"),
          raw(sink, "import.response_duration_ns"));
      assertEquals(3, t.getCount(), "Dropwizard's own count is untouched by reporting");

      // Nothing recorded since: no timing line at all in the next report.
      rep.report();
      barrier(reg, rep, sink);
      assertEquals(3, raw(sink, "proxy.duration_ns").size());
      assertEquals(1, raw(sink, "import.response_duration_ns").size());
    } finally {
      rep.stop();
      sink.close();
    }
  }

  @Test
  void histogramsAreOneHLinePerSample(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    IntervalRegistry reg = new IntervalRegistry(1000);
    StatsdReporter rep = reporter(vertx, reg, sink);
    try {
      Histogram h = reg.histogram("forward.content_length_bytes");
      h.update(100);
      h.update(2000);
      h.update(100);
      rep.report();
      Await.until("3 histogram lines", () -> sink.lines.size() == 3);
      assertEquals(List.of("t.forward.content_length_bytes:100|h", "t.forward.content_length_bytes:2000|h",
          "t.forward.content_length_bytes:100|h"), raw(sink, "forward.content_length_bytes"));
      h.update(5);
      rep.report();
      Await.until("the next interval's sample only", () -> raw(sink, "forward.content_length_bytes").size() == 4);
      assertEquals("t.forward.content_length_bytes:5|h", raw(sink, "forward.content_length_bytes").get(3));
    } finally {
      rep.stop();
      sink.close();
    }
  }

  @Test
  void countersAreDeltasAndAZeroIncrementIsSent(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    IntervalRegistry reg = new IntervalRegistry(1000);
    StatsdReporter rep = reporter(vertx, reg, sink);
    try {
      reg.counter("metrics.received_total").inc(5);
      reg.counter(ProxyMetrics.tagged("forward.error_total", "cause", "io")).inc();
      reg.counter("forward.error_total").inc(0); // what the Go proxy sends after each successful POST
      reg.counter("untouched_total");
      rep.report();
      Await.until("3 counter lines", () -> sink.lines.size() == 3);
      assertEquals(List.of("t.metrics.received_total:5|c"), raw(sink, "metrics.received_total"));
      assertEquals(List.of("t.forward.error_total:1|c|#cause:io", "t.forward.error_total:0|c"),
          sorted(raw(sink, "forward.error_total")));
      assertTrue(raw(sink, "untouched_total").isEmpty());

      rep.report(); // nothing moved: no counter line
      reg.counter("metrics.received_total").inc(3);
      reg.counter("forward.error_total").inc(0);
      reg.counter("forward.error_total").inc(0);
      rep.report();
      barrier(reg, rep, sink);
      assertEquals(List.of("t.metrics.received_total:5|c", "t.metrics.received_total:3|c"), raw(sink, "metrics.received_total"));
      assertEquals(List.of("t.forward.error_total:0|c", "t.forward.error_total:0|c"),
          raw(sink, "forward.error_total").stream().filter(l -> !l.contains("#")).toList());
      assertEquals(1, raw(sink, "forward.error_total").stream().filter(l -> l.contains("#")).count());
      assertTrue(raw(sink, "untouched_total").isEmpty());
    } finally {
      rep.stop();
      sink.close();
    }
  }

  @Test
  void aReplacedReporterCarriesOnFromThePreviousOne(Vertx vertx) {
    StatsdSink first = StatsdSink.start(vertx);
    StatsdSink second = StatsdSink.start(vertx);
    IntervalRegistry reg = new IntervalRegistry(1000);
    StatsdReporter a = reporter(vertx, reg, first);
    StatsdReporter b = null;
    try {
      reg.counter("metrics.received_total").inc(5);
      reg.timer("proxy.duration_ns").update(10, TimeUnit.NANOSECONDS);
      a.report();
      Await.until("first agent", () -> first.counterSum(P + "metrics.received_total", "") == 5);
      a.stop();
      b = reporter(vertx, reg, second); // a reload with a new stats_address
      reg.counter("metrics.received_total").inc(2);
      b.report();
      barrier(reg, b, second);
      assertEquals(2, second.counterSum(P + "metrics.received_total", ""), "only what happened since");
      assertTrue(raw(second, "proxy.duration_ns").isEmpty(), "samples are sent once");
    } finally {
      if (b != null) b.stop();
      first.close();
      second.close();
    }
  }

  @Test
  void eventGaugesOnlyWhenSetStateGaugesEveryInterval(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    IntervalRegistry reg = new IntervalRegistry(1000);
    StatsdReporter rep = reporter(vertx, reg, sink);
    try {
      AtomicLong queued = new AtomicLong(3);
      reg.register("metrics.queued", (Gauge<Long>) queued::get);
      reg.register("ratio", (Gauge<Double>) () -> 0.25);
      reg.register("nan", (Gauge<Double>) () -> Double.NaN);
      EventGauge dest = reg.eventGauge(ProxyMetrics.tagged("metrics_by_destination", "destination", "http://10.0.0.1:8080"));
      dest.set(400);
      rep.report();
      Await.until("3 gauge lines", () -> sink.lines.size() == 3);
      assertEquals(List.of("t.metrics_by_destination:400|g|#destination:http://10.0.0.1:8080"),
          raw(sink, "metrics_by_destination"));
      assertEquals(List.of("t.metrics.queued:3|g"), raw(sink, "metrics.queued"));
      assertEquals(List.of("t.ratio:0.25|g"), raw(sink, "ratio"));
      assertTrue(raw(sink, "nan").isEmpty(), "a NaN gauge has no value to send");

      queued.set(0);
      rep.report(); // the event gauge was not set: only the state gauges
      dest.set(7);
      dest.set(9); // two forwards in one interval: the last value, as the agent would keep
      rep.report();
      barrier(reg, rep, sink);
      assertEquals(List.of("t.metrics_by_destination:400|g|#destination:http://10.0.0.1:8080",
          "t.metrics_by_destination:9|g|#destination:http://10.0.0.1:8080"), raw(sink, "metrics_by_destination"));
      // Reports 2, 3 and the barrier's each sent the state gauge again.
      assertEquals(List.of("t.metrics.queued:3|g", "t.metrics.queued:0|g", "t.metrics.queued:0|g", "t.metrics.queued:0|g"),
          raw(sink, "metrics.queued"));
      assertEquals(9L, dest.getValue(), "in-process readers still see the last value");
    } finally {
      rep.stop();
      sink.close();
    }
  }

  @Test
  void overTheCapAUniformSampleGoesOutWithARateThatRebuildsTheCount(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    IntervalRegistry reg = new IntervalRegistry(100);
    StatsdReporter rep = reporter(vertx, reg, sink);
    try {
      Timer t = reg.timer("proxy.duration_ns");
      for (int i = 1; i <= 1000; i++) t.update(i, TimeUnit.NANOSECONDS);
      Histogram h = reg.histogram("forward.content_length_bytes");
      for (int i = 1; i <= 333; i++) h.update(i);
      rep.report();
      Await.until("100 + 100 sampled lines", () -> sink.lines.size() == 200);
      List<StatsdSink.Line> ms = sink.lines(P + "proxy.duration_ns", "", "ms");
      assertEquals(100, ms.size());
      for (StatsdSink.Line l : ms) {
        assertTrue(l.raw().endsWith("|ms|@0.1"), l.raw());
        assertTrue(l.value() >= 1 && l.value() <= 1000, l.raw());
      }
      assertEquals(1000, sink.sampledCount(P + "proxy.duration_ns", "", "ms"), 1e-6, "the agent's count");
      assertEquals(100, ms.stream().mapToDouble(StatsdSink.Line::value).distinct().count(), "each sample once");
      double mean = ms.stream().mapToDouble(StatsdSink.Line::value).average().orElseThrow();
      assertTrue(mean > 300 && mean < 700, "a uniform sample of 1..1000, not the first 100: mean " + mean);
      List<StatsdSink.Line> hs = sink.lines(P + "forward.content_length_bytes", "", "h");
      assertEquals(100, hs.size());
      assertTrue(hs.get(0).raw().contains("|h|@0.3003003003003003"), hs.get(0).raw());
      assertEquals(333, sink.sampledCount(P + "forward.content_length_bytes", "", "h"), 1e-6);

      // The next interval starts empty and, under the cap, unsampled.
      for (int i = 0; i < 10; i++) t.update(5, TimeUnit.NANOSECONDS);
      rep.report();
      Await.until("10 more", () -> sink.lines(P + "proxy.duration_ns", "", "ms").size() == 110);
      assertTrue(sink.lines(P + "proxy.duration_ns", "", "ms").subList(100, 110).stream()
          .allMatch(l -> l.raw().equals("t.proxy.duration_ns:5|ms")));
    } finally {
      rep.stop();
      sink.close();
    }
  }

  @Test
  void theReservoirKeepsEverySampleWithEqualChance() {
    // 3000 intervals of 100 samples into a reservoir of 10: each value should be kept ~300 times.
    IntervalReservoir r = new IntervalReservoir(10);
    int[] kept = new int[100];
    for (int round = 0; round < 3000; round++) {
      for (int v = 0; v < 100; v++) r.update(v);
      IntervalReservoir.Drained d = r.drain();
      assertEquals(100, d.seen());
      assertEquals(10, d.samples().length);
      assertEquals(0.1, d.rate());
      for (long v : d.samples()) kept[(int) v]++;
    }
    for (int v = 0; v < 100; v++) {
      // Binomial(3000, 0.1): sd ~16.4; 150 is more than 9 sd away.
      assertTrue(kept[v] > 150 && kept[v] < 450, "value " + v + " kept " + kept[v] + " times");
    }
    assertEquals(0, r.drain().seen(), "a drain empties the interval");
    assertEquals(1.0, r.drain().rate());
  }

  @Test
  void datagramsStayWithinTheLimitAndLinesAreNeverSplit(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    IntervalRegistry reg = new IntervalRegistry(1000);
    StatsdReporter rep = reporter(vertx, reg, sink);
    try {
      Set<String> expected = new HashSet<>();
      for (int i = 0; i < 200; i++) {
        String dest = "http://global-" + i + ".veneur.service.dc1.consul.example.internal:8127/" + "x".repeat(i % 50);
        reg.eventGauge(ProxyMetrics.tagged("metrics_by_destination", "destination", dest)).set(i);
        expected.add("t.metrics_by_destination:" + i + "|g|#destination:" + dest);
      }
      Timer t = reg.timer("proxy.duration_ns");
      for (int i = 0; i < 500; i++) {
        t.update(1_000_000 + i, TimeUnit.NANOSECONDS);
        expected.add("t.proxy.duration_ns:" + (1_000_000 + i) + "|ms");
      }
      // One line that cannot fit any datagram: dropped whole, never cut.
      reg.counter(ProxyMetrics.tagged("too_long", "tag", "y".repeat(1500))).inc();
      rep.report();
      Await.until("all 700 lines", () -> sink.lines.size() == 700);
      assertEquals(expected, sink.lines.stream().map(StatsdSink.Line::raw).collect(Collectors.toSet()));
      assertTrue(sink.packets.size() > 10, "many datagrams: " + sink.packets.size());
      int lines = 0;
      for (byte[] packet : sink.packets) {
        assertTrue(packet.length <= StatsdReporter.MAX_PACKET, "datagram of " + packet.length + " bytes");
        for (String line : new String(packet, StandardCharsets.UTF_8).split("\n")) {
          assertTrue(expected.contains(line), "a whole line: " + line);
          lines++;
        }
      }
      assertEquals(700, lines);
      assertEquals(700, rep.linesSent());
      assertEquals(sink.packets.size(), rep.datagramsSent());
      // Packed, not one line per datagram: each datagram but the last is too full for the next line.
      assertTrue(sink.packets.size() < 700 / 10, "packed: " + sink.packets.size() + " datagrams");
      assertTrue(raw(sink, "too_long").isEmpty());
    } finally {
      rep.stop();
      sink.close();
    }
  }

  @Test
  void nothingIsSentForMetricsThatDidNotChange(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    IntervalRegistry reg = new IntervalRegistry(1000);
    StatsdReporter rep = reporter(vertx, reg, sink);
    try {
      reg.register("metrics.queued", (Gauge<Long>) () -> 0L);
      reg.counter("metrics.received_total").inc(2);
      reg.counter("forward.error_total").inc(0);
      reg.timer("proxy.duration_ns").update(5, TimeUnit.NANOSECONDS);
      reg.histogram("forward.content_length_bytes").update(9);
      reg.eventGauge("discoverer.destination_number#service:g").set(3);
      rep.report();
      assertEquals(6, rep.linesSent());
      Await.until("6 lines", () -> sink.lines.size() == 6);
      rep.report();
      rep.report();
      assertEquals(8, rep.linesSent(), "only the state gauge, twice");
      barrier(reg, rep, sink);
      for (String name : List.of("metrics.received_total", "forward.error_total", "proxy.duration_ns",
          "forward.content_length_bytes", "discoverer.destination_number")) {
        assertEquals(1, raw(sink, name).size(), name);
      }
      assertEquals(4, raw(sink, "metrics.queued").size(), "every report, the barrier's included");
    } finally {
      rep.stop();
      sink.close();
    }
  }

  @Test
  void proxyMetricsBuildsReportableKinds() {
    ProxyMetrics m = new ProxyMetrics();
    assertTrue(m.timer(ProxyMetrics.PROXY_DURATION) instanceof IntervalTimer);
    assertTrue(m.registry().timer(ProxyMetrics.withTags(ProxyMetrics.FORWARD_DURATION, "part:json")) instanceof IntervalTimer);
    assertTrue(m.registry().histogram(ProxyMetrics.FORWARD_BYTES) instanceof IntervalHistogram);
    assertTrue(m.histogram(ProxyMetrics.FORWARD_BYTES) instanceof IntervalHistogram);
    assertTrue(m.counter(ProxyMetrics.FORWARD_ERRORS, "cause", "io") instanceof DeltaCounter);
    assertTrue(m.registry().counter(ProxyMetrics.FORWARD_ERRORS) instanceof DeltaCounter);
    assertTrue(m.registry().getCounters().get(ProxyMetrics.RECEIVED) instanceof DeltaCounter);
    EventGauge g = m.eventGauge(ProxyMetrics.tagged(ProxyMetrics.BY_DESTINATION, "destination", "http://a"));
    assertTrue(g == m.eventGauge(ProxyMetrics.tagged(ProxyMetrics.BY_DESTINATION, "destination", "http://a")));
    assertEquals("import.response_duration_ns#part:request,encoding:deflate",
        ProxyMetrics.withTags(ProxyMetrics.IMPORT_DURATION, "part:request", "encoding:deflate"));
    assertEquals("import.metrics_total#remote_addr:10.1.2.3,veneurglobalonly",
        ProxyMetrics.withTags(ProxyMetrics.IMPORT_METRICS, "remote_addr:10.1.2.3", "veneurglobalonly"));
    m.accepted(3, 30);
    assertEquals(3, m.received());
  }

  private static List<String> sorted(List<String> l) {
    List<String> c = new ArrayList<>(l);
    c.sort(Comparator.reverseOrder());
    return c;
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
      // Not where senders reach: only on the admin listener.
      assertEquals(404, proxy.postPath("/debug/profile").statusCode());
      var r = proxy.postAdmin("/debug/profile");
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
