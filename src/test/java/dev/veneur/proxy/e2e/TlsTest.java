package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.config.ConfigException;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.support.TestCerts;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The TLS settings a proxy refuses to start with, each named in the message. TLS at work: {@link TlsIT}. */
class TlsTest {
  @TempDir Path dir;

  @Test
  void aBadTlsConfigRefusesToStartNamingTheKey() {
    TestCerts.Ca ca = TestCerts.ca(dir, "ca");
    TestCerts.Issued server = ca.issue(dir, "proxy");
    JsonObject base = new JsonObject().put("forward_address", "http://127.0.0.1:9");
    String[][] cases = {
        {"http_tls", null},
        {"tls.cert_file", dir.resolve("missing.crt").toString()},
        {"tls.key_file", ca.certFile.toString()},
        {"tls.client_auth", "sometimes"},
    };
    for (String[] c : cases) {
      JsonObject cfg = base.copy().put("http_tls", true);
      if (!c[0].equals("http_tls")) {
        JsonObject tls = new JsonObject().put("cert_file", server.certFile().toString())
            .put("key_file", server.keyFile().toString());
        tls.put(c[0].substring(4), c[1]);
        cfg.put("tls", tls);
      }
      try {
        ProxyConfig.from(cfg);
        throw new AssertionError("accepted " + cfg.encode());
      } catch (ConfigException e) {
        assertTrue(e.getMessage().contains(c[0]), c[0] + ": " + e.getMessage());
      }
    }
  }
}
