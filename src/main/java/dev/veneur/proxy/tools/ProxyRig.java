package dev.veneur.proxy.tools;

import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What the bench and the soak both measure: counting stand-in globals in this JVM and the proxy
 * jar as its own process forwarding to them, plus readings of that process from /proc (Linux).
 */
final class ProxyRig implements AutoCloseable {
  final List<StandInGlobal> globals;
  final int port;
  final Process proxy;
  final Path log;

  private ProxyRig(List<StandInGlobal> globals, int port, Process proxy, Path log) {
    this.globals = globals;
    this.port = port;
    this.proxy = proxy;
    this.log = log;
  }

  /** Starts the globals and the proxy, and waits until the proxy answers /healthcheck. */
  static ProxyRig launch(Vertx vertx, int globalCount, String jar, String javaOpts, String extraYaml,
      String name) throws Exception {
    List<StandInGlobal> gs = new ArrayList<>();
    StringBuilder dests = new StringBuilder();
    for (int i = 0; i < globalCount; i++) {
      StandInGlobal g = new StandInGlobal(false);
      int port = g.listen(vertx, "127.0.0.1", 0).await();
      gs.add(g);
      dests.append(i == 0 ? "" : ", ").append("\"http://127.0.0.1:").append(port).append('"');
    }
    int proxyPort = freePort();
    Path yaml = Files.createTempFile(name + "-proxy", ".yaml");
    Files.writeString(yaml, "http_address: \"127.0.0.1:" + proxyPort + "\"\n"
        + "forward_addresses: [" + dests + "]\n" + extraYaml.replace("\\n", "\n") + "\n");
    Path log = Files.createTempFile(name + "-proxy", ".log");
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(Arrays.asList(javaOpts.trim().split("\\s+")));
    cmd.addAll(List.of("-jar", jar, "-f", yaml.toString()));
    Process proxy = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    ProxyRig rig = new ProxyRig(gs, proxyPort, proxy, log);
    try {
      rig.awaitHealthy();
    } catch (Exception e) {
      rig.close();
      throw e;
    }
    return rig;
  }

  /** Metrics the globals have received so far. */
  long delivered() {
    long n = 0;
    for (StandInGlobal g : globals) n += g.metrics();
    return n;
  }

  /** The proxy's user + system CPU time, in clock ticks (USER_HZ, 100 per second on Linux). */
  long cpuTicks() throws IOException {
    String stat = Files.readString(Path.of("/proc/" + proxy.pid() + "/stat"));
    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime + stime
  }

  /** A line of /proc/PID/status in KiB: VmRSS (now) or VmHWM (peak). */
  long memoryKib(String field) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/" + proxy.pid() + "/status"))) {
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

  /** Stops the proxy with SIGTERM and waits for it. */
  @Override
  public void close() throws InterruptedException {
    proxy.destroy();
    proxy.waitFor();
  }
}
