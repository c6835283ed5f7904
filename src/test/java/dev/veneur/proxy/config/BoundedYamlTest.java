package dev.veneur.proxy.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Every bound of {@link BoundedYaml}, each broken alone, and a real config still read whole. */
class BoundedYamlTest {

  /** The issue's file: 16 levels of 3 aliases each (48 aliases), 3^16 copies once expanded. */
  static String aliasBomb(int levels, int fanOut) {
    return aliasBomb(levels, fanOut, 2);
  }

  /** The same with a base list of {@code base} scalars (no aliases) at the bottom. */
  static String aliasBomb(int levels, int fanOut, int base) {
    StringBuilder b = new StringBuilder("l0: &l0 [");
    for (int k = 0; k < base; k++) b.append(k == 0 ? "" : ", ").append(k);
    b.append("]\n");
    for (int i = 1; i <= levels; i++) {
      b.append('l').append(i).append(": &l").append(i).append(" [");
      for (int k = 0; k < fanOut; k++) b.append(k == 0 ? "" : ", ").append("*l").append(i - 1);
      b.append("]\n");
    }
    return b.toString();
  }

  private static BoundedYaml.Refused refused(String yaml) {
    return assertThrows(BoundedYaml.Refused.class,
        () -> BoundedYaml.parse("proxy.yaml", yaml.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void theIssuesAliasBombIsRefused() {
    // 48 aliases: under SnakeYAML's default limit of 50, which is why it once got through.
    String bomb = aliasBomb(16, 3);
    assertTrue(bomb.length() < 700, "the bomb is a small file: " + bomb.length());
    BoundedYaml.Refused e = refused(bomb);
    assertTrue(e.getMessage().contains("proxy.yaml") && e.getMessage().contains("aliases"), e.getMessage());
  }

  @Test
  void aBombWithinTheAliasBoundIsRefusedByItsExpandedSize() {
    // 20 aliases (the bound) over a 500-element list: 2^10 x 500 = half a million nodes as JSON.
    String bomb = aliasBomb(10, 2, 500);
    BoundedYaml.Refused e = refused(bomb);
    assertTrue(e.getMessage().contains("proxy.yaml") && e.getMessage().contains("expands to more than 100000"),
        e.getMessage());
  }

  @Test
  void moreAliasesThanAConfigCouldUseAreRefused() {
    // 8 levels of 3 = 24 aliases, only 3^8 = 6,561 nodes: small, but past the alias bound.
    BoundedYaml.Refused e = refused(aliasBomb(8, 3));
    assertTrue(e.getMessage().contains("not valid YAML") && e.getMessage().contains("aliases"), e.getMessage());
  }

  @Test
  void aFileOverTheByteBoundIsRefusedBeforeParsing() {
    byte[] big = new byte[BoundedYaml.MAX_FILE_BYTES + 1];
    java.util.Arrays.fill(big, (byte) 'a');
    var e = assertThrows(BoundedYaml.Refused.class, () -> BoundedYaml.parse("proxy.yaml", big));
    assertTrue(e.getMessage().contains("over the bound of 262144 bytes"), e.getMessage());
  }

  @Test
  void aLongLineIsRefusedBeforeParsing() {
    String yaml = "forward_address: \"http://127.0.0.1:1\"\nsentry_dsn: \"" + "x".repeat(BoundedYaml.MAX_LINE_BYTES) + "\"\n";
    BoundedYaml.Refused e = refused(yaml);
    assertTrue(e.getMessage().contains("(line 2) over the bound of 4096 bytes"), e.getMessage());
  }

  @Test
  void deepNestingIsRefused() {
    String deep = "a: " + "[".repeat(200) + "]".repeat(200) + "\n";
    BoundedYaml.Refused e = refused(deep);
    assertTrue(e.getMessage().contains("not valid YAML") && e.getMessage().toLowerCase().contains("nesting"),
        e.getMessage());
  }

  @Test
  void aFileThatIsNotAMappingOrNotUtf8IsRefused() {
    assertTrue(refused("- a\n- b\n").getMessage().contains("not a YAML mapping"));
    var e = assertThrows(BoundedYaml.Refused.class,
        () -> BoundedYaml.parse("proxy.yaml", new byte[] {'a', ':', ' ', (byte) 0xff, '\n'}));
    assertTrue(e.getMessage().contains("not UTF-8"), e.getMessage());
  }

  @Test
  void aSyntaxErrorIsOneLineNamingTheFile() {
    BoundedYaml.Refused e = refused("batch_linger: {\n");
    assertTrue(e.getMessage().startsWith("config file proxy.yaml is not valid YAML: "), e.getMessage());
    assertTrue(e.getMessage().indexOf('\n') < 0, e.getMessage());
  }

  @Test
  void theShippedConfigAndAnEmptyFileAreReadWhole() throws Exception {
    byte[] shipped = Files.readAllBytes(Path.of("conf", "proxy.yaml"));
    JsonObject json = BoundedYaml.parse("conf/proxy.yaml", shipped);
    // The same config ProxyConfig validates at start: a bound that cut it would fail here.
    ProxyConfig.from(json);
    assertTrue(json.size() > 0);
    assertEquals(new JsonObject(), BoundedYaml.parse("empty.yaml", new byte[0]));
    assertEquals(new JsonObject(), BoundedYaml.parse("comment.yaml", "# nothing\n".getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void valuesKeepTheirYamlTypes() {
    JsonObject j = BoundedYaml.parse("x.yaml", ("n: 3\nf: 1.5\nb: true\ns: \"10s\"\nnil: ~\nl: [\"a\", 2]\n"
        + "m: {k: v}\n").getBytes(StandardCharsets.UTF_8));
    assertEquals(3, j.getInteger("n"));
    assertEquals(1.5, j.getDouble("f"));
    assertEquals(true, j.getBoolean("b"));
    assertEquals("10s", j.getString("s"));
    assertTrue(j.containsKey("nil") && j.getValue("nil") == null);
    assertEquals("a", j.getJsonArray("l").getString(0));
    assertEquals("v", j.getJsonObject("m").getString("k"));
  }

  @Test
  void theExpandedCountStopsAtItsLimit() {
    var node = new org.yaml.snakeyaml.Yaml(new org.yaml.snakeyaml.constructor.SafeConstructor(BoundedYaml.options()))
        .compose(new java.io.StringReader(aliasBomb(10, 2, 500)));
    // Half a million nodes, yet the walk takes limit + 1 steps.
    assertEquals(1001, BoundedYaml.countExpanded(node, 1000));
  }
}
