package dev.veneur.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** When a plain {@code java -jar} runs the proxy in a second JVM with a bounded heap (issue 19). */
class HeapChoiceTest {
  private static final long HOST_DEFAULT = 6028L << 20; // a quarter of a 24 GiB host

  /** Every heap flag as the JVM chose it, but those given. */
  private static Function<String, String> origins(Map<String, String> given) {
    return flag -> given.getOrDefault(flag, flag.equals("MaxHeapSize") || flag.equals("InitialHeapSize") ? "ERGONOMIC" : "DEFAULT");
  }

  private static HeapChoice.Decision decide(List<String> args, Map<String, String> given) {
    return HeapChoice.decide(args, origins(given), HOST_DEFAULT, null, null);
  }

  @Test
  void aPlainJavaJarIsRelaunchedWithABoundedHeap() {
    HeapChoice.Decision d = decide(List.of(), Map.of());
    assertTrue(d.relaunch(), d.why());
    assertEquals("-Xmx192m", d.xmx());
    assertTrue(d.why().contains("6028 MiB"), d.why());
    // System properties are not JVM tuning: still plain.
    assertTrue(decide(List.of("-Dveneur.proxy.adminAddressDefault=127.0.0.1:0", "-Dfile.encoding=UTF-8"), Map.of()).relaunch());
  }

  @Test
  void anyHeapFlagKeepsTheOperatorsJvm() {
    HeapChoice.Decision xmx = decide(List.of("-Xmx256m"), Map.of("MaxHeapSize", "VM_CREATION"));
    assertFalse(xmx.relaunch());
    assertTrue(xmx.why().contains("MaxHeapSize from vm_creation"), xmx.why());
    // From JAVA_TOOL_OPTIONS, as the Kubernetes manifests set it.
    HeapChoice.Decision pct = decide(List.of("-XX:MaxRAMPercentage=60"), Map.of("MaxRAMPercentage", "ENVIRON_VAR"));
    assertFalse(pct.relaunch());
    assertTrue(pct.why().contains("MaxRAMPercentage from environ_var"), pct.why());
    // A -XX:VMOptionsFile is seen through the flag's origin, not the arguments.
    assertFalse(decide(List.of(), Map.of("MaxRAM", "CONFIG_FILE")).relaunch());
    assertFalse(decide(List.of(), Map.of("InitialHeapSize", "VM_CREATION")).relaunch());
    // A JVM whose flags cannot be read (not HotSpot): the arguments say it.
    assertFalse(HeapChoice.decide(List.of("-Xms64m"), flag -> null, HOST_DEFAULT, null, null).relaunch());
  }

  @Test
  void otherJvmOptionsKeepThisJvmAndSaySo() {
    // Started twice these would collide: two recordings or GC logs to one file, two debuggers or
    // JMX listeners on one port. Or the operator tunes GC: theirs to choose.
    for (String opt : List.of("-XX:StartFlightRecording=filename=x.jfr", "-Xlog:gc:file=gc.log",
        "-agentlib:jdwp=transport=dt_socket,server=y,address=5005", "-javaagent:agent.jar", "-XX:+UseSerialGC",
        "-Dcom.sun.management.jmxremote.port=9010")) {
      HeapChoice.Decision d = decide(List.of("-Dx=1", opt), Map.of());
      assertFalse(d.relaunch(), opt);
      assertTrue(d.why().contains(opt) && d.why().contains("-Xmx256m"), d.why());
    }
  }

  @Test
  void aSmallJvmHeapOrAnOptOutOrALaunchedJvmIsLeftAlone() {
    // In a container with a small memory limit the JVM's own choice is already below the bound.
    HeapChoice.Decision small = HeapChoice.decide(List.of(), origins(Map.of()), 128L << 20, null, null);
    assertFalse(small.relaunch());
    assertTrue(small.why().contains("128 MiB"), small.why());
    assertFalse(HeapChoice.decide(List.of(), origins(Map.of()), HOST_DEFAULT, "false", null).relaunch());
    assertTrue(HeapChoice.decide(List.of(), origins(Map.of()), HOST_DEFAULT, "true", null).relaunch());
    // The launched JVM has -Xmx (so it would stay anyway), and the launcher's pid besides.
    HeapChoice.Decision child = HeapChoice.decide(List.of(), origins(Map.of()), HOST_DEFAULT, null, "4242");
    assertFalse(child.relaunch());
    assertTrue(child.why().contains("4242"), child.why());
  }
}
