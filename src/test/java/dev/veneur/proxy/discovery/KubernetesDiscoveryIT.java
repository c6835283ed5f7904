package dev.veneur.proxy.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.KubernetesApiDouble;
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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kubernetes discovery against a server that speaks the EndpointSlice API as Kubernetes does
 * ({@link KubernetesApiDouble}: list with a resourceVersion, a chunked watch of events, 410 Gone,
 * watches the server closes), over real sockets, with real globals.
 */
@ExtendWith(VertxExtension.class)
class KubernetesDiscoveryIT {
  private static final String NS = "metrics";
  private static final String SVC = "veneur-global";

  @TempDir Path dir;
  private KubernetesApiDouble api;
  private TestProxy proxy;

  @AfterEach
  void stop() {
    if (proxy != null) proxy.stop();
    if (api != null) api.close();
  }

  private TestProxy start(Vertx vertx, Path token) {
    return TestProxy.start(vertx, new JsonObject()
        .put("kubernetes_forward_service_name", SVC)
        .put("kubernetes_namespace", NS)
        .put("kubernetes_api_url", api.url())
        .put("kubernetes_token_file", token.toString()));
  }

  private static JsonObject slice(String name, TestGlobal g, boolean ready) {
    return KubernetesApiDouble.slice(name, SVC, "http", g.port(), "127.0.0.1", ready);
  }

  private void post(String prefix, int n) {
    JsonArray body = Bodies.generate(prefix, n, prefix.hashCode());
    assertEquals(202, proxy.post(Bodies.utf8(body.encode()), null).statusCode());
  }

  @Test
  void readyEndpointsAreTheRingAndWatchEventsMoveIt(Vertx vertx) throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    TestGlobal c = TestGlobal.start(vertx);
    api = KubernetesApiDouble.start(vertx, NS);
    api.event("ADDED", slice("veneur-global-a", a, true));
    api.event("ADDED", slice("veneur-global-b", b, true));
    // Another Service's slice in the namespace: not ours.
    api.event("ADDED", KubernetesApiDouble.slice("other-x", "other", "http", c.port(), "127.0.0.1", true));
    Path token = Files.writeString(dir.resolve("token"), "token-1\n");
    proxy = start(vertx, token);
    assertEquals(List.of(a.url(), b.url()).stream().sorted().toList(), proxy.ringMembers().stream().sorted().toList());
    Await.until("watching", () -> api.openWatches() == 1);

    // An endpoint that stops being ready leaves; a pod replaced (a slice deleted, another added)
    // moves the ring with it; a bookmark changes nothing.
    api.event("MODIFIED", slice("veneur-global-b", b, false));
    Await.until("b not ready, gone", () -> proxy.ringMembers().equals(List.of(a.url())));
    api.bookmark();
    api.event("DELETED", slice("veneur-global-a", a, true));
    api.event("ADDED", slice("veneur-global-c", c, true));
    Await.until("a replaced by c", () -> proxy.ringMembers().equals(List.of(c.url())));
    post("k8s", 300);
    Await.until("delivered to c", () -> c.metrics.size() == 300);
    assertEquals(1, api.lists.get(), "one list, then the watch carried every change");
  }

  @Test
  void closedWatchesResumeGoneRelistsAndAnUnreachableApiKeepsTheRing(Vertx vertx) throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    TestGlobal b = TestGlobal.start(vertx);
    api = KubernetesApiDouble.start(vertx, NS);
    api.event("ADDED", slice("veneur-global-a", a, true));
    Path token = Files.writeString(dir.resolve("token"), "token-1\n");
    proxy = start(vertx, token);
    assertEquals(List.of(a.url()), proxy.ringMembers());
    Await.until("watching", () -> api.openWatches() == 1);

    // The server ends the watch (its timeout): resumed from the last version, no new list.
    api.closeWatches();
    Await.until("watch resumed", () -> api.watchesOpened.get() == 2 && api.openWatches() == 1);
    assertEquals(1, api.lists.get());
    api.event("ADDED", slice("veneur-global-b", b, true));
    Await.until("b joins through the resumed watch", () -> proxy.ringMembers().size() == 2);

    // The version it resumes from is compacted away: 410 Gone, and a new list.
    api.compact();
    api.closeWatches();
    Await.until("listed again after 410", Duration.ofSeconds(20), () -> api.gone.get() >= 1 && api.lists.get() >= 2
        && api.openWatches() == 1);
    assertEquals(2, proxy.ringMembers().size());

    // Unreachable for a while (503 to every request, the watch cut): the ring stays as it was.
    long errorsBefore = proxy.metrics().counter("discoverer.errors", "service", SVC).getCount();
    api.down.set(true);
    api.closeWatches();
    Await.until("failures counted", Duration.ofSeconds(20),
        () -> proxy.metrics().counter("discoverer.errors", "service", SVC).getCount() >= errorsBefore + 3);
    assertEquals(2, proxy.ringMembers().size(), "the last good ring while the API is away");
    post("k8s-down", 200);
    Await.until("delivered meanwhile", () -> a.metrics.size() + b.metrics.size() == 200);

    // The token rotated on disk while the API was away: the next requests carry the new one.
    api.token.set("token-2");
    Files.writeString(dir.resolve("token"), "token-2\n");
    api.down.set(false);
    api.event("MODIFIED", slice("veneur-global-a", a, false));
    Await.until("back: a not ready any more", Duration.ofSeconds(30), () -> proxy.ringMembers().equals(List.of(b.url())));
    assertEquals(0, api.unauthorized.get(), "never asked with a stale token");
    proxy.awaitSettled();
  }

  /** An event that never ends and a list too big to read: each read only up to the bound, the ring kept. */
  @Test
  void anEndlessEventAndAnOversizeListCostABoundedReadAndKeepTheRing(Vertx vertx) throws Exception {
    TestGlobal a = TestGlobal.start(vertx);
    api = KubernetesApiDouble.start(vertx, NS);
    api.event("ADDED", slice("veneur-global-a", a, true));
    Path token = Files.writeString(dir.resolve("token"), "token-1\n");
    proxy = TestProxy.start(vertx, new JsonObject()
        .put("kubernetes_forward_service_name", SVC)
        .put("kubernetes_namespace", NS)
        .put("kubernetes_api_url", api.url())
        .put("kubernetes_token_file", token.toString())
        .put("consul_max_answer_bytes", "64KiB"));
    Await.until("watching", () -> api.openWatches() == 1);
    long errors = proxy.metrics().counter("discoverer.errors", "service", SVC).getCount();
    api.padListTo.set(1 << 20);
    api.endlessEvent(4 << 20);
    Await.until("the event given up and lists refused", Duration.ofSeconds(30),
        () -> api.lists.get() >= 3 && proxy.metrics().counter("discoverer.errors", "service", SVC).getCount() >= errors + 2);
    assertEquals(List.of(a.url()), proxy.ringMembers(), "the last good ring");
    api.padListTo.set(0);
    TestGlobal b = TestGlobal.start(vertx);
    api.event("ADDED", slice("veneur-global-b", b, true));
    Await.until("back to normal", Duration.ofSeconds(30), () -> proxy.ringMembers().size() == 2);
  }
}
