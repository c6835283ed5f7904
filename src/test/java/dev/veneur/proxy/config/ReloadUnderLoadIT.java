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
 * Issue 9: the config file rewritten atomically every second for 20 s under load, between static
 * destination lists; see {@link ReloadRun} for what is expected. The globals answer after 100 ms:
 * healthy, with batches in flight at every change.
 */
@ExtendWith(VertxExtension.class)
@Timeout(value = 150, unit = TimeUnit.SECONDS)
class ReloadUnderLoadIT {
  @TempDir Path dir;

  /** [A, B] <-> [B, C]: A and C leave and join by turns, B stays. */
  @Test
  void forwardAddressesAlternatingBetweenListsUnderLoad(Vertx vertx) throws Exception {
    ReloadRun.run(vertx, dir, new ReloadRun.Options("forward_addresses [A, B] <-> [B, C] every second under load",
        true, 100, false, List.of()));
  }

  /** A <-> B: the whole ring moves at every change. */
  @Test
  void forwardAddressAlternatingUnderLoad(Vertx vertx) throws Exception {
    ReloadRun.run(vertx, dir, new ReloadRun.Options("forward_address A <-> B every second under load",
        false, 100, false, List.of()));
  }

  /**
   * The Consul service (and agent) alternating: consul_forward_service_name and consul_address
   * change together every second, between a service whose healthy instances are [A, B] and one
   * whose are [B, C]. Each change replaces the discovery verticle; the ring follows its first answer.
   */
  @Test
  void consulServiceAlternatingUnderLoad(Vertx vertx) throws Exception {
    ReloadRun.run(vertx, dir, new ReloadRun.Options("Consul service [A, B] <-> [B, C] every second under load",
        true, 100, false, List.of(), true));
  }
}
