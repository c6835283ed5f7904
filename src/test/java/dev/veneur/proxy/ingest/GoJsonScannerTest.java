package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Bodies;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The scanner against Go's own verdicts: {@code go-decoder-vectors.json} holds 3,453 metric objects
 * (hand-written edge cases and fuzzed Veneur metrics) with what Go's encoding/json made of each,
 * produced by running Go (see docs/go-v2-compat.md). Every vector is scanned whole and through
 * windows of several sizes, so an element split anywhere across refills is read the same.
 */
class GoJsonScannerTest {
  private static final int[] WINDOWS = {Integer.MAX_VALUE, 1, 7, 64};

  /** What the scanner made of one element. */
  private record Seen(int verdict, int hash, byte[] span) {}

  /** Scans {@code body} as the Ingester does: a window refilled from the body, growing as needed. */
  static List<Seen> scan(GoJsonScanner scanner, byte[] body, int window) {
    List<Seen> out = new ArrayList<>();
    byte[] w = new byte[Math.min(window, Math.max(1, body.length))];
    int fill = 0;
    int pos = 0;
    int src = 0;
    boolean eof = false;
    scanner.reset();
    while (true) {
      int step = scanner.next(w, pos, fill, eof);
      if (step == GoJsonScanner.METRIC) {
        out.add(new Seen(scanner.verdict, scanner.keyHash, Arrays.copyOfRange(w, scanner.start, scanner.end)));
        pos = scanner.end;
      } else if (step == GoJsonScanner.NEED_MORE) {
        int keep = scanner.resumeAt();
        System.arraycopy(w, keep, w, 0, fill - keep);
        fill -= keep;
        pos = 0;
        if (fill == w.length) w = Arrays.copyOf(w, w.length * 2);
        int n = Math.min(w.length - fill, body.length - src);
        if (n == 0) {
          eof = true;
        } else {
          System.arraycopy(body, src, w, fill, n);
          src += n;
          fill += n;
        }
      } else {
        return out;
      }
    }
  }

  @Test
  void everyVectorIsReadAsGoReadsIt() {
    JsonObject file = new JsonObject(new String(Bodies.resource("go-decoder-vectors.json"), StandardCharsets.UTF_8));
    List<JsonObject> vectors = new ArrayList<>();
    file.getJsonArray("metric_vectors").forEach(o -> vectors.add((JsonObject) o));
    file.getJsonArray("fuzz_vectors").forEach(o -> vectors.add((JsonObject) o));
    assertTrue(vectors.size() > 3000, "vectors loaded: " + vectors.size());
    GoJsonScanner scanner = new GoJsonScanner(1 << 20);
    int checked = 0;
    for (JsonObject v : vectors) {
      byte[] element = Base64.getDecoder().decode(v.getString("element_b64"));
      byte[] body = new byte[element.length + 2];
      body[0] = '[';
      System.arraycopy(element, 0, body, 1, element.length);
      body[body.length - 1] = ']';
      for (int window : WINDOWS) {
        checkVector(scanner, v, body, element, window);
        checked++;
      }
    }
    assertEquals(vectors.size() * WINDOWS.length, checked);
  }

  private static void checkVector(GoJsonScanner scanner, JsonObject v, byte[] body, byte[] element, int window) {
    String id = v.getString("id") + " (" + v.getString("note", "") + ") window " + window;
    boolean accepted = "accepted".equals(v.getString("verdict"));
    String err = v.getString("go_error", "");
    String errType = v.getString("go_error_type", "");
    // A type error on the element itself (not an object) fails the whole body in Go as here; one
    // on a field, or a base64 error, makes only that metric one the global would refuse.
    boolean wholeBody = !accepted && (errType.contains("SyntaxError") || errType.contains("errorString")
        || err.contains("Go value of type samplers.JSONMetric"));
    List<Seen> seen;
    try {
      seen = scan(scanner, body, window);
    } catch (ImportRefusal r) {
      if (!wholeBody) fail(id + ": refused the whole body (" + r.reason() + ") but Go said: " + (accepted ? "accepted" : err));
      assertEquals(400, r.status, id);
      return;
    }
    if (wholeBody) fail(id + ": Go refused the whole body (" + err + ") but the scanner read " + seen.size() + " element(s)");
    assertEquals(1, seen.size(), id);
    Seen s = seen.get(0);
    // The span is the element's exact bytes (a fuzzed element may carry a ']' that closes the
    // array early; what follows is ignored, as Go ignores it).
    String text = new String(element, StandardCharsets.ISO_8859_1).strip();
    String span = new String(s.span(), StandardCharsets.ISO_8859_1);
    assertTrue(text.equals(span) || text.startsWith(span) && text.substring(span.length()).strip().startsWith("]"),
        id + ": span " + span);
    if (!accepted) {
      assertEquals(GoJsonScanner.REFUSED, s.verdict(), id + ": Go refused it (" + err + ")");
      return;
    }
    JsonObject e = v.getJsonArray("elements").getJsonObject(0);
    if (e.getBoolean("zero")) {
      assertEquals(GoJsonScanner.EMPTY, s.verdict(), id + ": Go's zero metric");
      return;
    }
    byte[] name = Base64.getDecoder().decode(e.getString("name_b64"));
    byte[] type = Base64.getDecoder().decode(e.getString("type_b64"));
    if (type.length == 0) {
      assertEquals(GoJsonScanner.INCOMPLETE, s.verdict(), id + ": no type");
      return;
    }
    // An empty name is a metric like any other: the Go proxy forwards it and a global flushes it.
    assertEquals(GoJsonScanner.VALID, s.verdict(), id);
    assertEquals((int) (long) e.getLong("key_crc32"), s.hash(), id + ": ring key hash");
  }

  @Test
  void capturedVeneurBodyScansToItsObjectsWithRingKeys() {
    byte[] fixture = Bodies.resource("fixtures/captured/small.json");
    JsonArray expected = new JsonArray(new String(fixture, StandardCharsets.UTF_8));
    for (int window : WINDOWS) {
      List<Seen> seen = scan(new GoJsonScanner(1 << 20), fixture, window);
      assertEquals(expected.size(), seen.size());
      for (int i = 0; i < expected.size(); i++) {
        JsonObject m = expected.getJsonObject(i);
        assertEquals(GoJsonScanner.VALID, seen.get(i).verdict());
        assertEquals(m, new JsonObject(new String(seen.get(i).span(), StandardCharsets.UTF_8)), "span " + i);
        assertEquals(HashRing.hashKey(Bodies.key(m)), seen.get(i).hash(), "hash " + i);
      }
    }
  }

  @Test
  void keysWithEscapesAndNonAsciiHashLikeTheirDecodedUtf8() {
    String name = "db.query.time.ünïcødé.名前\"quoted\"\\😀";
    String escaped = "[{\"name\":\"db.query.time.\\u00fcn\\u00efc\\u00f8d\\u00e9.名前\\\"quoted\\\"\\\\\\ud83d\\ude00\","
        + "\"type\":\"timer\",\"tagstring\":\"a:b\",\"value\":\"AAAA\"}]";
    List<Seen> seen = scan(new GoJsonScanner(1 << 20), Bodies.utf8(escaped), Integer.MAX_VALUE);
    assertEquals(HashRing.hashKey(name + "timer" + "a:b"), seen.get(0).hash());
  }

  /**
   * Keys are hashed in one call over the three fields gathered into a 1 KiB scratch, and part by
   * part when longer: both give the CRC-32 of the whole key, at every length around the bound,
   * from spans of the body and from fields decoded out of escapes alike.
   */
  @Test
  void keysShorterAndLongerThanTheGatherHashTheSame() {
    GoJsonScanner scanner = new GoJsonScanner(1 << 20);
    // Where each metric's key is exactly 1024 bytes: name + type + tagstring, and name + "gauge".
    int counterRoom = 1024 - "svc.requests".length() - "counter".length();
    int gaugeRoom = 1024 - "gauge".length();
    for (int tags : new int[] {0, 1, 900, counterRoom - 1, counterRoom, counterRoom + 1,
        gaugeRoom - 1, gaugeRoom, gaugeRoom + 1, 5000}) {
      String tagstring = "t".repeat(tags);
      for (boolean escaped : new boolean[] {false, true}) {
        String sent = escaped && tags > 0 ? "\\u0074" + tagstring.substring(1) : tagstring;
        String body = "[{\"name\":\"svc.requests\",\"type\":\"counter\",\"tagstring\":\"" + sent
            + "\",\"value\":\"AQAAAAAAAAA=\"},{\"name\":\"" + "n".repeat(tags) + "\",\"type\":\"gauge\",\"value\":\"AAAAAAAA8D8=\"}]";
        for (int window : WINDOWS) {
          List<Seen> seen = scan(scanner, Bodies.utf8(body), window);
          String at = tags + " tag bytes, escaped " + escaped + ", window " + window;
          assertEquals(HashRing.hashKey("svc.requests" + "counter" + tagstring), seen.get(0).hash(), at);
          assertEquals(HashRing.hashKey("n".repeat(tags) + "gauge"), seen.get(1).hash(), at);
        }
      }
    }
  }

  /** v14's ignore_tags: the tagstring's matched parts are left out of the key, the rest rejoined. */
  @Test
  void ignoredTagsAreLeftOutOfTheKeyOnly() {
    dev.veneur.proxy.config.IgnoreTags hosts = dev.veneur.proxy.config.IgnoreTags.of(List.of(
        new dev.veneur.proxy.config.IgnoreTags.Rule("prefix", "host:"),
        new dev.veneur.proxy.config.IgnoreTags.Rule("exact", "az:b")));
    String body = "[{\"name\":\"m\",\"type\":\"counter\",\"tagstring\":\"host:1,env:prod,az:b,svc:x\",\"value\":\"AQAAAAAAAAA=\"},"
        + "{\"name\":\"m\",\"type\":\"counter\",\"tagstring\":\"host:2\",\"value\":\"AQAAAAAAAAA=\"},"
        + "{\"name\":\"m\",\"type\":\"counter\",\"tagstring\":\"env:\\u0070rod,host:3\",\"value\":\"AQAAAAAAAAA=\"}]";
    GoJsonScanner scanner = new GoJsonScanner(1 << 20);
    scanner.ignore = hosts;
    List<Seen> seen = scan(scanner, Bodies.utf8(body), Integer.MAX_VALUE);
    assertEquals(HashRing.hashKey("mcounterenv:prod,svc:x"), seen.get(0).hash());
    assertEquals(HashRing.hashKey("mcounter"), seen.get(1).hash());
    assertEquals(HashRing.hashKey("mcounterenv:prod"), seen.get(2).hash(), "escaped: decoded first");
    // The span forwarded is untouched: all its tags travel.
    assertTrue(new String(seen.get(0).span(), java.nio.charset.StandardCharsets.UTF_8).contains("host:1,env:prod,az:b,svc:x"));
  }

  /**
   * Issue 21 item 9: a metric with a type but no name (absent, null or "") is forwarded by the Go
   * proxy v2 and imported and flushed by a v2 global (checked against the real binaries: a Datadog
   * series named ""), so it is valid here, its ring key "" + type + tagstring. Without a type it
   * stays unusable.
   */
  @Test
  void aMetricWithATypeButNoNameIsValidAndKeyedByTypeAndTagstring() {
    String body = "[{\"name\":\"\",\"type\":\"counter\",\"tagstring\":\"a:b\",\"value\":\"AQAAAAAAAAA=\"},"
        + "{\"type\":\"gauge\",\"value\":\"AAAAAAAA8D8=\"},"
        + "{\"name\":null,\"type\":\"set\",\"tagstring\":\"x\"},"
        + "{\"name\":\"n\",\"type\":\"\",\"value\":\"AQAAAAAAAAA=\"},"
        + "{\"tagstring\":\"only\"}]";
    List<Seen> seen = scan(new GoJsonScanner(1 << 20), Bodies.utf8(body), Integer.MAX_VALUE);
    assertArrayEquals(new int[] {GoJsonScanner.VALID, GoJsonScanner.VALID, GoJsonScanner.VALID,
        GoJsonScanner.INCOMPLETE, GoJsonScanner.INCOMPLETE}, seen.stream().mapToInt(Seen::verdict).toArray());
    assertEquals(HashRing.hashKey("counter" + "a:b"), seen.get(0).hash());
    assertEquals(HashRing.hashKey("gauge"), seen.get(1).hash());
    assertEquals(HashRing.hashKey("set" + "x"), seen.get(2).hash());
  }

  @Test
  void theIssuesPoisonedMetricsAreRefusedAndTheirNeighboursKept() {
    String body = "[{\"name\":\"ok\",\"type\":\"counter\",\"value\":\"BQAAAAAAAAA=\"},"
        + "{\"name\":\"p\",\"type\":\"counter\",\"value\":\"BQAAAAAAAAA=\",\"Value\":5},"
        + "{\"name\":\"p\",\"type\":\"counter\",\"value\":\"Q\\u0051\"},"
        + "{\"name\":\"p\",\"type\":\"counter\",\"value\":\"BQAAAAAAAAA=\",\"tag\u017f\":[1]},"
        + "{\"name\":\"ok2\",\"type\":\"gauge\",\"tags\":null,\"value\":null,\"extra\":{\"deep\":[1,2]}}]";
    List<Seen> seen = scan(new GoJsonScanner(1 << 20), Bodies.utf8(body), Integer.MAX_VALUE);
    int[] verdicts = seen.stream().mapToInt(Seen::verdict).toArray();
    assertArrayEquals(new int[] {GoJsonScanner.VALID, GoJsonScanner.REFUSED, GoJsonScanner.REFUSED,
        GoJsonScanner.REFUSED, GoJsonScanner.VALID}, verdicts);
  }

  @Test
  void aStringOverTheLimitIsRefusedWithoutBeingHeld() {
    String big = "x".repeat(5000);
    byte[] body = Bodies.utf8("[{\"name\":\"" + big + "\",\"type\":\"counter\"}]");
    ImportRefusal r = assertThrows(ImportRefusal.class, () -> scan(new GoJsonScanner(4096), body, 64));
    assertEquals(400, r.status);
    assertEquals("too_long", r.cause);
  }

  @Test
  void bodyShapesAreRefusedAsTheGoProxyRefusesThem() {
    GoJsonScanner s = new GoJsonScanner(1 << 20);
    assertEquals("json", assertThrows(ImportRefusal.class, () -> scan(s, Bodies.utf8("[{\"name\":\"a\","), 8)).cause);
    assertEquals("json", assertThrows(ImportRefusal.class, () -> scan(s, Bodies.utf8("{\"name\":\"a\"}"), 8)).cause);
    assertEquals("json", assertThrows(ImportRefusal.class, () -> scan(s, Bodies.utf8(""), 8)).cause);
    assertEquals("json", assertThrows(ImportRefusal.class, () -> scan(s, Bodies.utf8("[1,2]"), 8)).cause);
    assertEquals("empty", assertThrows(ImportRefusal.class, () -> scan(s, Bodies.utf8("null"), 8)).cause);
    // Go counts the body's array and the metric object too: 10,000 levels in all.
    String deep = "[{\"x\":" + "[".repeat(9_999) + "]".repeat(9_999) + "}]";
    assertEquals("json", assertThrows(ImportRefusal.class, () -> scan(s, Bodies.utf8(deep), 1 << 16)).cause);
    String ok = "[{\"x\":" + "[".repeat(9_998) + "]".repeat(9_998) + ",\"name\":\"a\",\"type\":\"c\"}]";
    assertEquals(GoJsonScanner.VALID, scan(s, Bodies.utf8(ok), 1 << 16).get(0).verdict());
    // Inside tags or value, one level is already used: 9,998 more is one too many there.
    String deepTag = "[{\"name\":\"a\",\"type\":\"c\",\"tags\":[" + "[".repeat(9_998) + "]".repeat(9_998) + "]}]";
    assertEquals("json", assertThrows(ImportRefusal.class, () -> scan(s, Bodies.utf8(deepTag), 1 << 16)).cause);
    String okTag = "[{\"name\":\"a\",\"type\":\"c\",\"tags\":[" + "[".repeat(9_997) + "]".repeat(9_997) + "]}]";
    assertEquals(GoJsonScanner.REFUSED, scan(s, Bodies.utf8(okTag), 1 << 16).get(0).verdict(), "deep but legal: a type error");
    // Go's decoder reads one value: what follows the array is never looked at.
    assertEquals(1, scan(s, Bodies.utf8("[{\"name\":\"a\",\"type\":\"c\"}] trailing {"), 8).size());
    // And the scanner is reusable after a refusal.
    assertEquals(GoJsonScanner.VALID, scan(s, Bodies.utf8("[{\"name\":\"a\",\"type\":\"c\"}]"), 3).get(0).verdict());
  }
}
