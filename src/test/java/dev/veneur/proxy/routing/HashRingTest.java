package dev.veneur.proxy.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Bodies;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class HashRingTest {

  /** Every route the Go ring (stathat.com/c/consistent in veneur-proxy v2) picked, reproduced. */
  @Test
  void reproducesEveryGoRingVector() {
    JsonArray cases = new JsonArray(new String(Bodies.resource("ring-vectors.json"), StandardCharsets.UTF_8));
    int checked = 0;
    for (Object c : cases) {
      JsonObject kase = (JsonObject) c;
      List<String> members = new ArrayList<>();
      kase.getJsonArray("members").forEach(m -> members.add((String) m));
      HashRing ring = HashRing.of(members);
      for (Object r : kase.getJsonArray("routes")) {
        JsonObject route = (JsonObject) r;
        assertEquals(route.getString("destination"),
            ring.route(route.getString("name"), route.getString("type"), route.getString("tagstring")),
            () -> "members " + members + " key " + route);
        checked++;
      }
    }
    assertTrue(cases.size() >= 8 && checked >= 480, "vectors read: " + cases.size() + " cases, " + checked + " routes");
  }

  @Test
  void emptyRingRoutesNowhere() {
    assertNull(HashRing.empty().route("a", "counter", ""));
    assertEquals(-1, HashRing.empty().ownerIndex(12345));
  }

  @Test
  void duplicateMembersCollapse() {
    HashRing ring = HashRing.of(List.of("http://a:1", "http://b:2", "http://a:1"));
    assertEquals(List.of("http://a:1", "http://b:2"), ring.members());
    assertEquals(HashRing.of(List.of("http://a:1", "http://b:2")).route("x", "counter", "t:1"),
        ring.route("x", "counter", "t:1"));
  }

  @Test
  void memberAndSizeAgreeWithTheMemberListAtEverySize() {
    // The hot path reads members by index from an array (see HashRing.memberArray): it must be
    // the list's order at every size, the 1-2 members List.copyOf gives another class included.
    List<String> all = List.of("http://a:1", "http://b:2", "http://c:3", "http://d:4");
    assertEquals(0, HashRing.empty().size());
    assertTrue(HashRing.empty().isEmpty());
    for (int n = 1; n <= all.size(); n++) {
      HashRing ring = HashRing.of(all.subList(0, n));
      assertEquals(n, ring.size());
      assertFalse(ring.isEmpty());
      for (int i = 0; i < n; i++) assertEquals(ring.members().get(i), ring.member(i));
      for (int k = 0; k < 1000; k++) {
        int hash = k * 0x9E3779B9;
        assertEquals(ring.members().get(ring.ownerIndex(hash)), ring.owner(hash));
      }
    }
  }

  @Test
  void keysAboveTheTopPointWrapToTheFirst() {
    HashRing ring = HashRing.of(List.of("http://a:1", "http://b:2", "http://c:3"));
    // 0xffffffff is above every virtual node, so it must land on the owner of the lowest point.
    assertEquals(ring.ownerIndex(0), ring.ownerIndex(-1));
  }
}
