package dev.veneur.proxy.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.config.ConfigException;
import dev.veneur.proxy.config.ProxyConfig;
import io.vertx.core.json.JsonObject;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ConsulEndpointTest {
  private static ProxyConfig cfg(JsonObject extra) {
    return ProxyConfig.from(new JsonObject().put("consul_forward_service_name", "g").mergeIn(extra));
  }

  @Test
  void defaultsToTheLocalAgent() {
    assertEquals(new ConsulEndpoint("127.0.0.1", 8500, false, ""),
        ConsulEndpoint.resolve(cfg(new JsonObject()), Map.of()));
  }

  @Test
  void readsTheGoClientsEnvironment() {
    assertEquals(new ConsulEndpoint("consul.internal", 8501, true, "tok"),
        ConsulEndpoint.resolve(cfg(new JsonObject()),
            Map.of("CONSUL_HTTP_ADDR", "https://consul.internal:8501", "CONSUL_HTTP_TOKEN", "tok")));
    assertEquals(new ConsulEndpoint("10.0.0.5", 8500, false, ""),
        ConsulEndpoint.resolve(cfg(new JsonObject()), Map.of("CONSUL_HTTP_ADDR", "10.0.0.5:8500")));
  }

  @Test
  void configKeysOverrideTheEnvironment() {
    ConsulEndpoint e = ConsulEndpoint.resolve(
        cfg(new JsonObject().put("consul_address", "127.0.0.2:9500").put("consul_token", "mine")),
        Map.of("CONSUL_HTTP_ADDR", "10.0.0.5:8500", "CONSUL_HTTP_TOKEN", "theirs"));
    assertEquals(new ConsulEndpoint("127.0.0.2", 9500, false, "mine"), e);
    assertTrue(!e.toString().contains("mine"), "the token is never printed");
  }

  @Test
  void aBadEnvironmentValueNamesTheVariable() {
    ConfigException e = assertThrows(ConfigException.class,
        () -> ConsulEndpoint.resolve(cfg(new JsonObject()), Map.of("CONSUL_HTTP_ADDR", "unix:///tmp/consul.sock")));
    assertTrue(e.getMessage().contains("CONSUL_HTTP_ADDR"), e.getMessage());
  }
}
