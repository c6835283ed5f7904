package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.veneur.proxy.support.LogCapture;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.slf4j.LoggerFactory;

/**
 * Refusals as dashboards and the log see them: one counter per cause under the series name each
 * protocol has always used (so a v2 dashboard keeps working for /import and gRPC is told apart), a
 * count for every refusal, and at most one log line per cause and period.
 */
class RefusalsTest {
  /** Long enough that no end-of-period line can come while a test runs: lines are the immediate ones only. */
  private static final long PERIOD_MS = 600_000;

  private final Logger logger = (Logger) LoggerFactory.getLogger("test.RefusalsTest");
  @RegisterExtension
  final LogCapture log = LogCapture.of("test.RefusalsTest");
  private LogThrottle importsLog;
  private final ProxyMetrics metrics = new ProxyMetrics();
  private Refusals imports;
  private Refusals grpc;

  @BeforeEach
  void setUp() {
    // A throttle per test: its per-cause state must not carry over between tests.
    importsLog = new LogThrottle(logger, PERIOD_MS);
    imports = new Refusals(metrics, null, importsLog);
    grpc = new Refusals(metrics, "grpc", new LogThrottle(logger, PERIOD_MS));
  }

  private List<String> lines() {
    return log.messages();
  }

  /** Every import.request_error_total series with a count, by registry name. */
  private Map<String, Long> errorCounters() {
    Map<String, Long> out = new TreeMap<>();
    metrics.registry().getCounters((name, m) -> name.startsWith(ProxyMetrics.IMPORT_ERRORS))
        .forEach((name, c) -> out.put(name, c.getCount()));
    return out;
  }

  @Test
  void importSeriesCarryOnlyTheCauseAndGrpcSeriesTheProtocolToo() {
    // Spelled out rather than built with the helpers: these are the names dashboards query.
    assertEquals("import.request_error_total#cause:too_large", imports.name("too_large"));
    assertEquals("import.request_error_total#cause:too_large,protocol:grpc", grpc.name("too_large"));
  }

  @Test
  void refusedCountsEveryRefusalButLogsOneLinePerCauseAndPeriod() {
    imports.refused("too_large", "refused /import from a: 413 too large (too_large)");
    imports.refused("too_large", "refused /import from b: 413 too large (too_large)");
    imports.refused("too_large", "refused /import from c: 413 too large (too_large)");
    imports.refused("slow_body", "refused /import from d: 408 slow (slow_body)");

    assertEquals(Map.of("import.request_error_total#cause:too_large", 3L,
        "import.request_error_total#cause:slow_body", 1L), errorCounters(), "each refusal counted, by cause");
    assertEquals(List.of("refused /import from a: 413 too large (too_large)",
        "refused /import from d: 408 slow (slow_body)"), lines(), "the first of each cause at once, no more");
    assertEquals(2, importsLog.suppressed("too_large"), "the two left out are kept for the period's line");
    log.events().forEach(e -> assertEquals(Level.WARN, e.getLevel(), "a refusal is the sender's fault: WARN"));
  }

  @Test
  void countCountsWithoutALogLine() {
    imports.count("not_found");
    imports.count("not_found");
    grpc.count("not_found");

    assertEquals(Map.of("import.request_error_total#cause:not_found", 2L,
        "import.request_error_total#cause:not_found,protocol:grpc", 1L), errorCounters());
    assertEquals(List.of(), lines(), "count() is for what is logged elsewhere or not worth a line");
    assertEquals(0, importsLog.suppressed("not_found"), "and is not even a left-out line");
  }

  @Test
  void theSameCauseIsCountedApartPerProtocol() {
    imports.refused("overloaded", "import overloaded");
    grpc.refused("overloaded", "grpc overloaded");
    grpc.refused("overloaded", "grpc overloaded again");

    assertEquals(Map.of("import.request_error_total#cause:overloaded", 1L,
        "import.request_error_total#cause:overloaded,protocol:grpc", 2L), errorCounters());
    // Each protocol has its own throttle: gRPC's flood does not hide /import's first line.
    assertEquals(List.of("import overloaded", "grpc overloaded"), lines());
  }

  /**
   * An HTTP verticle's Refusals is not used by its event loop alone: HttpConnections hands it to the
   * AcceptGate, which refuses connections on the listener's acceptor thread. Two threads counting
   * causes not seen before must neither fail nor lose a count. Many causes (where the proxy has a
   * dozen) so that the map's first insertions, where the race is, happen often enough to be seen.
   *
   * <p>With a plain HashMap as the per-cause cache this failed 3 runs of 3
   * (ConcurrentModificationException), which at the accept gate left a refused connection unclosed.
   */
  @Test
  void twoThreadsCountingNewCausesAtOnceLoseNothingAndNeverThrow() throws Exception {
    int causes = 20_000;
    java.util.concurrent.CyclicBarrier go = new java.util.concurrent.CyclicBarrier(2);
    java.util.List<Throwable> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
    java.util.List<Thread> threads = new java.util.ArrayList<>();
    for (String who : List.of("loop", "acceptor")) {
      Thread t = new Thread(() -> {
        try {
          go.await();
          for (int i = 0; i < causes; i++) imports.count("cause" + i);
        } catch (Throwable e) {
          failures.add(e);
        }
      }, who);
      threads.add(t);
      t.start();
    }
    for (Thread t : threads) t.join(10_000);
    assertEquals(List.of(), failures, "counting from two threads");
    for (int i = 0; i < causes; i++) {
      assertEquals(2, metrics.registry().counter(imports.name("cause" + i)).getCount(), "cause" + i);
    }
  }

  @Test
  void warnAndErrorLogWithoutCounting() {
    imports.warn("dropped_metric", "dropped a metric");
    imports.error("route_failure", "a route failed");

    assertEquals(Map.of(), errorCounters(), "neither is a refusal of a request");
    assertEquals(List.of("dropped a metric", "a route failed"), lines());
    assertEquals(Level.WARN, log.events().get(0).getLevel());
    assertEquals(Level.ERROR, log.events().get(1).getLevel());
  }
}
