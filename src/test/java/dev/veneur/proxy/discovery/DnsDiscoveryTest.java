package dev.veneur.proxy.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.config.ConfigException;
import dev.veneur.proxy.config.ProxyConfig;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

/** The DNS discovery settings a proxy refuses to start with. DNS discovery at work: {@link DnsDiscoveryIT}. */
class DnsDiscoveryTest {
  private static final String SRV = "_http._tcp.veneur-global.metrics.svc.cluster.local";
  private static final String NAME = "veneur-global.metrics.svc.cluster.local";

  @Test
  void aBadDnsConfigRefusesToStartNamingTheKey() {
    JsonObject base = new JsonObject().put("http_address", "127.0.0.1:0");
    ConfigException noPort = assertThrows(ConfigException.class,
        () -> ProxyConfig.from(base.copy().put("dns_forward_name", NAME)));
    assertTrue(noPort.getMessage().contains("dns_forward_port"), noPort.getMessage());
    ConfigException badName = assertThrows(ConfigException.class,
        () -> ProxyConfig.from(base.copy().put("dns_forward_name", "veneur global").put("dns_forward_port", 8127)));
    assertTrue(badName.getMessage().contains("dns_forward_name"), badName.getMessage());
    ConfigException badServer = assertThrows(ConfigException.class,
        () -> ProxyConfig.from(base.copy().put("dns_forward_name", SRV).put("dns_servers", "10.0.0.1")));
    assertTrue(badServer.getMessage().contains("dns_servers"), badServer.getMessage());
    ProxyConfig ok = ProxyConfig.from(base.copy().put("dns_forward_name", SRV + "."));
    assertEquals(SRV, ok.dnsForwardName);
    assertTrue(ok.jsonRing);
  }
}
