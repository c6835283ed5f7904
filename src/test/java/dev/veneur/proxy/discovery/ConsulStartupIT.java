package dev.veneur.proxy.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.ConsulDouble;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The proxy as a real process: with no healthy global in Consul it must refuse to start. */
@ExtendWith(VertxExtension.class)
class ConsulStartupIT {

  @Test
  void noHealthyInstanceExitsNonZeroNamingTheService(Vertx vertx, @TempDir Path dir) throws Exception {
    ConsulDouble consul = ConsulDouble.start(vertx, "veneur-global");
    consul.setInstances(List.of(ConsulDouble.Instance.passing("n1", "127.0.0.1", 9).withStatus("critical")));
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n",
        "http_address: \"127.0.0.1:" + TestProxy.freePort() + "\"",
        "consul_forward_service_name: \"veneur-global\"",
        "consul_refresh_interval: \"1s\"",
        "consul_startup_timeout: \"2s\"", ""));
    ProcessBuilder pb = new ProcessBuilder(
        System.getProperty("java.home") + File.separator + "bin" + File.separator + "java",
        "-cp", System.getProperty("java.class.path"), "dev.veneur.proxy.Main", "-f", yaml.toString());
    // Found as the Go proxy finds its agent: through CONSUL_HTTP_ADDR.
    pb.environment().put("CONSUL_HTTP_ADDR", "http://" + consul.address());
    pb.redirectErrorStream(true);
    Process p = pb.start();
    byte[] out = p.getInputStream().readAllBytes();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the proxy exits by itself");
    String log = new String(out, StandardCharsets.UTF_8);
    assertNotEquals(0, p.exitValue(), log);
    assertTrue(log.contains("no healthy instance of Consul service 'veneur-global'"), log);
    assertTrue(consul.requests.get() > 0, "it asked the agent named by CONSUL_HTTP_ADDR");
    assertEquals(1, p.exitValue());
    consul.close();
  }
}
