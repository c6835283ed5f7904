package dev.veneur.proxy.support;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/** The proxy as a separate JVM (its Main, on the test classpath), with its output captured. */
public final class ProxyProcess {
  public final Process process;
  public final List<String> output = new CopyOnWriteArrayList<>();
  private final Thread reader;

  private ProxyProcess(Process p) {
    this.process = p;
    Thread t = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) output.add(line);
      } catch (IOException e) {
        output.add("(output closed: " + e + ")");
      }
    }, "proxy-output");
    t.setDaemon(true);
    t.start();
    reader = t;
  }

  /**
   * Once the process has exited, waits (a bounded while) until its last lines are read: the exit
   * is seen before the reader thread drains the pipe, and the last lines are often what a test
   * looks for (FATAL, the stop summary, a start-up refusal). Does nothing while it runs.
   */
  public void awaitOutput() {
    if (process.isAlive()) return;
    try {
      reader.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  public static ProxyProcess start(Path yaml, Map<String, String> env, String... jvmArgs) throws IOException {
    return start(List.of(), "dev.veneur.proxy.Main", yaml, env, jvmArgs);
  }

  /**
   * As the jar starts it ({@code java -jar}: its entry point {@code Launch}), which with no JVM
   * option but system properties runs the proxy in a second JVM with a bounded heap.
   */
  public static ProxyProcess launch(Path yaml, String... jvmArgs) throws IOException {
    return start(List.of(), "dev.veneur.proxy.Launch", yaml, Map.of(), jvmArgs);
  }

  /**
   * As {@link #start(Path, Map, String...)} with the process's file-descriptor limit set to
   * {@code nofile} first, as an operator's {@code ulimit -n} would: through a shell that sets it
   * and then execs the JVM (same pid).
   */
  public static ProxyProcess startWithNofile(int nofile, Path yaml, Map<String, String> env, String... jvmArgs)
      throws IOException {
    return start(List.of("bash", "-c", "ulimit -n " + nofile + " && exec \"$@\"", "bash"), "dev.veneur.proxy.Main", yaml,
        env, jvmArgs);
  }

  private static ProxyProcess start(List<String> wrapper, String main, Path yaml, Map<String, String> env,
      String... jvmArgs) throws IOException {
    List<String> cmd = new java.util.ArrayList<>(wrapper);
    cmd.add(System.getProperty("java.home") + File.separator + "bin" + File.separator + "java");
    // Tests run many proxies at once: the admin listener's default is moved to a free port.
    String admin = System.getProperty("veneur.proxy.adminAddressDefault");
    if (admin != null) cmd.add("-Dveneur.proxy.adminAddressDefault=" + admin);
    cmd.addAll(List.of(jvmArgs));
    // For measuring a test's proxy from outside (e.g. -XX:NativeMemoryTracking=summary, then jcmd).
    String extra = System.getProperty("veneur.it.jvmArgs", "").trim();
    if (!extra.isEmpty()) cmd.addAll(List.of(extra.split("\\s+")));
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), main, "-f", yaml.toString()));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().putAll(env);
    return new ProxyProcess(pb.start());
  }

  /**
   * Waits until the proxy answers {@code /debug/state} on {@code port} and, when {@code admin} is
   * not -1, on the admin listener too: that one opens after the import listeners, so a health
   * poller started on it once {@code port} answers could meet a refused connection first.
   */
  public void awaitServing(int port, int admin) {
    Await.until("the proxy answers on its listeners", java.time.Duration.ofSeconds(60), java.time.Duration.ofMillis(100), () -> {
      if (!process.isAlive()) throw new AssertionError("the proxy exited at start:\n" + log());
      return DebugState.get(port) != null && (admin < 0 || DebugState.get(admin) != null);
    });
  }

  public String log() {
    awaitOutput();
    return String.join("\n", output);
  }

  public boolean logged(String fragment) {
    awaitOutput();
    return output.stream().anyMatch(l -> l.contains(fragment));
  }

  /**
   * Sends SIGTERM and waits for the exit code. Through the process handle, because
   * {@link Process#destroy} also closes our end of its output, losing its last words.
   */
  public int terminate() throws InterruptedException {
    return terminate(java.time.Duration.ofSeconds(60));
  }

  /** {@link #terminate()} with a shorter wait, for tests that must stay within their time. */
  public int terminate(java.time.Duration wait) throws InterruptedException {
    process.toHandle().destroy();
    if (!process.waitFor(wait.toMillis(), TimeUnit.MILLISECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("the proxy did not exit within " + wait.toSeconds() + "s of SIGTERM:\n" + log());
    }
    awaitOutput();
    return process.exitValue();
  }

  /**
   * Writes everything the process printed to {@code target/proxy-logs/<name>.log} (the working
   * directory of a Maven test run is the project), for a look after a failed run.
   */
  public Path saveLog(String name) {
    try {
      Path dir = Path.of("target", "proxy-logs");
      java.nio.file.Files.createDirectories(dir);
      Path f = dir.resolve(name.replaceAll("[^A-Za-z0-9._-]", "_") + ".log");
      java.nio.file.Files.write(f, output);
      return f.toAbsolutePath();
    } catch (IOException e) {
      return Path.of("(could not save the log: " + e + ")");
    }
  }

  /** The last {@code stopped: received N, forwarded N, dropped N} line, or null. */
  public StopSummary stopSummary() {
    java.util.regex.Pattern p = java.util.regex.Pattern.compile(
        "stopped: received (\\d+), forwarded (\\d+), dropped (\\d+)");
    awaitOutput();
    StopSummary found = null;
    for (String l : output) {
      java.util.regex.Matcher m = p.matcher(l);
      if (m.find()) {
        found = new StopSummary(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)),
            Long.parseLong(m.group(3)), l);
      }
    }
    return found;
  }

  /** The figures of the proxy's last log line on a graceful stop. */
  public record StopSummary(long received, long forwarded, long dropped, String line) {}

  /** Resident set size in KiB, from /proc (Linux). */
  public long rssKib() {
    try {
      for (String l : java.nio.file.Files.readAllLines(Path.of("/proc/" + process.pid() + "/status"))) {
        if (l.startsWith("VmRSS:")) return Long.parseLong(l.replaceAll("[^0-9]", ""));
      }
    } catch (IOException e) {
      return -1;
    }
    return -1;
  }

  public void kill() {
    process.destroyForcibly();
  }
}
