package dev.veneur.proxy;

import com.sun.management.HotSpotDiagnosticMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The jar's entry point. A plain {@code java -jar veneur-proxy.jar} (no JVM option but system
 * properties) runs the proxy in a second JVM with {@code -Xmx192m}, see {@link HeapChoice}; any
 * heap flag, any other JVM option, or {@code -Dveneur.proxy.relaunch=false} runs it in this JVM
 * ({@link Main}), as before.
 *
 * <p>The first JVM stays as the launcher: it is the process the operator (systemd, Kubernetes, a
 * shell) knows, so it passes SIGTERM and SIGINT on (as SIGTERM: the proxy stops gracefully on
 * either), shares its standard streams, and exits with the proxy's exit code. The proxy stops by
 * itself if the launcher dies ({@link Main}). This class loads nothing of the proxy's (no logging,
 * no Vert.x) so that the launcher stays small: ~42 MiB RSS, half of it libjvm and the class-data
 * archive, which are the same pages as the child's.
 */
public final class Launch {
  private Launch() {}

  public static void main(String[] args) throws Exception {
    List<String> jvmArgs = ManagementFactory.getRuntimeMXBean().getInputArguments();
    HeapChoice.Decision d = HeapChoice.decide(jvmArgs, Launch::origin, Runtime.getRuntime().maxMemory(),
        System.getProperty(HeapChoice.RELAUNCH), System.getProperty(HeapChoice.LAUNCHER));
    // Asking for the version or the usage starts no second JVM.
    for (String a : args) {
      if (a.equals("-v") || a.equals("--version") || a.equals("-h") || a.equals("--help")) {
        d = new HeapChoice.Decision(false, "only " + a);
      }
    }
    if (!d.relaunch()) {
      Main.heapChoice = d;
      Main.main(args);
      return;
    }
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // What this JVM was given (system properties only, see HeapChoice), the environment's
    // options included: they are passed here and taken out of the child's environment, so the
    // child gets each once.
    cmd.addAll(jvmArgs);
    cmd.add(d.xmx());
    cmd.add("-D" + HeapChoice.LAUNCHER + "=" + ProcessHandle.current().pid());
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(Main.class.getName());
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
    pb.environment().remove("JAVA_TOOL_OPTIONS");
    pb.environment().remove("JDK_JAVA_OPTIONS");
    Process child;
    try {
      child = pb.start();
    } catch (java.io.IOException | RuntimeException e) {
      // No second JVM to be had (no java binary where java.home says): run here, as before.
      System.err.println("veneur-proxy: could not start a JVM with " + d.xmx() + " (" + e + "); running in this one,"
          + " with the JVM's own heap");
      Main.heapChoice = new HeapChoice.Decision(false, "no second JVM could be started (" + e + ")");
      Main.main(args);
      return;
    }
    // SIGTERM and SIGINT are the proxy's to handle (a graceful stop): passed on, and this JVM waits.
    for (String sig : new String[] {"TERM", "INT"}) {
      sun.misc.Signal.handle(new sun.misc.Signal(sig), s -> child.destroy());
    }
    // Any other way this JVM ends (SIGHUP, say) still stops the proxy and waits for it.
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      if (child.isAlive()) {
        child.destroy();
        try {
          child.waitFor();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }, "veneur-proxy-launcher-stop"));
    // No System.gc() here to give back what starting took: a full GC's own scratch raised this
    // JVM's peak RSS by 8 MiB (41 to 49 MiB) for 9 MiB given back after it.
    int code;
    while (true) {
      try {
        code = child.waitFor();
        break;
      } catch (InterruptedException e) {
        // Nothing interrupts this thread on purpose; keep waiting for the proxy.
      }
    }
    System.exit(code);
  }

  /** A HotSpot flag's origin (DEFAULT, ERGONOMIC, VM_CREATION...), or null if it cannot be read. */
  private static String origin(String flag) {
    try {
      return ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class).getVMOption(flag).getOrigin().name();
    } catch (RuntimeException e) {
      return null;
    }
  }
}
