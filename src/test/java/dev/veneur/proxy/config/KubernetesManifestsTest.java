package dev.veneur.proxy.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/**
 * The example manifests in {@code conf/kubernetes/} against the code, on everything that can drift
 * apart: the ConfigMap's proxy.yaml is a config the proxy accepts; the probes ask the admin
 * listener it configures, readiness on {@code /healthcheck}; the grace period outlasts
 * {@code shutdown_timeout}; the container's ports are the listeners' and the Service's target
 * ports exist; the config is mounted as a directory (hot reload sees a ConfigMap update); the heap
 * follows the container's limit; the autoscaler and the disruption budget point at the Deployment.
 */
class KubernetesManifestsTest {
  private static final Path DIR = Path.of("conf/kubernetes");

  @SuppressWarnings("unchecked")
  private static Map<String, Map<String, Object>> manifests() throws Exception {
    Map<String, Map<String, Object>> byKind = new HashMap<>();
    try (Stream<Path> files = Files.list(DIR)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).toList()) {
        for (Object doc : new Yaml(new SafeConstructor(new LoaderOptions())).loadAll(Files.readString(f))) {
          Map<String, Object> m = (Map<String, Object>) doc;
          assertNotNull(m.get("kind"), f + " has a kind");
          assertEquals(null, byKind.put((String) m.get("kind"), m), "one " + m.get("kind") + " in " + DIR);
        }
      }
    }
    return byKind;
  }

  @SuppressWarnings("unchecked")
  private static <T> T at(Object node, String... path) {
    Object n = node;
    for (String p : path) {
      if (n instanceof List<?> l) n = l.get(Integer.parseInt(p));
      else n = ((Map<String, Object>) n).get(p);
      if (n == null) throw new AssertionError("no " + String.join(".", path) + " (missing at " + p + ")");
    }
    return (T) n;
  }

  private static int port(String hostPort) {
    return Integer.parseInt(hostPort.substring(hostPort.lastIndexOf(':') + 1));
  }

  @Test
  @SuppressWarnings("unchecked")
  void theManifestsAgreeWithTheProxy() throws Exception {
    Map<String, Map<String, Object>> k = manifests();
    for (String kind : List.of("ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
        "HorizontalPodAutoscaler", "ServiceAccount", "Role", "RoleBinding")) {
      assertTrue(k.containsKey(kind), "a " + kind + " in " + DIR + ": " + k.keySet());
    }
    String proxyYaml = at(k.get("ConfigMap"), "data", "proxy.yaml");
    Map<String, Object> raw = new Yaml(new SafeConstructor(new LoaderOptions())).load(proxyYaml);
    ProxyConfig cfg = ProxyConfig.from(new JsonObject(raw));

    Map<String, Object> pod = at(k.get("Deployment"), "spec", "template", "spec");
    Map<String, Object> container = at(pod, "containers", "0");
    Map<String, Integer> ports = new HashMap<>();
    for (Map<String, Object> p : (List<Map<String, Object>>) container.get("ports")) {
      ports.put((String) p.get("name"), (Integer) p.get("containerPort"));
    }
    assertEquals(cfg.httpPort, ports.get("http"), "the http port is http_address's");
    assertEquals(cfg.grpcPort, ports.get("grpc"), "the grpc port is grpc_address's");
    assertEquals(cfg.adminPort, ports.get("admin"), "the admin port is admin_address's");
    assertFalse(cfg.adminHost.startsWith("127."), "the kubelet reaches the admin listener: not loopback");

    // Readiness: /healthcheck on the admin listener (503 while stopping or without a global).
    assertEquals("/healthcheck", (String) at(container, "readinessProbe", "httpGet", "path"));
    assertEquals("admin", (String) at(container, "readinessProbe", "httpGet", "port"));
    // Liveness must not restart a proxy that merely has no global: not /healthcheck.
    assertEquals("admin", (String) at(container, "livenessProbe", "tcpSocket", "port"));

    int grace = at(pod, "terminationGracePeriodSeconds");
    assertTrue(grace >= cfg.shutdownTimeout.toSeconds() + 10,
        "terminationGracePeriodSeconds " + grace + " outlasts shutdown_timeout " + cfg.shutdownTimeout + " by 10 s");

    // The conf directory mounted whole (a subPath mount is never updated), at the -f file's directory.
    Map<String, Object> mount = at(container, "volumeMounts", "0");
    assertFalse(mount.containsKey("subPath"), "no subPath: Kubernetes would never update the file");
    List<String> args = at(container, "args");
    String file = args.get(args.indexOf("-f") + 1);
    assertEquals(mount.get("mountPath") + "/proxy.yaml", file);
    String configMap = at(pod, "volumes", "0", "configMap", "name");
    assertEquals((String) at(k.get("ConfigMap"), "metadata", "name"), configMap);

    // The heap follows the memory limit: a percentage, never a fixed -Xmx.
    String opts = at(container, "env", "0", "value");
    assertTrue(opts.contains("MaxRAMPercentage") && !opts.contains("-Xmx"), opts);
    assertNotNull(at(container, "resources", "limits", "memory"));

    Map<String, Object> labels = at(k.get("Deployment"), "spec", "template", "metadata", "labels");
    assertEquals(labels, (Map<String, Object>) at(k.get("Service"), "spec", "selector"), "the Service selects the pods");
    assertEquals(labels, (Map<String, Object>) at(k.get("PodDisruptionBudget"), "spec", "selector", "matchLabels"));
    for (Map<String, Object> p : (List<Map<String, Object>>) at(k.get("Service"), "spec", "ports")) {
      assertTrue(ports.containsKey((String) p.get("targetPort")), "the Service's target port " + p + " exists");
    }
    assertEquals((String) at(k.get("Deployment"), "metadata", "name"),
        (String) at(k.get("HorizontalPodAutoscaler"), "spec", "scaleTargetRef", "name"));
    assertEquals((String) at(k.get("ServiceAccount"), "metadata", "name"), (String) at(pod, "serviceAccountName"));

    // Discovery by the API: the Role allows what the code calls, in the globals' namespace, and
    // is bound to the pod's account, whose token is mounted.
    if (!cfg.kubernetesForwardServiceName.isEmpty() || !cfg.kubernetesForwardGrpcServiceName.isEmpty()) {
      Map<String, Object> rule = at(k.get("Role"), "rules", "0");
      assertEquals(List.of(dev.veneur.proxy.discovery.KubernetesDiscoveryVerticle.API_GROUP), rule.get("apiGroups"));
      assertEquals(List.of(dev.veneur.proxy.discovery.KubernetesDiscoveryVerticle.RESOURCE), rule.get("resources"));
      assertEquals(dev.veneur.proxy.discovery.KubernetesDiscoveryVerticle.VERBS, rule.get("verbs"));
      String ns = cfg.kubernetesNamespace.isEmpty() ? at(k.get("Deployment"), "metadata", "namespace") : cfg.kubernetesNamespace;
      assertEquals(ns, (String) at(k.get("Role"), "metadata", "namespace"), "the Role is in the globals' namespace");
      assertEquals((String) at(k.get("Role"), "metadata", "name"), (String) at(k.get("RoleBinding"), "roleRef", "name"));
      assertEquals((String) at(k.get("ServiceAccount"), "metadata", "name"),
          (String) at(k.get("RoleBinding"), "subjects", "0", "name"));
      assertTrue(!Boolean.FALSE.equals(k.get("ServiceAccount").get("automountServiceAccountToken"))
          && !Boolean.FALSE.equals(pod.get("automountServiceAccountToken")), "the token is mounted");
    }
  }
}
