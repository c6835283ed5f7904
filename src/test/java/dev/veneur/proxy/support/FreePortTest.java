package dev.veneur.proxy.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link TestProxy#freePort()} across test JVMs: two suites on one machine (the loaded runs of
 * issue 22) must never be handed the same port, or one suite's load reaches the other's proxy.
 */
class FreePortTest {
  private static final int PORTS = 1000;

  /** Run in a second JVM: prints {@code PORTS} ports from {@link TestProxy#freePort()}. */
  public static void main(String[] args) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < PORTS; i++) out.append(TestProxy.freePort()).append('\n');
    System.out.print(out);
    System.out.flush();
  }

  @Test
  void anotherJvmIsNeverHandedAPortThisOneHolds() throws Exception {
    Set<Integer> ours = new HashSet<>();
    for (int i = 0; i < PORTS; i++) assertTrue(ours.add(TestProxy.freePort()), "handed out twice in one JVM");
    // Without the machine-wide reservation, 1000 random picks from ~22,000 ports in each JVM share
    // about 45 ports; with it, none.
    Process child = new ProcessBuilder(System.getProperty("java.home") + File.separator + "bin" + File.separator + "java",
        "-cp", System.getProperty("java.class.path"), FreePortTest.class.getName())
        .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    List<String> lines;
    try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
      lines = r.lines().toList();
    }
    assertTrue(child.waitFor(60, TimeUnit.SECONDS), "the second JVM did not finish");
    assertEquals(0, child.exitValue());
    assertEquals(PORTS, lines.size());
    Set<Integer> shared = new HashSet<>();
    for (String l : lines) if (ours.contains(Integer.parseInt(l.trim()))) shared.add(Integer.parseInt(l.trim()));
    assertEquals(Set.of(), shared, "ports handed to both JVMs");
  }
}
