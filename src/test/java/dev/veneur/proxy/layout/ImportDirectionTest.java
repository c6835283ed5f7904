package dev.veneur.proxy.layout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The direction rule of docs/architecture.md, checked on the production sources: packages sit in
 * layers along the data's way, and a package may use only packages of lower layers. So no stage
 * reaches into another, the message package stays a leaf, and there are no cycles. A new package
 * fails this test until it is given a layer here and in the document.
 *
 * <p>A stage may have sources in sub-packages on top of what they share ({@code ingest.http} and
 * {@code ingest.grpc} over {@code ingest}): a sub-package may use its parent and the parent's lower
 * layers; the parent never uses a sub-package, and sub-packages never use each other.
 */
class ImportDirectionTest {
  /** Lowest first. "app" is the root package {@code dev.veneur.proxy}: the composition root. */
  static final List<List<String>> LAYERS = List.of(
      List.of("bus", "config", "memory", "wire"),
      List.of("telemetry", "spill"),
      List.of("core"),
      List.of("routing"),
      List.of("ingest", "ring", "forward", "discovery"),
      List.of("app"));
  /** Sub-packages of a stage: its sources, over the stage's shared parts. */
  static final Map<String, List<String>> SUBPACKAGES = Map.of("ingest", List.of("http", "grpc"));

  private static final Path MAIN = Path.of("src/main/java/dev/veneur/proxy");
  private static final Pattern PACKAGE = Pattern.compile("^package dev\\.veneur\\.proxy(?:\\.(\\w+(?:\\.\\w+)?))?;", Pattern.MULTILINE);
  /** Any use of a proxy class by name: imports, static imports, wildcards and qualified names. */
  private static final Pattern USE = Pattern.compile("\\bdev\\.veneur\\.proxy\\.(\\w+|\\*)(?:\\.([a-z]\\w*)\\b(?!\\s*\\())?");
  /** Java allows blanks (and comments, blanked first) around the dots of a qualified name. */
  private static final Pattern SPACED_DOT = Pattern.compile("\\s*\\.\\s*");

  @Test
  void productionPackagesDependOnlyOnLowerLayers() throws IOException {
    Map<String, String> sources = new TreeMap<>();
    try (Stream<Path> files = Files.walk(MAIN)) {
      for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".java"))::iterator) {
        sources.put(MAIN.relativize(f).toString(), Files.readString(f));
      }
    }
    assertTrue(sources.size() > 50, "found only " + sources.size() + " sources under " + MAIN.toAbsolutePath());
    List<String> violations = violations(sources);
    assertEquals(List.of(), violations, "imports against the direction rule (docs/architecture.md):\n"
        + String.join("\n", violations));
  }

  /** The check itself must be able to fail: a leaf using a stage, a stage using a stage, a cycle. */
  @Test
  void theCheckCatchesWrongDirections() {
    Map<String, String> bad = new TreeMap<>();
    bad.put("bus/A.java", "package dev.veneur.proxy.bus;\nimport dev.veneur.proxy.routing.HashRing;\nclass A {}");
    bad.put("ring/B.java", "package dev.veneur.proxy.ring;\nclass B { Object f = new dev.veneur.proxy.forward.X(); }");
    bad.put("core/C.java", "package dev.veneur.proxy.core;\nimport static dev.veneur.proxy.ProxyApp.start;\nclass C {}");
    bad.put("ingest/D.java", "package dev.veneur.proxy.ingest;\nimport dev.veneur.proxy.forward.*;\nclass D {}");
    bad.put("newpkg/E.java", "package dev.veneur.proxy.newpkg;\nclass E {}");
    bad.put("forward/F.java", "package dev.veneur.proxy.forward;\n// dev.veneur.proxy.ingest.X in a comment\n"
        + "class F { String s = \"dev.veneur.proxy.ingest.Y\"; dev.veneur.proxy.routing.Dispatch d; }");
    bad.put("forward/G.java", "package dev.veneur.proxy.forward;\n/* " + "x".repeat(200_000) + " */\n"
        + "class G { char q = '\"'; String t = \"\"\"\n dev.veneur.proxy.ingest.Z \\\"\"\" \"\"\"; char s = '\\''; }");
    bad.put("memory/H.java", "package dev.veneur.proxy.memory;\nimport dev.veneur.proxy.*;\nclass H {}");
    bad.put("spill/I.java", "package dev.veneur.proxy.spill;\nclass I { dev.veneur.proxy\n   . /* x */ routing.Owners o; }");
    bad.put("telemetry/J.java", "package dev.veneur.proxy.telemetry;\nclass J { String t = \"\"\"\n a \\\\\"\"\"; "
        + "dev.veneur.proxy.core.Fatal f; }");
    bad.put("ingest/K.java", "package dev.veneur.proxy.ingest;\nclass K { dev.veneur.proxy.ingest.http.ImportVerticle v; }");
    bad.put("ingest/http/L.java", "package dev.veneur.proxy.ingest.http;\nimport dev.veneur.proxy.ingest.grpc.GrpcCall;\n"
        + "import dev.veneur.proxy.ingest.Admission;\nclass L {}");
    bad.put("ingest/grpc/M.java", "package dev.veneur.proxy.ingest.grpc;\nimport dev.veneur.proxy.ingest.*;\n"
        + "import dev.veneur.proxy.routing.Owners;\nclass M { dev.veneur.proxy.ring.RingVerticle r; }");
    bad.put("ingest/udp/N.java", "package dev.veneur.proxy.ingest.udp;\nclass N {}");
    List<String> v = violations(bad);
    List<String> sub = v.stream().filter(x -> x.startsWith("ingest/") && !x.startsWith("ingest/D.java")).toList();
    assertEquals(List.of("ingest/K.java: ingest -> ingest.http", "ingest/grpc/M.java: ingest.grpc -> ring",
        "ingest/http/L.java: ingest.http -> ingest.grpc", "ingest/udp/N.java: package ingest.udp has no layer"),
        sub.stream().map(x -> x.replaceAll(" \\(.*", "").replaceAll(" in the direction rule", "")).toList(),
        String.join("\n", sub));
    v = v.stream().filter(x -> !x.startsWith("ingest/") || x.startsWith("ingest/D.java")).toList();
    assertEquals(8, v.size(), String.join("\n", v));
    assertTrue(v.get(0).startsWith("bus/A.java: bus -> routing"), v.get(0));
    assertTrue(v.get(1).startsWith("core/C.java: core -> app"), v.get(1));
    assertTrue(v.get(2).startsWith("ingest/D.java: ingest -> forward"), v.get(2));
    assertTrue(v.get(3).startsWith("memory/H.java: memory -> app"), v.get(3));
    assertTrue(v.get(4).startsWith("newpkg/E.java: package newpkg has no layer"), v.get(4));
    assertTrue(v.get(5).startsWith("ring/B.java: ring -> forward"), v.get(5));
    assertTrue(v.get(6).startsWith("spill/I.java: spill -> routing"), v.get(6));
    assertTrue(v.get(7).startsWith("telemetry/J.java: telemetry -> core"), v.get(7));
  }

  static List<String> violations(Map<String, String> sources) {
    List<String> out = new ArrayList<>();
    for (Map.Entry<String, String> e : sources.entrySet()) {
      String code = SPACED_DOT.matcher(codeOnly(e.getValue())).replaceAll(".");
      Matcher pm = PACKAGE.matcher(code);
      if (!pm.find()) {
        out.add(e.getKey() + ": no package declaration");
        continue;
      }
      String from = pm.group(1) == null ? "app" : pm.group(1);
      int fromLayer = layer(from);
      if (fromLayer < 0) {
        out.add(e.getKey() + ": package " + from + " has no layer in the direction rule");
        continue;
      }
      TreeSet<String> used = new TreeSet<>();
      Matcher m = USE.matcher(code.substring(pm.end()));
      while (m.find()) {
        String first = m.group(1);
        // A class or a wildcard right under dev.veneur.proxy is the app package's.
        if (first.equals("*") || Character.isUpperCase(first.charAt(0))) used.add("app");
        else used.add(m.group(2) == null ? first : first + "." + m.group(2));
      }
      for (String to : used) {
        if (to.equals(from)) continue;
        if (top(to).equals(top(from))) {
          // Within a stage: a source may use the parts its stage shares, nothing else.
          if (!from.startsWith(to + ".")) {
            out.add(e.getKey() + ": " + from + " -> " + to + " (within " + top(from)
                + ", only a sub-package may use its parent: sources do not use each other, shared parts no source)");
          }
          continue;
        }
        int toLayer = layer(to);
        if (toLayer < 0 || toLayer >= fromLayer) {
          out.add(e.getKey() + ": " + from + " -> " + to + " (" + from + " is in layer " + fromLayer + ", "
              + to + (toLayer < 0 ? " in none" : " in layer " + toLayer) + "; only lower layers may be used)");
        }
      }
    }
    return out;
  }

  /**
   * The source with comments blanked and string, text-block and char literals emptied, so only code
   * names count. A loop rather than a regular expression: Java's regex engine recurses per
   * character in an alternation under a repetition and overflows the stack on a long comment.
   */
  static String codeOnly(String src) {
    StringBuilder out = new StringBuilder(src.length());
    int i = 0;
    int n = src.length();
    while (i < n) {
      char c = src.charAt(i);
      if (c == '/' && i + 1 < n && src.charAt(i + 1) == '/') {
        while (i < n && src.charAt(i) != '\n') i++;
      } else if (c == '/' && i + 1 < n && src.charAt(i + 1) == '*') {
        int end = src.indexOf("*/", i + 2);
        i = end < 0 ? n : end + 2;
        out.append(' ');
      } else if (src.startsWith("\"\"\"", i)) {
        int end = src.indexOf("\"\"\"", i + 3);
        while (end > 0 && escaped(src, end)) end = src.indexOf("\"\"\"", end + 1);
        i = end < 0 ? n : end + 3;
        out.append("\"\"");
      } else if (c == '"' || c == '\'') {
        i++;
        while (i < n && src.charAt(i) != c && src.charAt(i) != '\n') i += src.charAt(i) == '\\' ? 2 : 1;
        i++;
        out.append(c).append(c);
      } else {
        out.append(c);
        i++;
      }
    }
    return out.toString();
  }

  /** Whether the quote at {@code at} is escaped: an odd number of backslashes before it. */
  private static boolean escaped(String src, int at) {
    int n = 0;
    while (at - n - 1 >= 0 && src.charAt(at - n - 1) == '\\') n++;
    return n % 2 == 1;
  }

  private static int layer(String pkg) {
    String top = top(pkg);
    if (!top.equals(pkg) && !SUBPACKAGES.getOrDefault(top, List.of()).contains(pkg.substring(top.length() + 1))) {
      return -1;
    }
    for (int i = 0; i < LAYERS.size(); i++) if (LAYERS.get(i).contains(top)) return i;
    return -1;
  }

  private static String top(String pkg) {
    int dot = pkg.indexOf('.');
    return dot < 0 ? pkg : pkg.substring(0, dot);
  }
}
