package dev.veneur.proxy;

import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Whether a plain {@code java -jar} runs the proxy in a JVM of its own with a bounded heap (issue
 * 19), decided from what the first JVM was started with. Pure: {@link Launch} feeds it the JVM's
 * arguments and flag origins, the tests feed it theirs.
 *
 * <p>Why a second JVM: with no heap flag the JVM takes a quarter of the host's RAM as its maximum
 * heap (6 GiB on a 24 GiB host), and G1 grows the heap whenever its pauses take more than about 1%
 * of the time (its threshold shrinks with the committed heap's share of that maximum), which on a
 * busy host is always: measured, plain {@code java -jar} at 32 senders peaked at 547–1393 MiB RSS.
 * Nothing a running JVM can change bounds that: {@code MaxHeapSize} is not manageable, G1 in JDK 17
 * ignores {@code SoftMaxHeapSize}, {@code MaxHeapFreeRatio} only shrinks at a concurrent cycle's
 * remark (measured: 565–738 MiB), and shrinking by {@code System.gc()} after each expansion costs a
 * full GC every 4–5 s and still peaked at 365–439 MiB. Only {@code -Xmx} holds, so the proxy gives
 * it to a JVM it starts.
 */
final class HeapChoice {
  /**
   * The heap a launched JVM gets. At 32 senders (2026-12-06, this 2-core host) a JVM of the proxy
   * peaked at its heap plus ~125-135 MiB (metaspace ~19, code ~15, G1's tables ~20, malloc ~25,
   * libjvm and the class-data archive ~33, stacks), and the launcher adds ~42 MiB: with
   * {@code -Xmx224m} the two together peaked at 347-414 MiB, with {@code -Xmx192m} the proxy alone
   * at 319-327 MiB. The memory budget defaults to 40% of it (76 MiB).
   */
  static final long HEAP = 192L << 20;

  /** The JVM flags that size the heap: one set by the operator and the JVM's own choice stands. */
  static final List<String> HEAP_FLAGS = List.of("MaxHeapSize", "InitialHeapSize", "MinHeapSize", "MaxRAM",
      "MaxRAMPercentage", "MinRAMPercentage", "InitialRAMPercentage", "MaxRAMFraction", "MinRAMFraction",
      "InitialRAMFraction", "MaxNewSize", "NewSize");

  /** The system property that asks for no second JVM (run as the JVM was started), and the one a launched JVM gets. */
  static final String RELAUNCH = "veneur.proxy.relaunch";
  static final String LAUNCHER = "veneur.proxy.launcher";

  /** What to do, and why, for the log. */
  record Decision(boolean relaunch, String why) {
    /** The launched JVM's heap flag. */
    String xmx() {
      return "-Xmx" + (HEAP >> 20) + "m";
    }
  }

  private HeapChoice() {}

  /**
   * @param jvmArgs the first JVM's arguments (RuntimeMXBean: the command line's, JAVA_TOOL_OPTIONS'
   *     and JDK_JAVA_OPTIONS')
   * @param origin a HotSpot flag's origin ({@code VMOption.Origin} as text: DEFAULT, ERGONOMIC,
   *     VM_CREATION...), null when the flag does not exist or cannot be read
   * @param jvmMaxHeap the heap the JVM took ({@code Runtime.maxMemory()})
   * @param relaunchProperty the value of {@link #RELAUNCH}, or null
   * @param launcherProperty the value of {@link #LAUNCHER}, or null: set in a JVM this started
   */
  static Decision decide(List<String> jvmArgs, Function<String, String> origin, long jvmMaxHeap,
      String relaunchProperty, String launcherProperty) {
    if (launcherProperty != null) return new Decision(false, "started by the launcher (pid " + launcherProperty + ")");
    if ("false".equalsIgnoreCase(relaunchProperty)) {
      return new Decision(false, "-D" + RELAUNCH + "=false");
    }
    for (String flag : HEAP_FLAGS) {
      String o = origin.apply(flag);
      if (o != null && !o.equals("DEFAULT") && !o.equals("ERGONOMIC")) {
        return new Decision(false, "the heap is the operator's (" + flag + " from " + o.toLowerCase(Locale.ROOT) + ")");
      }
    }
    for (String a : jvmArgs) {
      // Said on the command line in a form whose origin the flags above may not show.
      if (a.startsWith("-Xmx") || a.startsWith("-Xms") || a.startsWith("-Xmn")) {
        return new Decision(false, "the heap is the operator's (" + a + ")");
      }
    }
    // Any JVM option other than a plain system property means the operator is configuring this
    // JVM: agents, JFR, GC logs, a JMX port, a debugger. Started twice they would collide (two
    // recordings or logs to one file, two listeners on one port), so they get this JVM as it is.
    for (String a : jvmArgs) {
      if (!a.startsWith("-D") || a.startsWith("-Dcom.sun.management")) {
        return new Decision(false, "JVM options given (" + a + "), none sizing the heap: the JVM's own heap stands ("
            + (jvmMaxHeap >> 20) + " MiB at most); give -Xmx256m to bound it");
      }
    }
    if (jvmMaxHeap <= HEAP) {
      return new Decision(false, "the JVM's own heap is small enough (" + (jvmMaxHeap >> 20) + " MiB)");
    }
    return new Decision(true, "no heap size given: the JVM would take up to " + (jvmMaxHeap >> 20)
        + " MiB and G1 grows into it under load");
  }
}
