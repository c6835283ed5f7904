package dev.veneur.proxy.config;

import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 9's worst case: {@code forward_address} A <-> B rewritten every second while the queue is
 * at its cap. The issue saw OutOfMemoryError on every event loop, /healthcheck and /debug/state
 * dead, SIGTERM unhandled and 221,000 accepted metrics lost ("Re-routing queued data must not copy
 * it while the original is still held"). Expected as in {@link ReloadRun}, except that 503s are
 * allowed (the proxy is overloaded by design here).
 *
 * <p>The globals answer after 1 s during the load: 8 POSTs of at most 2000 metrics per second,
 * 16 000 metrics/s, against 40 000 offered, so the queue grows until the proxy's memory cap. The
 * cap is set to {@code memory_budget: 24MiB} so that a proxy queueing compressed bytes reaches it
 * within the 20 s too (an older proxy ignores the key and reaches its default 64 MiB per
 * destination instead). After the load the globals answer at once so the queue drains in seconds.
 */
@ExtendWith(VertxExtension.class)
@Timeout(value = 150, unit = TimeUnit.SECONDS)
class ReloadAtQueueCapIT {
  @TempDir Path dir;

  @Test
  void forwardAddressAlternatingWhileTheQueueIsAtItsCap(Vertx vertx) throws Exception {
    ReloadRun.run(vertx, dir, new ReloadRun.Options("forward_address A <-> B every second at the queue cap",
        false, 1000, true, List.of("memory_budget: \"24MiB\"")));
  }
}
