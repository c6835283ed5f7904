package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.SteadySenders;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 21 item 9, in a real proxy process beside a real load: a metric with a type but no name
 * (absent, null or "") reaches the global, as the Go proxy v2 forwards it and a v2 global imports
 * and flushes it (a series named ""). Only a metric without a type is still dropped.
 */
@ExtendWith(VertxExtension.class)
class NamelessMetricIT {
  private static final int NAMED = 50;

  @Test
  void aMetricWithATypeButNoNameReachesTheGlobal(Vertx vertx, @TempDir Path dir) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    int port = TestProxy.freePort();
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "forward_address: \"" + global.url() + "\"",
        "batch_linger: \"10ms\"", ""));
    // TestGlobal keeps every metric (a copy-on-write list): a modest load, 50-metric bodies.
    // Each nameless body: 3 metrics without a name (absent, null, ""), each with a tagstring that
    // says which sender sent it, among named ones.
    JsonArray nameless = Bodies.generate("beside", 20, 7);
    nameless.add(new JsonObject().put("type", "counter").put("tagstring", "nameless:absent").put("value", "AQAAAAAAAAA="));
    nameless.add(new JsonObject().putNull("name").put("type", "gauge").put("tagstring", "nameless:null")
        .put("value", "AAAAAAAA8D8="));
    nameless.add(new JsonObject().put("name", "").put("type", "set").put("tagstring", "nameless:empty"));
    byte[] namelessBody = Bodies.deflate(Bodies.utf8(nameless.encode()));
    byte[] loadBody = Bodies.deflate(Bodies.utf8(Bodies.generate("load", NAMED, 3).encode()));

    ProxyProcess proxy = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    try {
      Await.until("proxy up", Duration.ofSeconds(60), () -> DebugState.get(port) != null);
      SteadySenders senders = SteadySenders.start(port, Map.of(
          "load1", List.of(loadBody), "load2", List.of(loadBody), "nameless", List.of(namelessBody)),
          Duration.ofMillis(25), Duration.ofSeconds(10));
      SteadySenders.Sender odd = senders.senders.stream().filter(s -> s.prefix.equals("nameless")).findFirst().get();
      try {
        Await.until("nameless bodies sent beside the load", Duration.ofSeconds(60),
            () -> odd.accepted.get() >= 100 && senders.accepted() >= 300);
      } finally {
        senders.close();
      }
      for (SteadySenders.Sender s : senders.senders) assertEquals(0, s.otherCount() + s.refused503.get(), s.toString());
      long accepted202 = (long) (senders.accepted() - odd.accepted.get()) * NAMED + (long) odd.accepted.get() * nameless.size();
      assertTrue(DebugState.awaitIdle(proxy, port, Duration.ofSeconds(60)), "the proxy settled: " + proxy.log());
      JsonObject state = DebugState.get(port);
      assertNull(DebugState.accountingProblem(state, true), String.valueOf(state));
      assertEquals(accepted202, DebugState.counter(state, "received"), "every metric counted received: " + state);
      assertEquals(accepted202, DebugState.counter(state, "forwarded"), "and forwarded, none dropped: " + state);
      Await.until("every metric answered 202 at the global", () -> global.metrics.size() >= accepted202);
      assertEquals(accepted202, global.metrics.size());
      for (String kind : List.of("absent", "null", "empty")) {
        long n = global.metrics.stream().filter(m -> ("nameless:" + kind).equals(m.getString("tagstring"))).count();
        assertEquals(odd.accepted.get(), n, "the global got every metric with its name " + kind);
      }
      assertEquals(0, proxy.terminate(), proxy.log());
    } finally {
      proxy.kill();
    }
  }
}
