package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.ring.HashRing;
import dev.veneur.proxy.support.Bodies;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class ImportScannerTest {
  private final ImportScanner scanner = new ImportScanner();

  private record Found(String json, int hash) {}

  private List<Found> scan(String body) {
    byte[] b = Bodies.utf8(body);
    List<Found> out = new ArrayList<>();
    scanner.scan(b, b.length, (s, e, h) ->
        out.add(new Found(new String(Arrays.copyOfRange(b, s, e), StandardCharsets.UTF_8), h)));
    return out;
  }

  @Test
  void spansAreTheObjectsExactBytesAndHashesMatchTheRingKey() {
    byte[] fixture = Bodies.resource("fixtures/captured/small.json");
    JsonArray expected = new JsonArray(new String(fixture, StandardCharsets.UTF_8));
    List<Found> found = new ArrayList<>();
    ImportScanner.Result r = scanner.scan(fixture, fixture.length, (s, e, h) ->
        found.add(new Found(new String(fixture, s, e - s, StandardCharsets.UTF_8), h)));
    assertEquals(expected.size(), r.metrics);
    assertEquals(0, r.invalid);
    for (int i = 0; i < expected.size(); i++) {
      JsonObject m = expected.getJsonObject(i);
      assertEquals(m, new JsonObject(found.get(i).json()), "span " + i);
      assertEquals(HashRing.hashKey(Bodies.key(m)), found.get(i).hash(), "hash " + i);
    }
  }

  @Test
  void keysWithEscapesAndNonAsciiHashLikeTheirDecodedUtf8() {
    String name = "db.query.time.ünïcødé.名前\"quoted\"\\😀";
    JsonObject m = new JsonObject().put("name", name).put("type", "timer").put("tagstring", "a:b")
        .put("value", "AAAA");
    String escaped = "[{\"name\":\"db.query.time.\\u00fcn\\u00efc\\u00f8d\\u00e9.名前\\\"quoted\\\"\\\\\\ud83d\\ude00\","
        + "\"type\":\"timer\",\"tagstring\":\"a:b\",\"value\":\"AAAA\"}]";
    List<Found> plain = scan(new JsonArray().add(m).encode());
    List<Found> withEscapes = scan(escaped);
    int expected = HashRing.hashKey(name + "timer" + "a:b");
    assertEquals(expected, plain.get(0).hash());
    assertEquals(expected, withEscapes.get(0).hash());
  }

  @Test
  void metricsMissingNameOrTypeOrWithBadFieldsAreDroppedAndTheRestKept() {
    String body = "[{\"name\":\"ok\",\"type\":\"counter\",\"tagstring\":\"\",\"value\":\"AQAAAAAAAAA=\"},"
        + "{\"type\":\"counter\",\"value\":\"AQAAAAAAAAA=\"},"
        + "{\"name\":\"no.type\",\"value\":\"AQAAAAAAAAA=\"},"
        + "{\"name\":\"\",\"type\":\"gauge\"},"
        + "{\"name\":7,\"type\":\"gauge\"},"
        + "{\"name\":\"bad.value\",\"type\":\"gauge\",\"value\":\"not base64!\"},"
        + "{\"name\":\"bad.value.len\",\"type\":\"gauge\",\"value\":\"AQA\"},"
        + "{\"name\":\"bad.tags\",\"type\":\"gauge\",\"tags\":[1]},"
        + "{\"name\":\"ok2\",\"type\":\"set\",\"tags\":null,\"value\":null,\"extra\":{\"deep\":[1,2]}}]";
    byte[] b = Bodies.utf8(body);
    List<String> names = new ArrayList<>();
    ImportScanner.Result r = scanner.scan(b, b.length, (s, e, h) ->
        names.add(new JsonObject(new String(b, s, e - s, StandardCharsets.UTF_8)).getString("name")));
    assertEquals(List.of("ok", "ok2"), names);
    assertEquals(2, r.metrics);
    assertEquals(7, r.invalid);
  }

  @Test
  void base64WithEscapedCharactersIsDecodedToBeChecked() {
    List<Found> f = scan("[{\"name\":\"a\",\"type\":\"counter\",\"value\":\"AQ\\u0041A\"}]");
    assertEquals(1, f.size());
  }

  private static ImportRefusal refusal(String body) {
    byte[] b = Bodies.utf8(body);
    return assertThrows(ImportRefusal.class, () -> new ImportScanner().scan(b, b.length, (s, e, h) -> {}));
  }

  @Test
  void refusesWhatTheGoProxyRefuses() {
    assertEquals("json", refusal("[{\"name\":\"a\",").cause);
    assertEquals("json", refusal("{\"name\":\"a\"}").cause);
    assertEquals("json", refusal("\"str\"").cause);
    assertEquals("json", refusal("").cause);
    assertEquals("json", refusal("[1,2]").cause);
    assertEquals("json", refusal("[{\"name\":\"a\",\"type\":\"c\"}] trailing").cause);
    assertEquals("empty", refusal("[]").cause);
    assertEquals("empty", refusal("null").cause);
    assertEquals("empty_metrics", refusal("[{},{}]").cause);
    assertEquals("empty_metrics", refusal("[{\"unknown\":1}]").cause);
    ImportRefusal deep = refusal("[" + "[".repeat(500) + "]".repeat(500) + "]");
    assertEquals(400, deep.status);
    assertTrue(refusal("[{\"name\":\"a\",").reason().startsWith("malformed JSON"));
  }

  @Test
  void invalidUtf8InAKeyFieldIsRefusedNotCrashed() {
    byte[] b = Bodies.utf8("[{\"name\":\"aXb\",\"type\":\"counter\"}]");
    b[11] = (byte) 0xff;
    ImportRefusal r = assertThrows(ImportRefusal.class, () -> scanner.scan(b, b.length, (s, e, h) -> {}));
    assertEquals(400, r.status);
  }

  @Test
  void scannerIsReusableAfterARefusal() {
    refusal("[{");
    assertArrayEquals(new int[] {1}, new int[] {scan("[{\"name\":\"a\",\"type\":\"counter\"}]").size()});
  }
}
