package dev.veneur.proxy.discovery;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The Kubernetes discovery settings a proxy refuses to start with. Kubernetes discovery at work:
 * {@link KubernetesDiscoveryIT}.
 */
@ExtendWith(VertxExtension.class)
class KubernetesDiscoveryTest {
  private static final String SVC = "veneur-global";

  @Test
  void withoutANamespaceOrApiOutsideAPodItRefusesToStartNamingTheKey(Vertx vertx) {
    try {
      TestProxy.start(vertx, new JsonObject().put("kubernetes_forward_service_name", SVC));
      throw new AssertionError("started without a Kubernetes API");
    } catch (RuntimeException e) {
      String all = String.valueOf(e) + " " + String.valueOf(e.getCause());
      assertTrue(all.contains("kubernetes_api_url") || all.contains("kubernetes_namespace"), all);
    }
  }
}
