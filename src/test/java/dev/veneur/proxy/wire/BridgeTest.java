package dev.veneur.proxy.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The bridge against one real v14.2.0 local that forwarded the same flush both ways: its JSON
 * body (json-small.json) and its grpc-single MetricList (grpc-single-small.pb). Each form,
 * translated, must be exactly the other.
 */
class BridgeTest {
  private static final Path V14 = Path.of("src/test/resources/fixtures/veneur-v14.2.0");

  /** The grpc list's metrics by name: their bytes. */
  private static Map<String, byte[]> protoByName(byte[] list) {
    Map<String, byte[]> out = new HashMap<>();
    MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
    MetricPb.Fields f = new MetricPb.Fields();
    while (r.next()) {
      MetricPb.scan(list, r.metricOff, r.metricLen, f);
      out.put(f.name(list), Arrays.copyOfRange(list, r.metricOff, r.metricOff + r.metricLen));
    }
    return out;
  }

  private static List<String> strings(JsonArray a) {
    List<String> out = new ArrayList<>();
    if (a != null) for (Object o : a) out.add((String) o);
    return out;
  }

  @Test
  void everyJsonMetricOfTheLocalBecomesTheBytesItSentByGrpc() throws Exception {
    JsonArray json = new JsonArray(Files.readString(V14.resolve("json-small.json")));
    Map<String, byte[]> proto = protoByName(Files.readAllBytes(V14.resolve("grpc-single-small.pb")));
    for (Object o : json) {
      JsonObject m = (JsonObject) o;
      byte[] want = proto.get(m.getString("name"));
      byte[] got = Bridge.toProto(m.getString("name"), m.getString("type"), strings(m.getJsonArray("tags")),
          Base64.getDecoder().decode(m.getString("value")));
      assertArrayEquals(want, got, m.getString("name") + " (" + m.getString("type") + ")");
    }
    assertEquals(45, json.size());
  }

  @Test
  void everyGrpcMetricOfTheLocalBecomesTheJsonItSent() throws Exception {
    Map<String, JsonObject> json = new HashMap<>();
    for (Object o : new JsonArray(Files.readString(V14.resolve("json-small.json")))) {
      json.put(((JsonObject) o).getString("name"), (JsonObject) o);
    }
    byte[] list = Files.readAllBytes(V14.resolve("grpc-single-small.pb"));
    MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
    MetricPb.Fields f = new MetricPb.Fields();
    int compared = 0;
    int lost = 0;
    while (r.next()) {
      assertTrue(MetricPb.scan(list, r.metricOff, r.metricLen, f));
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      Bridge.toJson(list, f, out);
      JsonObject got = new JsonObject(out.toString(StandardCharsets.UTF_8));
      JsonObject want = json.get(f.name(list));
      if (want == null) {
        // Not in the JSON body: the global-scope histograms and timers, which JSON cannot say.
        assertTrue(Bridge.lostScope(f), got.encode());
        lost++;
        continue;
      }
      assertEquals(want, got, f.name(list));
      compared++;
    }
    assertEquals(45, compared);
    assertEquals(10, lost, "global-scope histograms and timers");
  }

  @Test
  void aValueThatIsNotItsTypeIsRefusedWithItsCause() {
    var e = assertThrows(Bridge.Untranslatable.class, () -> Bridge.toProto("c", "counter", List.of(), new byte[7]));
    assertEquals("bad_value", e.cause);
    e = assertThrows(Bridge.Untranslatable.class, () -> Bridge.toProto("h", "histogram", List.of(), new byte[] {1, 2, 3}));
    assertEquals("bad_value", e.cause);
    e = assertThrows(Bridge.Untranslatable.class, () -> Bridge.toProto("x", "status", List.of(), new byte[8]));
    assertEquals("unknown_type", e.cause);
  }

  @Test
  void namesAndTagsAreEscapedAsGoEscapesThem() {
    String name = "a\"b\\c\n<&>\u2028é\u0001";
    byte[] m = Bridge.toProto(name, "gauge", List.of("k:v\"", "t<"), new byte[8]);
    MetricPb.Fields f = new MetricPb.Fields();
    assertTrue(MetricPb.scan(m, 0, m.length, f));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Bridge.toJson(m, f, out);
    String text = out.toString(StandardCharsets.UTF_8);
    assertTrue(text.contains("\"a\\\"b\\\\c\\n\\u003c\\u0026\\u003e\\u2028é\\u0001\""), text);
    JsonObject j = new JsonObject(text);
    assertEquals(name, j.getString("name"));
    assertEquals("k:v\",t<", j.getString("tagstring"));
    assertEquals(List.of("k:v\"", "t<"), strings(j.getJsonArray("tags")));
  }
}
