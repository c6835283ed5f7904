package dev.veneur.proxy.tools;

import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What the bench and the soak both measure: stand-in globals ({@link Globals}, in this JVM or
 * their own) and the proxy jar as its own process forwarding to them, plus readings of processes
 * from /proc (Linux). The rig owns the globals: {@link #close()} stops both.
 */
final class ProxyRig implements AutoCloseable {
  /** USER_HZ on Linux: /proc/PID/stat counts CPU time in these ticks. */
  static final long TICKS_PER_SECOND = 100;

  final Globals globals;
  final int port;
  final Process proxy;
  final Path log;
  final List<String> command;

  private ProxyRig(Globals globals, int port, Process proxy, Path log, List<String> command) {
    this.globals = globals;
    this.port = port;
    this.proxy = proxy;
    this.log = log;
    this.command = command;
  }

  /**
   * Decoding stand-in globals in this JVM (one event loop each) and the proxy; waits until the
   * proxy answers /healthcheck.
   */
  static ProxyRig launch(Vertx vertx, int globalCount, String jar, String javaOpts, String extraYaml,
      String name) throws Exception {
    Path dir = Files.createTempDirectory(name + "-");
    return launch(Globals.inProcess(vertx, globalCount, false, 1), jar, javaOpts, extraYaml, dir, name);
  }

  /**
   * The proxy, forwarding to {@code globals} ({@code forward_addresses}); its config and log go to
   * {@code dir}. Waits until it answers /healthcheck. On failure the globals are closed too.
   */
  static ProxyRig launch(Globals globals, String jar, String javaOpts, String extraYaml, Path dir, String name)
      throws Exception {
    ProxyRig rig = null;
    try {
      StringBuilder dests = new StringBuilder();
      for (int p : globals.ports()) {
        dests.append(dests.length() == 0 ? "" : ", ").append("\"http://127.0.0.1:").append(p).append('"');
      }
      int proxyPort = freePort();
      Path yaml = dir.resolve(name + "-proxy.yaml");
      Path log = dir.resolve(name + "-proxy.log");
      List<String> cmd = new ArrayList<>();
      if (!jar.endsWith(".jar")) {
        // A Go veneur-proxy v2 binary, to compare under the same load and globals: it takes one
        // static destination (forward_address), or Consul.
        if (globals.ports().size() != 1) {
          throw new IllegalArgumentException("the Go proxy v2 forwards to one forward_address: use --globals 1");
        }
        Files.writeString(yaml, "http_address: \"127.0.0.1:" + proxyPort + "\"\n"
            + "forward_address: \"http://127.0.0.1:" + globals.ports().get(0) + "\"\n"
            + extraYaml.replace("\\n", "\n") + "\n");
        cmd.addAll(List.of(Path.of(jar).toAbsolutePath().toString(), "-f", yaml.toString()));
      } else {
        Files.writeString(yaml, "http_address: \"127.0.0.1:" + proxyPort + "\"\n"
            + "forward_addresses: [" + dests + "]\n" + extraYaml.replace("\\n", "\n") + "\n");
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(splitOpts(javaOpts));
        cmd.addAll(List.of("-jar", jar, "-f", yaml.toString()));
      }
      Process proxy = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
      rig = new ProxyRig(globals, proxyPort, proxy, log, cmd);
      rig.awaitHealthy();
      return rig;
    } catch (Exception e) {
      if (rig != null) rig.close();
      else globals.close();
      throw e;
    }
  }

  /** JVM options as separate arguments; a blank string is no options at all (plain {@code java -jar}). */
  static List<String> splitOpts(String javaOpts) {
    List<String> out = new ArrayList<>();
    for (String s : javaOpts.trim().split("\\s+")) if (!s.isEmpty()) out.add(s);
    return out;
  }

  /** Metrics the globals have received so far. */
  long delivered() throws IOException {
    return globals.delivered();
  }

  /** The proxy's user + system CPU time, in clock ticks ({@link #TICKS_PER_SECOND}). */
  long cpuTicks() throws IOException {
    return cpuTicks(proxy.pid());
  }

  /** A line of the proxy's /proc/PID/status in KiB: VmRSS (now) or VmHWM (peak). */
  long memoryKib(String field) throws IOException {
    return memoryKib(proxy.pid(), field);
  }

  /**
   * Resets the proxy's peak RSS (VmHWM) to its current RSS, by writing 5 to /proc/PID/clear_refs
   * (Linux 4.0+), so a later VmHWM is the peak of what came after. False if that is not allowed.
   */
  boolean resetPeakRss() {
    try {
      Files.writeString(Path.of("/proc/" + proxy.pid() + "/clear_refs"), "5");
      return true;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** User + system CPU time of a process ({@code "self"} for this one), in clock ticks. */
  static long cpuTicks(String pid) throws IOException {
    String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime + stime
  }

  static long cpuTicks(long pid) throws IOException {
    return cpuTicks(String.valueOf(pid));
  }

  static long memoryKib(long pid, String field) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (line.startsWith(field + ":")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
    }
    return -1;
  }

  private void awaitHealthy() throws Exception {
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (System.nanoTime() < deadline) {
      if (!proxy.isAlive()) {
        throw new IllegalStateException("proxy exited: " + Files.readString(log));
      }
      try {
        HttpURLConnection c = (HttpURLConnection) new URL("http://127.0.0.1:" + port + "/healthcheck").openConnection();
        c.setConnectTimeout(200);
        if (c.getResponseCode() == 200) return;
      } catch (IOException notYet) {
        Thread.sleep(100);
      }
    }
    throw new IllegalStateException("proxy did not become healthy; log at " + log);
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /**
   * Stops the proxy with SIGTERM and waits for it (killing it after a minute), then the globals.
   * Returns nothing; {@link #exitCode()} tells how the proxy ended.
   */
  @Override
  public void close() throws InterruptedException {
    try {
      proxy.destroy();
      if (!proxy.waitFor(60, TimeUnit.SECONDS)) {
        proxy.destroyForcibly().waitFor();
      }
    } finally {
      globals.close();
    }
  }

  /** The proxy's exit code, or null while it runs. */
  Integer exitCode() {
    return proxy.isAlive() ? null : proxy.exitValue();
  }
}
