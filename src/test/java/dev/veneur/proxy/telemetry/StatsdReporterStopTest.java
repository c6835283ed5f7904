package dev.veneur.proxy.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.StatsdSink;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The last report a stop sends leaves before the socket closes, when the stop runs on a worker
 * (as the proxy's stop and reload do) rather than on the socket's event loop.
 */
@ExtendWith(VertxExtension.class)
class StatsdReporterStopTest {
  @Test
  void theLastReportOfAStopOnAWorkerIsSent(Vertx vertx) {
    StatsdSink sink = StatsdSink.start(vertx);
    try {
      for (int round = 1; round <= 20; round++) {
        IntervalRegistry reg = new IntervalRegistry(1000);
        // Made on an event loop, as the proxy makes it; stopped on that context's worker.
        io.vertx.core.Context loop = vertx.getOrCreateContext();
        io.vertx.core.Promise<StatsdReporter> made = io.vertx.core.Promise.promise();
        loop.runOnContext(v -> made.complete(new StatsdReporter(vertx, reg, sink.address(), "s.")));
        StatsdReporter r = made.future().await();
        r.start(1, TimeUnit.HOURS);
        for (int i = 0; i < 200; i++) reg.counter("filler" + i + "#round:" + round).inc();
        reg.counter("final#round:" + round).inc(round);
        loop.executeBlocking(() -> {
          r.stop();
          return null;
        }).await();
        int n = round;
        Await.until("round " + n + "'s last report", () -> sink.counterSum("s.final", "round:" + n) == n);
      }
      assertEquals(20, sink.lines.stream().filter(l -> l.name().equals("s.final")).count());
    } finally {
      sink.close();
    }
  }
}
