package dev.veneur.proxy.tools;

import dev.veneur.proxy.support.ConsulDouble;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
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
  /** The proxy's grpc_address port, or -1 when it was not given one. */
  final int grpcPort;
  final Process proxy;
  final Path log;
  final List<String> command;
  /** The Consul a Go proxy finds several globals in; null otherwise. */
  private ConsulDouble consul;

  private ProxyRig(Globals globals, int port, int grpcPort, Process proxy, Path log, List<String> command) {
    this.globals = globals;
    this.port = port;
    this.grpcPort = grpcPort;
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

  /** The proxy taking JSON on /import only (see the next). */
  static ProxyRig launch(Globals globals, String jar, String javaOpts, String extraYaml, Path dir, String name)
      throws Exception {
    return launch(globals, false, jar, javaOpts, extraYaml, dir, name);
  }

  /**
   * The proxy, forwarding to {@code globals}: HTTP ones by {@code forward_addresses}, gRPC ones
   * ({@link Globals#grpc()}) by {@code grpc_forward_address} as {@code host:port} members; with
   * {@code grpcIn} it also listens on a {@code grpc_address}. Its config and log go to {@code dir}.
   * Waits until it answers /healthcheck (and its gRPC port takes connections). On failure the
   * globals are closed too.
   */
  static ProxyRig launch(Globals globals, boolean grpcIn, String jar, String javaOpts, String extraYaml, Path dir,
      String name) throws Exception {
    return launch(null, globals, grpcIn, jar, javaOpts, extraYaml, dir, name);
  }

  /**
   * As the previous, and a Go proxy given several globals finds them in a Consul double served by
   * {@code vertx} (it takes one static destination only).
   */
  static ProxyRig launch(Vertx vertx, Globals globals, boolean grpcIn, String jar, String javaOpts, String extraYaml,
      Path dir, String name) throws Exception {
    ProxyRig rig = null;
    ConsulDouble consul = null;
    try {
      int proxyPort = freePort();
      int grpcPort = grpcIn ? freePort() : -1;
      Path yaml = dir.resolve(name + "-proxy.yaml");
      Path log = dir.resolve(name + "-proxy.log");
      StringBuilder config = new StringBuilder("http_address: \"127.0.0.1:" + proxyPort + "\"\n");
      if (grpcIn) config.append("grpc_address: \"127.0.0.1:").append(grpcPort).append("\"\n");
      List<String> cmd = new ArrayList<>();
      if (!jar.endsWith(".jar")) {
        if (globals.ports().size() > 1 && vertx != null) {
          consul = ConsulDouble.start(vertx, GO_SERVICE);
          List<ConsulDouble.Instance> instances = new ArrayList<>();
          for (int i = 0; i < globals.ports().size(); i++) {
            instances.add(ConsulDouble.Instance.passing("global-" + i, "127.0.0.1", globals.ports().get(i)));
          }
          consul.setInstances(instances);
          config.append(goConsulDestination(globals, grpcIn));
        } else {
          config.append(goDestination(globals, grpcIn));
        }
        cmd.addAll(List.of(Path.of(jar).toAbsolutePath().toString(), "-f", yaml.toString()));
      } else {
        StringBuilder dests = new StringBuilder();
        for (int p : globals.ports()) {
          if (globals.grpc()) dests.append(dests.length() == 0 ? "" : ",").append("127.0.0.1:").append(p);
          else dests.append(dests.length() == 0 ? "" : ", ").append("\"http://127.0.0.1:").append(p).append('"');
        }
        config.append(globals.grpc() ? "grpc_forward_address: \"" + dests + "\"\n" : "forward_addresses: [" + dests + "]\n");
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(splitOpts(javaOpts));
        cmd.addAll(List.of("-jar", jar, "-f", yaml.toString()));
      }
      Files.writeString(yaml, config + extraYaml.replace("\\n", "\n") + "\n");
      ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
      if (consul != null) pb.environment().put("CONSUL_HTTP_ADDR", consul.address());
      Process proxy = pb.start();
      rig = new ProxyRig(globals, proxyPort, grpcPort, proxy, log, cmd);
      rig.consul = consul;
      rig.awaitHealthy();
      if (grpcIn) rig.awaitGrpcListening();
      return rig;
    } catch (Exception e) {
      if (rig != null) {
        rig.close();
      } else {
        globals.close();
        if (consul != null) consul.close();
      }
      throw e;
    }
  }

  /** The Consul service a Go proxy's several globals are registered under. */
  static final String GO_SERVICE = "veneur-global";

  /**
   * The destination lines of a Go veneur-proxy's YAML for several globals: it has no static list,
   * so it finds them in Consul ({@code CONSUL_HTTP_ADDR}), as a fleet runs it, refreshing every
   * second: {@code consul_forward_service_name} for /import (v2 and v14),
   * {@code consul_forward_grpc_service_name} for gRPC (v14).
   */
  static String goConsulDestination(Globals globals, boolean grpcIn) {
    if (grpcIn != globals.grpc()) {
      throw new IllegalArgumentException("the Go proxy forwards /import to HTTP globals and gRPC to gRPC globals only");
    }
    return (grpcIn ? "consul_forward_grpc_service_name: \"" + GO_SERVICE + "\"\nforward_timeout: \"10s\"\n"
        : "consul_forward_service_name: \"" + GO_SERVICE + "\"\n") + "consul_refresh_interval: \"1s\"\n";
  }

  /**
   * The destination lines of a Go veneur-proxy's YAML, to compare it under the same load and
   * globals. It takes one static destination per protocol, and forwards each protocol to its own:
   * /import to {@code forward_address} (v2 and v14), gRPC to {@code grpc_forward_address} (v14
   * only; {@code forward_timeout} as the interop tests give it). JSON in to gRPC globals, or gRPC
   * in to HTTP globals, it does not do.
   */
  static String goDestination(Globals globals, boolean grpcIn) {
    if (globals.ports().size() != 1) {
      throw new IllegalArgumentException("the Go proxy forwards to one static destination; several need Consul");
    }
    if (grpcIn != globals.grpc()) {
      throw new IllegalArgumentException("the Go proxy forwards /import to HTTP globals and gRPC to gRPC globals only");
    }
    int port = globals.ports().get(0);
    return grpcIn
        ? "grpc_forward_address: \"127.0.0.1:" + port + "\"\nforward_timeout: \"10s\"\n"
        : "forward_address: \"http://127.0.0.1:" + port + "\"\n";
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

  /**
   * The proxy's processes: the one started and what it started. A plain {@code java -jar} of this
   * proxy (no JVM flags) runs it in a second JVM with a bounded heap, the first staying as its
   * launcher (issue 19), so both count.
   */
  private List<Long> pids() {
    List<Long> pids = new ArrayList<>();
    pids.add(proxy.pid());
    proxy.toHandle().descendants().forEach(h -> pids.add(h.pid()));
    return pids;
  }

  /** The proxy's user + system CPU time, in clock ticks ({@link #TICKS_PER_SECOND}), its launched JVM's included. */
  long cpuTicks() throws IOException {
    long sum = 0;
    for (long pid : pids()) {
      try {
        sum += cpuTicks(pid);
      } catch (IOException e) {
        if (pid == proxy.pid()) throw e; // a launched JVM that just ended
      }
    }
    return sum;
  }

  /**
   * A line of the proxy's /proc/PID/status in KiB: VmRSS (now) or VmHWM (peak), summed over its
   * processes (the launcher's is flat, so the sum of peaks is the peak of the sum within a few MiB).
   */
  long memoryKib(String field) throws IOException {
    long sum = 0;
    for (long pid : pids()) {
      try {
        long k = memoryKib(pid, field);
        if (k > 0) sum += k;
      } catch (IOException e) {
        if (pid == proxy.pid()) throw e;
      }
    }
    return sum;
  }

  /**
   * Resets the proxy's peak RSS (VmHWM) to its current RSS, by writing 5 to /proc/PID/clear_refs
   * (Linux 4.0+), so a later VmHWM is the peak of what came after. False if that is not allowed.
   */
  boolean resetPeakRss() {
    try {
      for (long pid : pids()) Files.writeString(Path.of("/proc/" + pid + "/clear_refs"), "5");
      return true;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /**
   * The CPU ticks of the proxy's threads that are the JVM's own (its JIT compilers, its garbage
   * collector and VM thread), by thread id, over its processes: the part of the proxy's CPU that
   * is not the proxy's work, which is how a run shows whether its window was steady state (a JVM
   * still compiling is not). Threads are told by their names ({@code /proc/PID/task/TID/comm}):
   * HotSpot's are fixed. Empty for a process that is not a HotSpot JVM (a Go proxy).
   */
  java.util.Map<Long, JvmThread> jvmThreads() {
    java.util.Map<Long, JvmThread> threads = new java.util.HashMap<>();
    for (long pid : pids()) {
      try (var tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
        for (Path task : (Iterable<Path>) tasks::iterator) {
          try {
            JvmThread.Role role = JvmThread.role(Files.readString(task.resolve("comm")).trim());
            if (role == null) continue;
            long tid = Long.parseLong(task.getFileName().toString());
            threads.put(tid, new JvmThread(role, cpuTicks(pid + "/task/" + tid)));
          } catch (IOException | NumberFormatException e) {
            // A thread that ended while being read: not counted (nor are threads that end in a window).
          }
        }
      } catch (IOException | java.io.UncheckedIOException e) {
        // A launched JVM that just ended.
      }
    }
    return threads;
  }

  /** One JVM thread of the proxy's and its CPU ticks so far. */
  record JvmThread(Role role, long ticks) {
    enum Role { JIT, GC }

    /** HotSpot's thread names (as comm truncates them to 15 bytes); null for any other thread. */
    static Role role(String comm) {
      if (comm.startsWith("C1 CompilerThre") || comm.startsWith("C2 CompilerThre")) return Role.JIT;
      if (comm.startsWith("GC Thread#") || comm.startsWith("G1 ") || comm.equals("VM Thread")) return Role.GC;
      return null;
    }

    /**
     * Ticks each role spent between two readings: threads in the later one, from 0 for a thread
     * that started in between. Index {@code Role.ordinal()}.
     */
    static long[] spent(java.util.Map<Long, JvmThread> before, java.util.Map<Long, JvmThread> after) {
      long[] spent = new long[Role.values().length];
      after.forEach((tid, t) -> {
        JvmThread b = before.get(tid);
        spent[t.role().ordinal()] += t.ticks() - (b == null || b.role() != t.role() ? 0 : b.ticks());
      });
      return spent;
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

  /** Waits until the gRPC port takes a TCP connection (it may open after /healthcheck answers). */
  private void awaitGrpcListening() throws Exception {
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (System.nanoTime() < deadline) {
      if (!proxy.isAlive()) throw new IllegalStateException("proxy exited: " + Files.readString(log));
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", grpcPort), 200);
        return;
      } catch (IOException notYet) {
        Thread.sleep(100);
      }
    }
    throw new IllegalStateException("proxy did not listen on grpc_address 127.0.0.1:" + grpcPort + "; log at " + log);
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
      List<ProcessHandle> launched = proxy.toHandle().descendants().toList();
      proxy.destroy(); // a launcher passes SIGTERM on to the JVM it started and waits for it
      if (!proxy.waitFor(60, TimeUnit.SECONDS)) {
        proxy.destroyForcibly().waitFor();
      }
      for (ProcessHandle h : launched) h.destroyForcibly();
    } finally {
      globals.close();
      if (consul != null) consul.close();
    }
  }

  /** The proxy's exit code, or null while it runs. */
  Integer exitCode() {
    return proxy.isAlive() ? null : proxy.exitValue();
  }
}
