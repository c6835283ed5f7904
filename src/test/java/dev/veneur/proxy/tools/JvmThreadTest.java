package dev.veneur.proxy.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.veneur.proxy.tools.ProxyRig.JvmThread;
import dev.veneur.proxy.tools.ProxyRig.JvmThread.Role;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The bench's split of a proxy's CPU into the JVM's own threads (JIT, GC) and the rest. */
class JvmThreadTest {
  @Test
  void hotSpotThreadNamesAreToldApart() {
    assertEquals(Role.JIT, JvmThread.role("C2 CompilerThre"));
    assertEquals(Role.JIT, JvmThread.role("C1 CompilerThre"));
    assertEquals(Role.GC, JvmThread.role("GC Thread#0"));
    assertEquals(Role.GC, JvmThread.role("G1 Conc#0"));
    assertEquals(Role.GC, JvmThread.role("G1 Refine#0"));
    assertEquals(Role.GC, JvmThread.role("VM Thread"));
    assertNull(JvmThread.role("vert.x-eventloo"));
    assertNull(JvmThread.role("VM Periodic Tas"));
    assertNull(JvmThread.role("java"));
  }

  /** The names this JVM's threads really have (it is a HotSpot JVM like the proxy's). */
  @Test
  void thisJvmHasThreadsOfBothRoles() throws Exception {
    Path tasks = Path.of("/proc/self/task");
    assumeTrue(Files.isDirectory(tasks), "no /proc/self/task: not Linux");
    Set<Role> seen = EnumSet.noneOf(Role.class);
    try (Stream<Path> list = Files.list(tasks)) {
      for (Path t : (Iterable<Path>) list::iterator) {
        Role r = JvmThread.role(Files.readString(t.resolve("comm")).trim());
        if (r != null) seen.add(r);
      }
    }
    assertEquals(EnumSet.allOf(Role.class), seen);
  }

  @Test
  void spentCountsThreadsOfTheLaterReadingFromZeroWhenNew() {
    Map<Long, JvmThread> before = Map.of(1L, new JvmThread(Role.JIT, 100), 2L, new JvmThread(Role.GC, 50),
        3L, new JvmThread(Role.JIT, 70));
    // 3 ended in the window (not counted), 4 started in it (counted from 0).
    Map<Long, JvmThread> after = Map.of(1L, new JvmThread(Role.JIT, 130), 2L, new JvmThread(Role.GC, 55),
        4L, new JvmThread(Role.JIT, 9));
    assertArrayEquals(new long[] {39, 5}, JvmThread.spent(before, after));
    assertTrue(JvmThread.spent(after, after)[0] == 0 && JvmThread.spent(after, after)[1] == 0);
  }
}
