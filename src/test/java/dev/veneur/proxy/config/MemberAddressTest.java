package dev.veneur.proxy.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

/** Each member checked on its own: what may be a destination, and what the ring gets for it. */
class MemberAddressTest {

  private static void refused(String url, String cause) {
    MemberAddress.Checked c = MemberAddress.url(url);
    assertFalse(c.ok(), url + " must be refused");
    assertEquals(cause, c.cause(), "cause for " + url);
    assertNull(c.member());
    assertFalse(!url.isEmpty() && c.reason().contains(url), "the reason never repeats the raw value (it may hold a newline)");
  }

  @Test
  void urlsThatAreDestinations() {
    for (String ok : new String[] {"http://127.0.0.1:8128", "https://global-1.example.com:443",
        "http://veneur_global.service.consul:8128", "http://[::1]:8128", "http://[2001:db8::7]:1",
        "http://10.0.0.1:65535", "http://localhost"}) {
      MemberAddress.Checked c = MemberAddress.url(ok);
      assertTrue(c.ok(), ok + ": " + c.reason());
      assertEquals(ok, c.member());
    }
  }

  @Test
  void urlsThatAreNot() {
    refused("http://127.0.0.1:70000", "port");
    refused("http://127.0.0.1:0", "port");
    refused("http://127.0.0.1:", "port");
    refused("http://127.0.0.1:-1", "port");
    refused("http://127.0.0.1:99999999999", "port");
    refused("http://127.0.0.1:80a", "port");
    refused("http://127.0.0.1/x?y=", "path");
    refused("http://127.0.0.1:8128/import", "path");
    refused("http://127.0.0.1:8128?x", "path");
    refused("http://127.0.0.1:8128#x", "path");
    refused("http://user:pw@127.0.0.1:8128", "userinfo");
    refused("http://127.0.0.1\n2026-12-05T00:00:00Z ERROR forged:8128", "control_character");
    refused("http://127.0.0.1:8128\r", "control_character");
    refused("http://127.0.0.1\u0085:8128", "control_character");
    refused("http://127.0.0.1\u2028:8128", "control_character");
    refused("http://[127.0.0.1:19061]:19061", "host");
    refused("http://::1:8128", "host");
    refused("http://[::1:8128", "host");
    refused("http://[::1]x:8128", "host");
    refused("http://:8128", "host");
    refused("http://h\u00e9st:8128", "host");
    refused("http://a b:8128", "host");
    refused("ftp://127.0.0.1:21", "scheme");
    // No scheme: a gRPC member (as v14 names them), which must have a port.
    refused("127.0.0.1", "port");
    refused("127.0.0.1:8128/import", "path");
    refused("a b:8128", "host");
    refused("http://" + "a".repeat(400) + ":1", "too_long");
    refused("", "host");
  }

  @Test
  void grpcMembersAreNamedAsV14NamesThem() {
    for (String m : new String[] {"127.0.0.1:8128", "global-1.veneur.svc:8128", "[::1]:8128"}) {
      assertTrue(MemberAddress.isGrpc(m), m);
      assertEquals(m, MemberAddress.url(m).member(), "kept as written: it is what the ring hashes");
    }
    assertFalse(MemberAddress.isGrpc("http://127.0.0.1:8128"));
    assertFalse(MemberAddress.isGrpc("https://127.0.0.1:8128"));
  }

  private static MemberAddress.Checked consul(String serviceAddress, String nodeAddress, long port) {
    return MemberAddress.consul(serviceAddress, nodeAddress, port, false);
  }

  @Test
  void consulInstancesAsTheGoProxyPlacesThem() {
    // The normal case: the service's address, or the node's when the service has none.
    assertEquals("http://10.0.0.5:8128", consul("10.0.0.5", "10.0.0.9", 8128).member());
    assertEquals("http://10.0.0.9:8128", consul("", "10.0.0.9", 8128).member());
    assertEquals("http://10.0.0.9:8128", consul(null, "10.0.0.9", 8128).member());
    assertEquals("http://10.0.0.9:8128", MemberAddress.consul("10.0.0.5", "10.0.0.9", 8128, true).member(),
        "consul_member_address: node takes the node's, as Go v2");
    assertEquals("http://[2001:db8::5]:8128", consul("2001:db8::5", "10.0.0.9", 8128).member(),
        "a bare IPv6 address is bracketed");
    assertEquals("http://[2001:db8::5]:8128", consul("[2001:db8::5]", "10.0.0.9", 8128).member());
  }

  @Test
  void aServiceAddressCarryingItsPortIsReadAsHostAndPort() {
    // The registration: the member is what Go v2 (node address + Service.Port) placed.
    MemberAddress.Checked c = consul("127.0.0.1:19061", "127.0.0.1", 19061);
    assertEquals("http://127.0.0.1:19061", c.member());
    assertNull(c.note());
    assertEquals("http://[::1]:19061", consul("[::1]:19061", "127.0.0.1", 19061).member());
    // Service.Port unset: the address's port is the only one there is.
    assertEquals("http://127.0.0.1:19061", consul("127.0.0.1:19061", "127.0.0.1", 0).member());
    // Both set and different: Service.Port wins (Consul's DNS and Go v2 use it), and it is noted.
    MemberAddress.Checked both = consul("127.0.0.1:19061", "127.0.0.1", 19062);
    assertEquals("http://127.0.0.1:19062", both.member());
    assertTrue(both.note().contains("19061") && both.note().contains("Service.Port"), both.note());
  }

  @Test
  void consulInstancesThatCannotBeMembers() {
    assertEquals("port", consul("127.0.0.1", "127.0.0.1", 70000).cause());
    assertEquals("port", consul("127.0.0.1", "127.0.0.1", -5).cause());
    assertEquals("port", consul("127.0.0.1", "127.0.0.1", 0).cause(), "no port anywhere");
    assertEquals("port", consul("127.0.0.1:70000", "127.0.0.1", 0).cause());
    assertEquals("control_character", consul("127.0.0.1\nINFO forged line", "127.0.0.1", 8128).cause());
    assertEquals("path", consul("127.0.0.1/x?y=", "127.0.0.1", 19002).cause());
    assertEquals("path", consul("http://127.0.0.1", "127.0.0.1", 19002).cause());
    assertEquals("userinfo", consul("u@127.0.0.1", "127.0.0.1", 19002).cause());
    assertEquals("host", consul("", "", 8128).cause());
    assertEquals("host", consul("[::1", "127.0.0.1", 8128).cause());
    assertEquals("port", consul("127.0.0.1:x", "127.0.0.1", 8128).cause());
    for (MemberAddress.Checked c : new MemberAddress.Checked[] {consul("127.0.0.1\nX", "n", 1), consul("a/b", "n", 1)}) {
      assertFalse(c.reason().contains("\n"), c.reason());
    }
  }

  @Test
  void staticAddressesAreCheckedWhenTheConfigIsRead() {
    for (String bad : new String[] {"http://127.0.0.1:70000", "127.0.0.1/x?y=", "http://u@h:1", "http://a\nb:1"}) {
      ConfigException e = assertThrows(ConfigException.class,
          () -> ProxyConfig.from(new JsonObject().put("forward_addresses", new JsonArray().add("http://127.0.0.1:1").add(bad))));
      assertTrue(e.getMessage().startsWith("config key 'forward_addresses'"), e.getMessage());
      assertFalse(e.getMessage().contains("\n"), "the value is escaped: " + e.getMessage());
    }
    assertEquals(java.util.List.of("http://127.0.0.1:8128"),
        ProxyConfig.from(new JsonObject().put("forward_address", "127.0.0.1:8128/")).forwardAddresses);
  }

  @Test
  void logTextEscapesWhatCouldForgeALine() {
    assertEquals("a\\nb\\r\\tc\\\\d\\x1b[31m\\x85\\u2028", LogText.escape("a\nb\r\tc\\d\u001b[31m\u0085\u2028"));
    assertEquals("plain", LogText.escape("plain"));
    String longOne = LogText.escape("x".repeat(1000));
    assertTrue(longOne.endsWith("...(1000 chars)") && longOne.length() < 230, longOne);
  }
}
