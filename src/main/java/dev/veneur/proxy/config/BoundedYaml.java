package dev.veneur.proxy.config;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.StringReader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Date;
import java.util.List;
import java.util.Map;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.SequenceNode;

/**
 * Parses one config file with every cost bounded before it is paid. A proxy's config is a few
 * kilobytes; a file that is not (a mistake, a wrong file copied over it, an attacker's alias bomb)
 * must be refused as a change, never parsed into a tree that fills the heap. SnakeYAML shares an
 * aliased node, so 48 aliases in 16 levels are a 601-byte file, but turning that graph into JSON
 * copies every path through it (3^16 objects). So the composed graph is walked first, counting
 * every node as the JSON would hold it, and refused past {@link #MAX_NODES}.
 *
 * <p>The bounds, and why they are where they are:
 * <ul>
 *   <li>{@link #MAX_FILE_BYTES} per file: six times a config listing a thousand
 *       {@code forward_addresses} (40 KB). SnakeYAML's cost grows faster than the length of a
 *       long scalar (a 1 MiB one-line value took 6 s here, a 256 KiB one 3.7 s), so
 *   <li>{@link #MAX_LINE_BYTES} per line: a config line is under 200 bytes; with lines this short
 *       the worst file we found parses in about 0.3 s, once per change, on a worker.
 *   <li>{@link #MAX_ALIASES}, {@link #MAX_DEPTH}: a config uses no aliases and three levels.
 *   <li>{@link #MAX_NODES}: every key, value and list element after aliases are expanded.
 * </ul>
 * Thread-safe and blocking: call it on a worker.
 */
public final class BoundedYaml {
  public static final int MAX_FILE_BYTES = 256 << 10;
  public static final int MAX_LINE_BYTES = 4 << 10;
  public static final int MAX_ALIASES = 20;
  public static final int MAX_DEPTH = 32;
  public static final int MAX_NODES = 100_000;

  private BoundedYaml() {}

  /** A file that breaks one of the bounds, or is not YAML; the message names the file and why. */
  public static final class Refused extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Refused(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * Parses {@code bytes} (the whole file, already read within {@link #MAX_FILE_BYTES}) into the
   * JSON the config is validated from. An empty file is an empty object.
   *
   * @throws Refused naming {@code name} and the bound or the syntax error
   */
  public static JsonObject parse(String name, byte[] bytes) {
    if (bytes.length > MAX_FILE_BYTES) {
      throw new Refused("config file " + name + " is " + bytes.length + " bytes, over the bound of "
          + MAX_FILE_BYTES + " bytes a config file may have");
    }
    int line = 0;
    int lineNo = 1;
    for (byte c : bytes) {
      if (c == '\n') {
        line = 0;
        lineNo++;
      } else if (++line > MAX_LINE_BYTES) {
        throw new Refused("config file " + name + " has a line (line " + lineNo + ") over the bound of "
            + MAX_LINE_BYTES + " bytes a config line may have");
      }
    }
    String text;
    try {
      text = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes)).toString();
    } catch (CharacterCodingException e) {
      throw new Refused("config file " + name + " is not UTF-8 text");
    }
    Yaml yaml = new Yaml(new SafeConstructor(options()));
    Node root;
    try {
      root = yaml.compose(new StringReader(text));
    } catch (YAMLException e) {
      throw new Refused("config file " + name + " is not valid YAML: " + LogText.flatten(e.getMessage()));
    }
    if (root == null) return new JsonObject();
    long nodes = countExpanded(root, MAX_NODES);
    if (nodes > MAX_NODES) {
      throw new Refused("config file " + name + " expands to more than " + MAX_NODES
          + " YAML nodes once its aliases are resolved (a config has a few hundred)");
    }
    Object value;
    try {
      // Parsed again into values: the first pass only proved the graph is small.
      value = yaml.load(text);
    } catch (YAMLException e) {
      throw new Refused("config file " + name + " is not valid YAML: " + LogText.flatten(e.getMessage()));
    }
    if (value == null) return new JsonObject();
    if (!(value instanceof Map<?, ?> map)) {
      throw new Refused("config file " + name + " is not a YAML mapping of keys to values");
    }
    return object(map);
  }

  static LoaderOptions options() {
    LoaderOptions o = new LoaderOptions();
    o.setMaxAliasesForCollections(MAX_ALIASES);
    o.setNestingDepthLimit(MAX_DEPTH);
    o.setCodePointLimit(MAX_FILE_BYTES);
    o.setAllowRecursiveKeys(false);
    return o;
  }

  /**
   * Nodes the value would have as JSON, aliases copied, stopping once past {@code limit}: the walk
   * itself is bounded, so a bomb costs at most {@code limit} steps.
   */
  static long countExpanded(Node root, long limit) {
    long count = 0;
    ArrayDeque<Node> todo = new ArrayDeque<>();
    todo.push(root);
    while (!todo.isEmpty()) {
      Node n = todo.pop();
      if (++count > limit) return count;
      if (n instanceof MappingNode m) {
        for (NodeTuple t : m.getValue()) {
          todo.push(t.getKeyNode());
          todo.push(t.getValueNode());
        }
      } else if (n instanceof SequenceNode s) {
        for (Node c : s.getValue()) todo.push(c);
      }
    }
    return count;
  }

  private static JsonObject object(Map<?, ?> map) {
    JsonObject o = new JsonObject();
    for (Map.Entry<?, ?> e : map.entrySet()) {
      o.put(String.valueOf(e.getKey()), json(e.getValue()));
    }
    return o;
  }

  private static Object json(Object v) {
    if (v instanceof Map<?, ?> m) return object(m);
    if (v instanceof List<?> l) {
      JsonArray a = new JsonArray();
      for (Object x : l) a.add(json(x));
      return a;
    }
    // A YAML timestamp (2026-01-01) is no value the proxy reads; as text, validation names it.
    if (v instanceof Date d) return d.toInstant().toString();
    if (v instanceof byte[] b) return b;
    return v;
  }
}
