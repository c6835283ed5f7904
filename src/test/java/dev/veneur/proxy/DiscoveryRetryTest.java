package dev.veneur.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Issue 21: a discovery that fails to start on a reload is tried again (with backoff) while the
 * old one keeps the ring; before, the reload failed with the new config already in place, and the
 * ring stayed on the old members until some later reload changed a discovery key again.
 */
@ExtendWith(VertxExtension.class)
class DiscoveryRetryTest {

  @Test
  void aDiscoveryThatFailsToStartOnReloadIsRetried(Vertx vertx) {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject().put("forward_address", a.url()));
    try {
      AtomicInteger failuresLeft = new AtomicInteger(3);
      AtomicInteger tries = new AtomicInteger();
      var real = proxy.app.discoveryFactory;
      proxy.app.discoveryFactory = cfg -> {
        tries.incrementAndGet();
        if (failuresLeft.getAndDecrement() <= 0) return real.apply(cfg);
        return new VerticleBase() {
          @Override
          public Future<?> start() {
            return Future.failedFuture("cannot start now");
          }
        };
      };
      ProxyConfig next = ProxyConfig.from(new JsonObject()
          .put("http_address", "127.0.0.1:" + proxy.port)
          .put("batch_linger", "10ms")
          .put("forward_timeout", "3s")
          .put("forward_address", b.url()));
      proxy.app.reconfigure(next).await();
      assertEquals(List.of(a.url()), proxy.ringMembers(), "the old discovery keeps the ring meanwhile");
      Await.until("the new discovery started on a retry", () -> proxy.ringMembers().equals(List.of(b.url())));
      assertEquals(4, tries.get(), "three failed starts, then one that worked");
    } finally {
      proxy.stop();
    }
  }
}
