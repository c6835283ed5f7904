package dev.veneur.proxy.e2e;

import dev.veneur.proxy.support.FaultyGlobal.Mode;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 9: one global of three sends an endless answer, hangs, or resets its connections, under
 * load from four senders of real 1000-metric bodies, against the proxy process with -Xmx256m.
 * Each test is one {@link FaultScenario} run; its class comment lists what is expected. Timeouts
 * in the YAML are short (forward_timeout 3s) so a run takes seconds.
 */
@ExtendWith(VertxExtension.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 150, unit = TimeUnit.SECONDS)
class BrokenGlobalIT {
  @TempDir Path dir;

  /**
   * 202 headers, then a chunked body that never ends (16 KiB every 5 ms per connection): the
   * answer must be cut at forward_timeout and read only up to a bound, never buffered whole.
   */
  @Test
  @Order(1)
  void aGlobalSendingAnEndlessBody(Vertx vertx) throws Exception {
    FaultScenario.assertHeld(FaultScenario.run(vertx, dir, "F sends 202 with an endless chunked body",
        Mode.ENDLESS, g -> { }));
  }

  /** Accepts the connection and reads the request, never answers. */
  @Test
  @Order(2)
  void aGlobalThatHangs(Vertx vertx) throws Exception {
    FaultScenario.assertHeld(FaultScenario.run(vertx, dir, "F reads requests and never answers",
        Mode.HANG, g -> { }));
  }

  /** Reads the request, then resets the connection (RST). */
  @Test
  @Order(3)
  void aGlobalThatResetsItsConnections(Vertx vertx) throws Exception {
    FaultScenario.assertHeld(FaultScenario.run(vertx, dir, "F resets every connection after the request",
        Mode.RESET, g -> { }));
  }
}
