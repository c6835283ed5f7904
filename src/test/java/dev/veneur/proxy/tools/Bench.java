package dev.veneur.proxy.tools;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientConnection;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnectOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.common.GrpcStatus;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.ToDoubleFunction;
import java.util.stream.Collectors;

/**
 * End-to-end benchmark of the proxy as a fleet sees it. The proxy runs as its own process (a fresh
 * one for every run), stand-in globals that inflate and decode every metric run in a JVM of their
 * own by default (so their CPU is theirs, not the proxy's or the load generator's), and this JVM
 * generates the load: closed-loop senders posting real captured bodies to /import or calling
 * gRPC {@code SendMetrics} with real MetricLists, or a burst of N locals posting at the same
 * instant every interval. Globals take /import (JSON) or gRPC, and each cell can run this build or
 * another proxy (an older jar, a Go veneur-proxy binary) under the same load. It prints delivered
 * metrics/s, proxy CPU-seconds per million metrics (from /proc/PID/stat), request p50/p99,
 * refused requests, the proxy's peak RSS (VmHWM) and sent versus accepted versus delivered, as
 * one table with the median and range over {@code --runs}.
 * Linux only (reads /proc). {@code scripts/bench --help} documents the options.
 */
public final class Bench {
  private static final DateTimeFormatter WHEN = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss z", Locale.ROOT);

  private Bench() {}

  /** CPU-s per M metrics of inflate + level-1 deflate of the JSON bodies ({@link ZlibFloor}); NaN if not measured. */
  private static double floor = Double.NaN;

  /** Parsed command line. */
  static final class Options {
    List<Integer> senders = List.of(8);
    List<Integer> globals = List.of(3);
    boolean sendersGiven;
    boolean globalsGiven;
    int seconds = 20;
    int warmup = 15;
    int runs = 1;
    boolean matrix;
    int burst = -1; // -1: not given
    long intervalMs = 10_000;
    int rounds = 4;
    int burstWarmupSenders = 8;
    int perBody = 1000;
    long rate; // metrics a second over all senders; 0: closed loop
    boolean floor = true;
    int distinctBodies = 32;
    String jar = "target/veneur-proxy.jar";
    List<String> proxyJars; // null: jar alone (the globals and the load run from the test classes, never a jar)
    List<String> in = List.of("json"); // json: POST /import; grpc: SendMetrics to grpc_address
    List<String> out = List.of("http"); // http: /import globals; grpc: gRPC globals by grpc_forward_address
    String grpcSample = "src/test/resources/fixtures/veneur-v14.2.0/grpc-single-small.pb";
    String javaOpts = "-Xmx256m";
    String extraYaml = "";
    String sample = "src/test/resources/fixtures/captured/large.json";
    boolean globalsInBench;
    String globalsJavaOpts = "-Xmx512m -XX:+UseParallelGC";
    boolean light;
    String csv;
    boolean keepLogs;

    /** The proxies compared: jars, or Go veneur-proxy binaries (a path not ending in .jar). */
    List<String> proxies() {
      return proxyJars != null ? proxyJars : List.of(jar);
    }

    boolean anyIn(String protocol) {
      return in.contains(protocol);
    }
  }

  /**
   * One cell of the table: steady (closed-loop senders) or burst (N locals in step), with one
   * proxy, taking JSON or gRPC ({@code grpcIn}) and forwarding to HTTP or gRPC globals
   * ({@code grpcOut}).
   */
  record Cell(boolean burst, int globals, int senders, String proxy, boolean grpcIn, boolean grpcOut) {
    String mode() {
      return burst ? "burst" : "steady";
    }

    /** What the proxy takes and what it forwards: "JSON → gRPC". */
    String flow() {
      return (grpcIn ? "gRPC" : "JSON") + " → " + (grpcOut ? "gRPC" : "JSON");
    }

    boolean go() {
      return !proxy.endsWith(".jar");
    }
  }

  /** The load's bodies: deflated JSON for /import, serialized MetricLists for SendMetrics (empty if unused). */
  record Bodies(List<Buffer> json, long jsonRawBytes, long jsonDeflatedBytes, List<Buffer> grpc, long grpcBytes,
      List<Probes.JsonBody> jsonOpen, List<byte[]> grpcRaw) {
    /** Body {@code i} of cell {@code c} carrying probe {@code id} (see {@link Probes}). */
    Buffer withProbe(Cell c, int i, long id) {
      return c.grpcIn() ? Probes.grpcPost(grpcRaw.get(i), id) : Probes.jsonPost(jsonOpen.get(i), id);
    }

    int count(Cell c) {
      return c.grpcIn() ? grpc.size() : json.size();
    }
  }

  /** What one run measured. NaN where a figure does not apply or could not be measured. */
  record Result(Cell cell, int run, String error, double deliveredPerSec, double acceptedPerSec, double cpuPerM,
      double cpuPerMWhole, double p50, double p99,
      long requests, long refused, long otherErrors, double peakRssMiB, boolean peakSinceReset, long sentMetrics,
      long acceptedMetrics, long deliveredMetrics, double proxyCores, double globalsCores, double benchCores,
      double deliverMs, String notes, double deliveryP50, double deliveryP99, long probesLost, double jitShare,
      double gcShare) {
    boolean ok() {
      return error == null;
    }

    long lost() {
      return acceptedMetrics - deliveredMetrics;
    }
  }

  public static void main(String[] args) throws Exception {
    Options o = parse(args);
    List<Cell> cells = cells(o);
    Path dir = Files.createTempDirectory("veneur-bench-");
    Vertx vertx = Vertx.vertx();
    List<Result> results = new ArrayList<>();
    long started = System.nanoTime();
    boolean failed = false;
    try {
      Bodies bodies = bodies(o, cells);
      if (o.floor && !bodies.json().isEmpty()) {
        System.out.println("measuring the zlib floor of the JSON bodies (8 s)...");
        floor = ZlibFloor.cpuPerM(bodies.json(), o.perBody, 3, 5);
      }
      String header = header(o, cells, bodies, dir);
      System.out.print(header);
      System.out.flush();
      for (int run = 1; run <= o.runs; run++) {
        // Runs are interleaved (every cell once, then again) so that a noisy stretch of time on a
        // shared machine spreads over the cells instead of landing on one of them.
        for (Cell cell : cells) {
          Result r = runOne(vertx, o, cell, run, bodies, dir);
          results.add(r);
          failed |= !r.ok();
          System.out.println(summaryLine(o, r));
          System.out.flush();
          if (o.csv != null) writeCsv(Path.of(o.csv), results);
        }
      }
      System.out.println();
      System.out.print(header);
      System.out.println();
      System.out.print(table(cells, results, o));
      System.out.print(ratios(cells, results, o));
      System.out.printf(Locale.ROOT, "%nload average at the end: %s; bench took %s%n", loadAvg(),
          duration((System.nanoTime() - started) / 1e9));
    } finally {
      vertx.close().await();
      if (!o.keepLogs && !failed) deleteTree(dir);
      else System.out.println("proxy and globals logs kept in " + dir);
    }
  }

  /** The bodies the cells post: JSON ones if any cell takes /import, MetricLists if any calls gRPC. */
  static Bodies bodies(Options o, List<Cell> cells) throws IOException {
    List<Buffer> json = new ArrayList<>();
    List<Probes.JsonBody> jsonOpen = new ArrayList<>();
    List<byte[]> grpcRaw = new ArrayList<>();
    long rawBytes = 0;
    long deflatedBytes = 0;
    if (cells.stream().anyMatch(c -> !c.grpcIn())) {
      for (byte[] r : SyntheticMetrics.bodies(o.sample, o.perBody, o.distinctBodies)) {
        byte[] d = SyntheticMetrics.deflate(r);
        rawBytes += r.length;
        deflatedBytes += d.length;
        json.add(Buffer.buffer(d));
        jsonOpen.add(Probes.prepare(r));
      }
    }
    List<Buffer> grpc = new ArrayList<>();
    long grpcBytes = 0;
    if (cells.stream().anyMatch(Cell::grpcIn)) {
      for (byte[] b : SyntheticMetrics.grpcBodies(o.grpcSample, o.perBody, o.distinctBodies)) {
        grpcBytes += b.length;
        grpc.add(Buffer.buffer(b));
        grpcRaw.add(b);
      }
    }
    return new Bodies(json, json.isEmpty() ? 0 : rawBytes / json.size(), json.isEmpty() ? 0 : deflatedBytes / json.size(),
        grpc, grpc.isEmpty() ? 0 : grpcBytes / grpc.size(), jsonOpen, grpcRaw);
  }

  // ---------------------------------------------------------------------------------------------
  // Command line

  static Options parse(String[] args) {
    Options o = new Options();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      try {
        switch (a) {
          case "--senders": o.senders = ints(args[++i]); o.sendersGiven = true; break;
          case "--globals": o.globals = ints(args[++i]); o.globalsGiven = true; break;
          case "--seconds": o.seconds = Integer.parseInt(args[++i]); break;
          case "--warmup": o.warmup = Integer.parseInt(args[++i]); break;
          case "--runs": o.runs = Integer.parseInt(args[++i]); break;
          case "--matrix": o.matrix = true; break;
          case "--burst": o.burst = Integer.parseInt(args[++i]); break;
          case "--interval": o.intervalMs = millis(args[++i]); break;
          case "--rounds": o.rounds = Integer.parseInt(args[++i]); break;
          case "--burst-warmup-senders": o.burstWarmupSenders = Integer.parseInt(args[++i]); break;
          case "--metrics-per-body": o.perBody = Integer.parseInt(args[++i]); break;
          case "--rate": o.rate = Long.parseLong(args[++i]); break;
          case "--no-floor": o.floor = false; break;
          case "--distinct-bodies": o.distinctBodies = Integer.parseInt(args[++i]); break;
          case "--jar": o.jar = args[++i]; break;
          case "--proxy-jar": o.proxyJars = strings(args[++i]); break;
          case "--in": o.in = choices(args[++i], "--in", "json", "grpc"); break;
          case "--out": o.out = choices(args[++i], "--out", "http", "grpc"); break;
          case "--grpc-sample": o.grpcSample = args[++i]; break;
          case "--java-opts": o.javaOpts = args[++i]; break;
          case "--yaml": o.extraYaml = args[++i]; break;
          case "--sample": o.sample = args[++i]; break;
          case "--globals-in-bench": o.globalsInBench = true; break;
          case "--globals-java-opts": o.globalsJavaOpts = args[++i]; break;
          case "--light": o.light = true; break;
          case "--csv": o.csv = args[++i]; break;
          case "--keep-logs": o.keepLogs = true; break;
          case "-h":
          case "--help":
            usage(0, null);
            break;
          default:
            usage(2, "unknown option " + a);
        }
      } catch (ArrayIndexOutOfBoundsException | NumberFormatException e) {
        usage(2, "bad or missing value for " + a);
      }
    }
    if (o.matrix) {
      if (!o.sendersGiven) o.senders = List.of(2, 8, 32);
      if (!o.globalsGiven) o.globals = List.of(1, 3);
      if (o.burst < 0) o.burst = 1000;
    }
    if (o.burst < 0) o.burst = 0;
    if (o.runs < 1 || o.seconds < 1 || o.warmup < 0 || o.rounds < 1 || o.intervalMs < 1) {
      usage(2, "--runs, --seconds, --rounds and --interval must be positive, --warmup not negative");
    }
    if (cells(o).isEmpty()) {
      usage(2, o.burst > 0 && !o.anyIn("json") ? "--burst posts /import bodies: it needs --in json"
          : "nothing to run: a Go proxy forwards JSON to HTTP globals and gRPC to gRPC globals only");
    }
    return o;
  }

  private static List<String> strings(String s) {
    List<String> out = new ArrayList<>();
    for (String p : s.split(",")) if (!p.isBlank()) out.add(p.trim());
    if (out.isEmpty()) throw new NumberFormatException(s);
    return List.copyOf(out);
  }

  /** A comma-separated list of {@code allowed} values, each once. */
  private static List<String> choices(String s, String option, String... allowed) {
    List<String> out = new ArrayList<>();
    for (String v : strings(s)) {
      if (!Arrays.asList(allowed).contains(v)) usage(2, option + " takes " + String.join(", ", allowed) + ", not " + v);
      if (!out.contains(v)) out.add(v);
    }
    return List.copyOf(out);
  }

  private static List<Integer> ints(String s) {
    List<Integer> out = new ArrayList<>();
    for (String p : s.split(",")) if (!p.isBlank()) out.add(Integer.parseInt(p.trim()));
    if (out.isEmpty()) throw new NumberFormatException(s);
    return List.copyOf(out);
  }

  /** "10s", "500ms", "1m" or a plain number of seconds. */
  static long millis(String s) {
    s = s.trim();
    if (s.endsWith("ms")) return Long.parseLong(s.substring(0, s.length() - 2));
    if (s.endsWith("s")) return Math.round(Double.parseDouble(s.substring(0, s.length() - 1)) * 1000);
    if (s.endsWith("m")) return Math.round(Double.parseDouble(s.substring(0, s.length() - 1)) * 60_000);
    return Math.round(Double.parseDouble(s) * 1000);
  }

  private static void usage(int code, String why) {
    if (why != null) System.err.println("Bench: " + why);
    System.err.println("usage: scripts/bench [--matrix] [--runs N] [--senders 2,8,32] [--globals 1,3] [--warmup 15]"
        + " [--seconds 20] [--burst N --interval 10s --rounds K] [--java-opts '-Xmx256m'|''] [--globals-in-bench]"
        + " [--globals-java-opts ...] [--light] [--yaml 'k: v'] [--sample file|random] [--metrics-per-body 1000]"
        + " [--distinct-bodies 32] [--burst-warmup-senders 8] [--jar path] [--proxy-jar path[,path...]]"
        + " [--in json|grpc|json,grpc] [--out http|grpc|http,grpc] [--grpc-sample file.pb] [--csv file] [--keep-logs]");
    System.err.println("scripts/bench --help explains each option.");
    System.exit(code);
  }

  /**
   * Every combination of globals, senders, proxy, --in and --out, but none a Go proxy cannot run
   * (it forwards /import to HTTP globals and gRPC to gRPC globals: see {@link #skipped}); bursts
   * post /import, so they are JSON in only.
   */
  static List<Cell> cells(Options o) {
    List<Cell> cells = new ArrayList<>();
    if (o.matrix || o.burst == 0) {
      for (int g : o.globals) for (int s : o.senders) flows(o, cells, false, g, s);
    }
    if (o.burst > 0) {
      for (int g : o.globals) flows(o, cells, true, g, o.burst);
    }
    return cells;
  }

  private static void flows(Options o, List<Cell> cells, boolean burst, int globals, int senders) {
    for (String proxy : o.proxies()) {
      for (String in : o.in) {
        for (String out : o.out) {
          Cell c = new Cell(burst, globals, senders, proxy, "grpc".equals(in), "grpc".equals(out));
          if (burst && c.grpcIn()) continue;
          if (c.go() && c.grpcIn() != c.grpcOut()) continue;
          cells.add(c);
        }
      }
    }
  }

  /** The flows asked for that a Go proxy does not run, for the header: "Go v14.2.0/veneur-proxy: JSON → gRPC". */
  static List<String> skipped(Options o) {
    List<String> out = new ArrayList<>();
    for (String proxy : o.proxies()) {
      if (proxy.endsWith(".jar")) continue;
      for (String in : o.in) {
        for (String to : o.out) {
          Cell c = new Cell(false, 1, 1, proxy, "grpc".equals(in), "grpc".equals(to));
          if (c.grpcIn() != c.grpcOut()) out.add(proxyLabel(o, proxy) + ": " + c.flow());
        }
      }
    }
    return out;
  }

  /** How a proxy is named in the table: "this build", a jar's file name, "Go v14.2.0/veneur-proxy". */
  static String proxyLabel(Options o, String proxy) {
    if (proxy.equals(o.jar)) return "this build";
    Path p = Path.of(proxy);
    if (proxy.endsWith(".jar")) return p.getFileName().toString();
    return "Go " + (p.getParent() == null ? "" : p.getParent().getFileName() + "/") + p.getFileName();
  }

  // ---------------------------------------------------------------------------------------------
  // One run

  private static Result runOne(Vertx vertx, Options o, Cell cell, int run, Bodies bodies, Path dir) {
    String name = String.format(Locale.ROOT, "%s-p%d-%s-%s-g%d-s%d-r%d", cell.mode(), o.proxies().indexOf(cell.proxy()) + 1,
        cell.grpcIn() ? "grpc" : "json", cell.grpcOut() ? "grpc" : "http", cell.globals(), cell.senders(), run);
    ProxyRig rig = null;
    try {
      Globals globals = o.globalsInBench
          ? Globals.inProcess(vertx, cell.globals(), o.light, cell.grpcOut(), Runtime.getRuntime().availableProcessors())
          : Globals.ownProcess(cell.globals(), o.light, cell.grpcOut(), o.globalsJavaOpts, dir, name);
      rig = ProxyRig.launch(vertx, globals, cell.grpcIn(), cell.proxy(), o.javaOpts, o.extraYaml, dir, name);
      System.out.printf(Locale.ROOT, "-- %s: %s, %s, run %d of %d, proxy pid %d, globals %s, load average %s%n",
          name, proxyLabel(o, cell.proxy()), cell.flow(), run, o.runs, rig.proxy.pid(),
          globals.pid() < 0 ? "in the bench JVM" : "pid " + globals.pid(), loadAvg());
      Result r = cell.burst() ? burst(vertx, o, cell, run, bodies.json(), rig)
          : steady(vertx, o, cell, run, bodies, rig);
      String state = proxyState(rig);
      if (!state.isEmpty()) System.out.println("   proxy /debug/state: " + state);
      return r;
    } catch (Exception e) {
      String why = e.getClass().getSimpleName() + ": " + e.getMessage();
      System.out.println("   run failed: " + why);
      return new Result(cell, run, why, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, 0, 0, 0,
          Double.NaN, false,
          0, 0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, "", Double.NaN, Double.NaN, 0, Double.NaN, Double.NaN);
    } finally {
      if (rig != null) {
        try {
          rig.close();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }
  }

  /** Closed-loop senders: warm-up, then a measured window, then the proxy drains. */
  private static Result steady(Vertx vertx, Options o, Cell cell, int run, Bodies bodies, ProxyRig rig)
      throws Exception {
    Poster poster = cell.grpcIn() ? new GrpcPoster(vertx, rig.grpcPort, cell.senders())
        : new HttpPoster(vertx, rig.port, cell.senders());
    try {
      // Every post carries a delivery probe (Probes): one metric more than --metrics-per-body.
      Load load = new Load(vertx, poster, bodies.count(cell), o.perBody + 1, (i, id) -> bodies.withProbe(cell, i, id),
          o.rate, cell.senders());
      // The proxy's CPU over the whole run too (warm-up, window, drain) against every metric
      // delivered: a proxy that accepts faster than it delivers queues (or drops) the difference,
      // and the window's figure then charges the ingest of more metrics than it counts.
      long cpuStart = rig.cpuTicks();
      long warmEnd = System.nanoTime() + o.warmup * 1_000_000_000L;
      // Senders get a deadline past the end of the window from the start (a deadline moved at
      // the end of warm-up would race with senders finishing a request just then, and stop them
      // for good); stop() ends them once the window is closed.
      load.run(cell.senders(), warmEnd + (o.seconds + 10) * 1_000_000_000L);
      waitFor(warmEnd, rig);
      // The window opens and closes with the globals' count and the CPU clocks read just before
      // and just after the senders' counters, so all figures cover the same stretch of time.
      long delivered0 = rig.delivered();
      Cpu c0 = Cpu.read(rig);
      var jvm0 = rig.jvmThreads();
      long[] w0 = load.window(true);
      long t0 = System.nanoTime();
      waitFor(t0 + o.seconds * 1_000_000_000L, rig);
      long[] w1 = load.window(false);
      long[] lat = load.latencies();
      Cpu c1 = Cpu.read(rig);
      double[] jvmShares = jvmShares(jvm0, rig.jvmThreads(), c1.proxy - c0.proxy);
      long delivered1 = rig.delivered();
      long requests = w1[0] - w0[0];
      long refused = w1[1] - w0[1];
      long errors = w1[2] - w0[2];
      double elapsed = (System.nanoTime() - t0) / 1e9;
      load.stop().await();
      long delivered = settle(rig, load.acceptedMetrics.get());
      java.util.Map<Long, Long> arrived = new java.util.HashMap<>();
      rig.globals.drainProbes(arrived);
      Probes.Latencies delivery = o.light ? Probes.Latencies.none() : Probes.Latencies.of(load.probesAccepted(), arrived);
      double cpuWhole = (rig.cpuTicks() - cpuStart) / (double) ProxyRig.TICKS_PER_SECOND;
      long posts = rig.globals.posts();
      double hwm = rig.memoryKib("VmHWM") / 1024.0;
      checkAlive(rig);

      long measured = delivered1 - delivered0;
      double cpuProxy = (c1.proxy - c0.proxy) / (double) ProxyRig.TICKS_PER_SECOND;
      Result r = new Result(cell, run, null, measured / elapsed, (w1[3] - w0[3]) / elapsed, cpuProxy / (measured / 1e6),
          cpuWhole / (delivered / 1e6),
          pct(lat, 0.50), pct(lat, 0.99), requests, refused, errors, hwm, false, load.sentMetrics.get(),
          load.acceptedMetrics.get(), delivered, cpuProxy / elapsed, c1.globalsCores(c0, elapsed),
          c1.benchCores(c0, elapsed), Double.NaN, logNotes(rig), pct(delivery.sortedNanos(), 0.50),
          pct(delivery.sortedNanos(), 0.99), delivery.lost(), jvmShares[ProxyRig.JvmThread.Role.JIT.ordinal()],
          jvmShares[ProxyRig.JvmThread.Role.GC.ordinal()]);
      System.out.printf(Locale.ROOT, "   delivered %.0f metrics/s (accepted %.0f/s); proxy %.2f CPU-s per M (whole run %.2f) (%.2f cores busy; globals %s,"
              + " bench %.2f)%s; %s p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d requests; refused %d (%s),"
              + " other %d; delivery (202 to the global) p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d probes, %d"
              + " probes lost; peak RSS %.0f MiB; whole run: sent %d, accepted %d, delivered %d metrics in %d %s (%.0f"
              + " each)%s%n",
          r.deliveredPerSec(), r.acceptedPerSec(), r.cpuPerM(), r.cpuPerMWhole(), r.proxyCores(), cores(r.globalsCores()), r.benchCores(),
          Double.isNaN(r.jitShare()) ? "" : String.format(Locale.ROOT, "; of the proxy's CPU the JIT compilers %.1f%%, GC and VM threads %.1f%%",
              100 * r.jitShare(), 100 * r.gcShare()),
          cell.grpcIn() ? "SendMetrics" : "/import", r.p50(), r.p99(),
          lat.length == 0 ? 0 : lat[lat.length - 1] / 1e6, requests, refused,
          cell.grpcIn() ? "UNAVAILABLE or RESOURCE_EXHAUSTED" : "503", errors, r.deliveryP50(), r.deliveryP99(),
          delivery.sortedNanos().length == 0 ? Double.NaN : delivery.sortedNanos()[delivery.sortedNanos().length - 1] / 1e6,
          delivery.sortedNanos().length, delivery.lost(), hwm, r.sentMetrics(),
          r.acceptedMetrics(), r.deliveredMetrics(), posts, cell.grpcOut() ? "calls" : "posts",
          posts == 0 ? 0.0 : r.deliveredMetrics() / (double) posts, r.notes().isEmpty() ? "" : "; " + r.notes());
      return r;
    } finally {
      poster.close().await();
    }
  }

  /**
   * The share of the proxy's {@code proxyTicks} in a window that the JVM's threads of each role
   * took, indexed by {@code Role.ordinal()}; NaN when the proxy is not a HotSpot JVM (no such
   * threads) or spent nothing.
   */
  private static double[] jvmShares(java.util.Map<Long, ProxyRig.JvmThread> before,
      java.util.Map<Long, ProxyRig.JvmThread> after, long proxyTicks) {
    long[] spent = ProxyRig.JvmThread.spent(before, after);
    double[] shares = new double[spent.length];
    for (int i = 0; i < spent.length; i++) {
      shares[i] = after.isEmpty() || proxyTicks <= 0 ? Double.NaN : spent[i] / (double) proxyTicks;
    }
    return shares;
  }

  /** CPU ticks of the proxy, the globals' process (-1 when in this JVM) and this JVM, read together. */
  private record Cpu(long proxy, long globals, long self) {
    static Cpu read(ProxyRig rig) throws IOException {
      long g = rig.globals.pid() < 0 ? -1 : ProxyRig.cpuTicks(rig.globals.pid());
      return new Cpu(rig.cpuTicks(), g, ProxyRig.cpuTicks("self"));
    }

    double globalsCores(Cpu before, double seconds) {
      return globals < 0 ? Double.NaN : (globals - before.globals) / (double) ProxyRig.TICKS_PER_SECOND / seconds;
    }

    double benchCores(Cpu before, double seconds) {
      return (self - before.self) / (double) ProxyRig.TICKS_PER_SECOND / seconds;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Burst: N locals, one connection each, posting one body at the same instant every interval

  /** What one round of a burst saw. */
  private static final class Round {
    final int index;
    final AtomicInteger accepted = new AtomicInteger();
    final AtomicInteger refused = new AtomicInteger();
    final AtomicInteger other = new AtomicInteger();
    final AtomicInteger outstanding = new AtomicInteger();
    final AtomicInteger newConnections = new AtomicInteger();
    final List<Long> latencies = new ArrayList<>();
    long startNanos;
    long startMicros;
    double dispatchMs;
    double deliverMs = Double.NaN; // NaN: not delivered before the next round (or the end)
    long undelivered;
    double peakRssMiB;
    double cpuSeconds;

    Round(int index) {
      this.index = index;
    }

    synchronized void latency(long nanos) {
      latencies.add(nanos);
    }

    synchronized long[] sortedLatencies() {
      long[] out = latencies.stream().mapToLong(Long::longValue).toArray();
      Arrays.sort(out);
      return out;
    }
  }

  /** A local: normally one keep-alive connection; a second one only when the first is still busy or closed. */
  private static final class Local {
    private final ArrayDeque<Conn> idle = new ArrayDeque<>();

    synchronized Conn take() {
      Conn c;
      while ((c = idle.poll()) != null) {
        if (!c.closed) return c;
      }
      return null;
    }

    synchronized void give(Conn c) {
      if (!c.closed) idle.push(c);
    }
  }

  private static final class Conn {
    final HttpClientConnection connection;
    volatile boolean closed;

    Conn(HttpClientConnection connection) {
      this.connection = connection;
      connection.closeHandler(v -> closed = true);
    }
  }

  private static Future<Conn> connect(HttpClientAgent agent, int port) {
    return agent.connect(new HttpConnectOptions().setHost("127.0.0.1").setPort(port).setConnectTimeout(30_000))
        .map(Conn::new);
  }

  private static Result burst(Vertx vertx, Options o, Cell cell, int run, List<Buffer> bodies, ProxyRig rig)
      throws Exception {
    int n = cell.senders();
    HttpClientAgent agent = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true));
    try {
      if (o.warmup > 0) {
        // Warm the proxy's JIT with closed-loop senders first, as a proxy that has been running
        // would be, then let it drain completely before the first burst.
        Poster warm = new HttpPoster(vertx, rig.port, o.burstWarmupSenders);
        Load load = new Load(vertx, warm, bodies.size(), o.perBody, (i, id) -> bodies.get(i), 0, 0);
        load.run(o.burstWarmupSenders, System.nanoTime() + o.warmup * 1_000_000_000L);
        waitFor(System.nanoTime() + o.warmup * 1_000_000_000L, rig);
        load.stop().await();
        settle(rig, load.acceptedMetrics.get());
        warm.close().await();
      }
      // Every local opens its connection before the first round, as locals that have flushed
      // before hold a keep-alive connection. At most 64 connects at a time.
      List<Local> locals = new ArrayList<>(n);
      for (int i = 0; i < n; i += 64) {
        List<Future<Conn>> batch = new ArrayList<>();
        for (int j = i; j < Math.min(n, i + 64); j++) batch.add(connect(agent, rig.port));
        Future.all(batch).await();
        for (Future<Conn> f : batch) {
          Local l = new Local();
          l.give(f.result());
          locals.add(l);
        }
      }
      long baseline = rig.delivered();
      boolean reset = rig.resetPeakRss();
      Cpu c0 = Cpu.read(rig);
      long intervalNanos = o.intervalMs * 1_000_000L;
      long first = System.nanoTime() + 1_000_000_000L;
      List<Round> rounds = new ArrayList<>();
      List<Long> all = new ArrayList<>();
      for (int r = 0; r < o.rounds; r++) {
        Round round = new Round(r + 1);
        rounds.add(round);
        round.startNanos = first + r * intervalNanos;
        waitFor(round.startNanos, rig);
        long cpuStart = rig.cpuTicks();
        Instant now = Instant.now();
        round.startMicros = now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
        round.outstanding.set(n);
        for (int i = 0; i < n; i++) {
          post(agent, rig.port, locals.get(i), bodies.get(i % bodies.size()), o.perBody, round);
        }
        round.dispatchMs = (System.nanoTime() - round.startNanos) / 1e6;
        boolean last = r == o.rounds - 1;
        long until = last ? round.startNanos + Math.max(3 * intervalNanos, 60_000_000_000L)
            : round.startNanos + intervalNanos;
        watch(rig, rounds, round, baseline, o.perBody, until, last);
        round.cpuSeconds = (rig.cpuTicks() - cpuStart) / (double) ProxyRig.TICKS_PER_SECOND;
      }
      long burstEnd = System.nanoTime();
      long accepted = 0;
      for (Round round : rounds) accepted += (long) round.accepted.get() * o.perBody;
      long delivered = settle(rig, baseline + accepted) - baseline;
      Cpu c1 = Cpu.read(rig);
      double hwm = rig.memoryKib("VmHWM") / 1024.0;
      checkAlive(rig);

      long requests = 0;
      long refused = 0;
      long other = 0;
      double worstDeliver = 0;
      for (Round round : rounds) {
        long[] lat = round.sortedLatencies();
        for (long l : lat) all.add(l);
        requests += round.accepted.get() + round.refused.get() + round.other.get();
        refused += round.refused.get();
        other += round.other.get();
        worstDeliver = Double.isNaN(round.deliverMs) ? Double.POSITIVE_INFINITY : Math.max(worstDeliver, round.deliverMs);
        System.out.printf(Locale.ROOT, "   round %d: %d posts dispatched in %.0f ms; accepted %d, refused %d (503),"
                + " other %d%s; /import p50 %.0f ms, p99 %.0f ms, max %.0f ms; %s; proxy peak RSS in round %.0f MiB,"
                + " CPU %.2f s%n",
            round.index, n, round.dispatchMs, round.accepted.get(), round.refused.get(), round.other.get(),
            round.newConnections.get() == 0 ? "" : " (" + round.newConnections.get() + " new connections)",
            pct(lat, 0.5), pct(lat, 0.99), lat.length == 0 ? 0 : lat[lat.length - 1] / 1e6,
            Double.isNaN(round.deliverMs)
                ? String.format(Locale.ROOT, "NOT delivered by the %s: %d metrics still missing",
                    round.index == o.rounds ? "end" : "next round", round.undelivered)
                : String.format(Locale.ROOT, "burst delivered %.2f s after it was sent", round.deliverMs / 1000),
            round.peakRssMiB, round.cpuSeconds);
      }
      long[] lat = all.stream().mapToLong(Long::longValue).sorted().toArray();
      double windowSec = o.rounds * o.intervalMs / 1000.0;
      double cpuProxy = (c1.proxy - c0.proxy) / (double) ProxyRig.TICKS_PER_SECOND;
      double elapsed = (burstEnd - first) / 1e9;
      long sent = (long) n * o.rounds * o.perBody;
      Result res = new Result(cell, run, null, delivered / windowSec, accepted / windowSec, cpuProxy / (delivered / 1e6),
          cpuProxy / (delivered / 1e6),
          pct(lat, 0.5), pct(lat, 0.99), requests, refused, other, hwm, reset, sent, accepted, delivered,
          cpuProxy / elapsed, c1.globalsCores(c0, elapsed), c1.benchCores(c0, elapsed), worstDeliver, logNotes(rig),
          Double.NaN, Double.NaN, 0, Double.NaN, Double.NaN);
      System.out.printf(Locale.ROOT, "   burst overall: %d locals x %d rounds every %s: %d requests, accepted %d,"
              + " refused %d (503), other %d; metrics sent %d, accepted %d, delivered %d, lost %d;"
              + " slowest round delivered in %s; proxy peak RSS %.0f MiB (%s); %.2f CPU-s per M%s%n",
          n, o.rounds, duration(o.intervalMs / 1000.0), requests, accepted / o.perBody, refused, other, sent, accepted,
          delivered, accepted - delivered, Double.isInfinite(worstDeliver) ? "(a round was late)"
              : String.format(Locale.ROOT, "%.2f s", worstDeliver / 1000),
          hwm, reset ? "VmHWM since the first round" : "VmHWM of the whole process life, warm-up included",
          res.cpuPerM(), res.notes().isEmpty() ? "" : "; " + res.notes());
      return res;
    } finally {
      agent.close().await();
    }
  }

  private static void post(HttpClientAgent agent, int port, Local local, Buffer body, int perBody, Round round) {
    long start = System.nanoTime();
    Conn idle = local.take();
    Future<Conn> conn = idle != null ? Future.succeededFuture(idle) : connect(agent, port).onSuccess(c ->
        round.newConnections.incrementAndGet());
    Conn[] used = new Conn[1];
    conn.compose(c -> {
      used[0] = c;
      return c.connection.request(new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(port)
          .setURI("/import").putHeader("Content-Encoding", "deflate").putHeader("Content-Type", "application/json")
          .setIdleTimeout(120_000));
    }).compose(req -> req.send(body))
        .compose(resp -> resp.body().map(b -> resp.statusCode()))
        .onComplete(ar -> {
          round.latency(System.nanoTime() - start);
          if (ar.succeeded() && ar.result() == 202) round.accepted.incrementAndGet();
          else if (ar.succeeded() && ar.result() == 503) round.refused.incrementAndGet();
          else round.other.incrementAndGet();
          if (used[0] != null) {
            if (ar.succeeded()) local.give(used[0]);
            else used[0].connection.close();
          }
          round.outstanding.decrementAndGet();
        });
  }

  /**
   * Watches one round until {@code until} (for the last round: until it is delivered, or nothing
   * moves for 3 s): samples the proxy's RSS every 20 ms and the globals' count every 100 ms; when
   * every answer is in and the globals hold everything accepted so far, the round's delivery time
   * is the globals' last post minus the round's start.
   */
  private static void watch(ProxyRig rig, List<Round> rounds, Round round, long baseline, int perBody, long until,
      boolean last) throws Exception {
    long lastDelivered = -1;
    long stillSince = System.nanoTime();
    for (int tick = 0; System.nanoTime() < until; tick++) {
      Thread.sleep(20);
      checkAlive(rig);
      round.peakRssMiB = Math.max(round.peakRssMiB, rig.memoryKib("VmRSS") / 1024.0);
      if (tick % 5 != 0) continue;
      long delivered = rig.delivered() - baseline;
      long accepted = 0;
      for (Round r : rounds) accepted += (long) r.accepted.get() * perBody;
      round.undelivered = Math.max(0, accepted - delivered);
      if (Double.isNaN(round.deliverMs) && round.outstanding.get() == 0 && delivered >= accepted) {
        round.deliverMs = (rig.globals.lastPostMicros() - round.startMicros) / 1000.0;
        if (round.deliverMs < 0) round.deliverMs = 0; // nothing accepted, nothing to deliver
      }
      if (delivered != lastDelivered) {
        lastDelivered = delivered;
        stillSince = System.nanoTime();
      }
      if (last && (!Double.isNaN(round.deliverMs)
          || (round.outstanding.get() == 0 && System.nanoTime() - stillSince > 3_000_000_000L))) {
        return;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Closed-loop load

  /** How a request was answered: accepted (202, gRPC OK), refused (503; UNAVAILABLE, RESOURCE_EXHAUSTED), other. */
  enum Answer { ACCEPTED, REFUSED, OTHER }

  /** One request of a closed-loop sender, by /import or by gRPC; never fails (a failure is {@link Answer#OTHER}). */
  interface Poster {
    Future<Answer> post(int sender, Buffer body);

    Future<Void> close();
  }

  /** POST /import with a deflated body, on a keep-alive pool of one connection per sender. */
  private static final class HttpPoster implements Poster {
    final HttpClient client;
    final int port;

    HttpPoster(Vertx vertx, int port, int senders) {
      this.client = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true),
          new PoolOptions().setHttp1MaxSize(senders));
      this.port = port;
    }

    @Override public Future<Answer> post(int sender, Buffer body) {
      return client.request(new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(port)
              .setURI("/import").putHeader("Content-Encoding", "deflate")
              .putHeader("Content-Type", "application/json").setIdleTimeout(120_000))
          .compose(req -> req.send(body))
          .compose(resp -> resp.body().map(b -> resp.statusCode()))
          .transform(ar -> Future.succeededFuture(!ar.succeeded() ? Answer.OTHER
              : ar.result() == 202 ? Answer.ACCEPTED : ar.result() == 503 ? Answer.REFUSED : Answer.OTHER));
    }

    @Override public Future<Void> close() {
      return client.close();
    }
  }

  /**
   * A unary {@code forwardrpc.Forward/SendMetrics} with a serialized MetricList, as a v14 local's
   * {@code grpc-single} flush calls it. Each sender has a client of its own, so its own HTTP/2
   * connection, as each local has.
   */
  private static final class GrpcPoster implements Poster {
    final List<GrpcClient> clients = new ArrayList<>();
    final SocketAddress address;

    GrpcPoster(Vertx vertx, int port, int senders) {
      for (int i = 0; i < senders; i++) {
        clients.add(GrpcClient.client(vertx, new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
            .setHttp2ClearTextUpgrade(false)));
      }
      this.address = SocketAddress.inetSocketAddress(port, "127.0.0.1");
    }

    @Override public Future<Answer> post(int sender, Buffer body) {
      return clients.get(sender).request(address).compose(req -> {
        req.fullMethodName("forwardrpc.Forward/SendMetrics");
        req.idleTimeout(120_000);
        return req.send(body);
      }).compose(resp -> {
        resp.handler(b -> { }); // google.protobuf.Empty
        // An error status ends the response with a failure: the status is what tells.
        return resp.end().transform(end -> Future.succeededFuture(answer(resp.status())));
      }).transform(ar -> Future.succeededFuture(ar.succeeded() ? ar.result() : Answer.OTHER));
    }

    static Answer answer(GrpcStatus status) {
      if (status == GrpcStatus.OK) return Answer.ACCEPTED;
      if (status == GrpcStatus.UNAVAILABLE || status == GrpcStatus.RESOURCE_EXHAUSTED) return Answer.REFUSED;
      return Answer.OTHER;
    }

    @Override public Future<Void> close() {
      List<Future<Void>> all = new ArrayList<>();
      for (GrpcClient c : clients) all.add(c.close());
      return Future.join(all).mapEmpty();
    }
  }

  /** Body {@code i} of the distinct ones, carrying delivery probe {@code id} (or ignoring it). */
  interface BodyMaker {
    Buffer make(int i, long id);
  }

  /**
   * Closed-loop senders: each posts, waits for the answer, posts again, until the deadline. With a
   * rate, each sender also waits for its next slot, so together they post {@code rate} metrics a
   * second (fewer if the proxy answers too slowly to keep up: the senders never overlap their own
   * requests, as a local's flushes do not).
   */
  private static final class Load {
    final Vertx vertx;
    final Poster poster;
    final int distinctBodies;
    final int perBody;
    final BodyMaker maker;
    /** Nanoseconds between one sender's posts at the asked rate; 0: closed loop. */
    final long slotNanos;
    final AtomicLong probeIds = new AtomicLong();
    /** Probes answered 202 in the measured window: id to when, by {@link System#nanoTime()}. */
    final java.util.concurrent.ConcurrentHashMap<Long, Long> probes = new java.util.concurrent.ConcurrentHashMap<>();
    volatile boolean probing;
    final AtomicLong requests = new AtomicLong();
    final AtomicLong sentMetrics = new AtomicLong();
    final AtomicLong acceptedMetrics = new AtomicLong();
    final AtomicLong refused = new AtomicLong();
    final AtomicLong errors = new AtomicLong();
    final AtomicInteger next = new AtomicInteger();
    volatile long deadline;
    long[] lat = new long[1 << 16];
    int latN;
    final List<Future<Void>> running = new ArrayList<>();

    /** @param rate metrics a second over all {@code senders}; 0 for a closed loop */
    Load(Vertx vertx, Poster poster, int distinctBodies, int perBody, BodyMaker maker, long rate, int senders) {
      this.vertx = vertx;
      this.poster = poster;
      this.distinctBodies = distinctBodies;
      this.perBody = perBody;
      this.maker = maker;
      this.slotNanos = rate <= 0 ? 0 : (long) (1e9 * senders * perBody / rate);
    }

    java.util.Map<Long, Long> probesAccepted() {
      return probes;
    }

    void run(int senders, long until) {
      deadline = until;
      for (int i = 0; i < senders; i++) {
        Promise<Void> done = Promise.promise();
        running.add(done.future());
        loop(i, done);
      }
    }

    /**
     * The answers counted so far (requests, refused, other errors, metrics accepted), read
     * together with the latencies; {@code open} also starts a new latency record.
     */
    synchronized long[] window(boolean open) {
      if (open) latN = 0;
      probing = open;
      return new long[] {requests.get(), refused.get(), errors.get(), acceptedMetrics.get()};
    }

    synchronized void record(long nanos, Answer answer) {
      if (latN == lat.length) lat = Arrays.copyOf(lat, lat.length * 2);
      lat[latN++] = nanos;
      requests.incrementAndGet();
      switch (answer) {
        case ACCEPTED -> acceptedMetrics.addAndGet(perBody);
        case REFUSED -> refused.incrementAndGet();
        default -> errors.incrementAndGet();
      }
    }

    synchronized long[] latencies() {
      long[] out = Arrays.copyOf(lat, latN);
      Arrays.sort(out);
      return out;
    }

    Future<Void> stop() {
      deadline = 0;
      return Future.join(running).mapEmpty();
    }

    private void loop(int sender, Promise<Void> done) {
      loop(sender, done, System.nanoTime());
    }

    /** @param slot when this sender's post is due (at the asked rate; now in a closed loop) */
    private void loop(int sender, Promise<Void> done, long slot) {
      long now = System.nanoTime();
      if (now >= deadline) {
        done.complete();
        return;
      }
      if (slot - now > 1_000_000) {
        vertx.setTimer((slot - now) / 1_000_000, t -> loop(sender, done, slot));
        return;
      }
      int body = Math.floorMod(next.getAndIncrement(), distinctBodies);
      long id = probeIds.incrementAndGet();
      Buffer b = maker.make(body, id);
      long start = System.nanoTime();
      sentMetrics.addAndGet(perBody);
      poster.post(sender, b).onComplete(ar -> {
        long end = System.nanoTime();
        Answer answer = ar.succeeded() ? ar.result() : Answer.OTHER;
        if (answer == Answer.ACCEPTED && probing) probes.put(id, end);
        record(end - start, answer);
        // Behind the rate (a slow answer), the next post goes at once: slots are not saved up.
        loop(sender, done, slotNanos == 0 ? end : Math.max(end, slot + slotNanos));
      });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private static double pct(long[] sorted, double p) {
    if (sorted.length == 0) return Double.NaN;
    return sorted[(int) Math.min(sorted.length - 1, Math.floor(p * sorted.length))] / 1e6;
  }

  /**
   * Waits until the globals hold {@code expected} metrics or their count stops moving for 2 s
   * (the proxy has drained its queues), at most 2 minutes; returns the count.
   */
  private static long settle(ProxyRig rig, long expected) throws Exception {
    long now = rig.delivered();
    long last = -1;
    long stillSince = System.nanoTime();
    long deadline = System.nanoTime() + 120_000_000_000L;
    while (System.nanoTime() < deadline) {
      if (now != last) {
        last = now;
        stillSince = System.nanoTime();
      }
      long still = System.nanoTime() - stillSince;
      if (now >= expected && still >= 300_000_000L) break; // a little longer, to see duplicates too
      if (still >= 2_000_000_000L) break;
      Thread.sleep(100);
      now = rig.delivered();
    }
    return now;
  }

  private static void waitFor(long nanoDeadline, ProxyRig rig) throws Exception {
    long left;
    while ((left = nanoDeadline - System.nanoTime()) > 0) {
      checkAlive(rig);
      Thread.sleep(Math.max(1, Math.min(200, left / 1_000_000)));
    }
  }

  private static void checkAlive(ProxyRig rig) throws IOException {
    if (!rig.proxy.isAlive()) {
      List<String> lines = Files.readAllLines(rig.log);
      String tail = String.join("\n   | ", lines.subList(Math.max(0, lines.size() - 8), lines.size()));
      throw new IllegalStateException("proxy exited with code " + rig.proxy.exitValue() + "; log " + rig.log
          + " ends:\n   | " + tail);
    }
  }

  /** Lines of the proxy's log that a run should not have: OutOfMemoryError, FATAL. */
  private static String logNotes(ProxyRig rig) {
    try (var lines = Files.lines(rig.log)) {
      long oom = 0;
      long fatal = 0;
      for (String l : (Iterable<String>) lines::iterator) {
        if (l.contains("OutOfMemoryError")) oom++;
        if (l.contains("FATAL")) fatal++;
      }
      List<String> notes = new ArrayList<>();
      if (oom > 0) notes.add(oom + " OutOfMemoryError lines in the proxy log");
      if (fatal > 0) notes.add(fatal + " FATAL lines in the proxy log");
      return String.join(", ", notes);
    } catch (IOException | UncheckedIOException e) {
      return "";
    }
  }

  /** The proxy's drop and request-error counters from /debug/state, if it has them. */
  private static String proxyState(ProxyRig rig) {
    try {
      java.net.http.HttpClient http = java.net.http.HttpClient.newBuilder()
          .version(java.net.http.HttpClient.Version.HTTP_1_1).build();
      String body = http.send(java.net.http.HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + rig.port
              + "/debug/state")).timeout(java.time.Duration.ofSeconds(5)).build(),
          java.net.http.HttpResponse.BodyHandlers.ofString()).body();
      JsonObject state = new JsonObject(body);
      JsonObject counters = state.getJsonObject("counters");
      if (counters == null) return "";
      JsonObject out = new JsonObject();
      for (String k : List.of("received", "forwarded", "dropped", "queued", "request_errors")) {
        if (counters.containsKey(k)) out.put(k, counters.getValue(k));
      }
      if (state.getValue("memory") != null) out.put("memory", state.getValue("memory"));
      return out.encode();
    } catch (Exception e) {
      return "";
    }
  }

  private static String loadAvg() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException e) {
      return "?";
    }
  }

  private static String cores(double c) {
    return Double.isNaN(c) ? "in the bench JVM" : String.format(Locale.ROOT, "%.2f", c);
  }

  private static String duration(double seconds) {
    if (seconds < 60) return String.format(Locale.ROOT, "%.0f s", seconds);
    return String.format(Locale.ROOT, "%d min %02d s", (long) seconds / 60, (long) seconds % 60);
  }

  private static void deleteTree(Path dir) {
    try (var walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // temporary files; nothing to do
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reporting

  /** Roughly how long the cells take, from their phases (start-up, warm-up, window, drain, stop). */
  static double estimateSeconds(Options o, List<Cell> cells) {
    double total = 0;
    for (Cell c : cells) {
      if (c.burst()) {
        total += 7 + o.warmup + (o.warmup > 0 ? 2 : 0) + 2 + o.rounds * o.intervalMs / 1000.0 + 3;
      } else {
        total += 7 + o.warmup + o.seconds + 2;
      }
    }
    return total * o.runs;
  }

  private static String header(Options o, List<Cell> cells, Bodies bodies, Path dir) {
    StringBuilder sb = new StringBuilder();
    sb.append(String.format(Locale.ROOT, "# veneur-proxy bench, %s%n",
        ZonedDateTime.now().truncatedTo(ChronoUnit.SECONDS).format(WHEN)));
    sb.append(String.format(Locale.ROOT, "machine:  %d cores (nproc), %s, %.1f GiB RAM, Linux %s; load average at start %s%n",
        Runtime.getRuntime().availableProcessors(), cpuModel(), memTotalKib() / 1024.0 / 1024.0, kernel(), loadAvg()));
    String revision = System.getProperty("bench.revision", "");
    String yaml = o.extraYaml.isBlank() ? "" : " + yaml '" + o.extraYaml + "'";
    boolean anyJava = false;
    for (String proxy : o.proxies()) {
      if (!proxy.endsWith(".jar")) {
        sb.append(String.format(Locale.ROOT, "proxy:    %s: %s -f yaml (a Go veneur-proxy binary), a fresh process per run;"
                + " JSON → JSON: forward_address; gRPC → gRPC: grpc_address, grpc_forward_address, forward_timeout 10s;"
                + " several globals: from a Consul double (consul_forward_service_name or"
                + " consul_forward_grpc_service_name, consul_refresh_interval 1s)%s%n",
            proxyLabel(o, proxy), proxy, yaml));
        continue;
      }
      anyJava = true;
      sb.append(String.format(Locale.ROOT, "proxy:    %s: java %s-jar %s%s (Java %s), a fresh process per run; HTTP globals:"
              + " forward_addresses, gRPC globals: grpc_forward_address (host:port); gRPC in: grpc_address%s%n",
          proxyLabel(o, proxy), o.javaOpts.isBlank() ? "" : o.javaOpts.trim() + " ", proxy,
          !proxy.equals(o.jar) || revision.isEmpty() ? "" : " at " + revision, System.getProperty("java.runtime.version"),
          yaml));
    }
    if (anyJava && o.javaOpts.isBlank()) {
      sb.append("          (no JVM flags: the default heap is a quarter of RAM, the GC JVM ergonomics pick)\n");
    }
    List<String> skipped = skipped(o);
    if (!skipped.isEmpty()) {
      sb.append("          not run (a Go proxy forwards /import to HTTP globals and gRPC to gRPC globals only): ")
          .append(String.join(", ", skipped)).append('\n');
    }
    List<String> kinds = new ArrayList<>();
    if (cells.stream().anyMatch(c -> !c.grpcOut())) {
      kinds.add("HTTP: " + (o.light ? "count only" : "inflate + decode every metric (objects, base64 values)"));
    }
    if (cells.stream().anyMatch(Cell::grpcOut)) {
      kinds.add("gRPC (SendMetrics, h2c): " + (o.light ? "count only"
          : "protobuf-decode every MetricList and read every metric's name, tags and value"));
    }
    sb.append(String.format(Locale.ROOT, "globals:  %s; %s%n", o.globalsInBench
        ? "in the bench JVM, " + Runtime.getRuntime().availableProcessors() + " event loops each"
        : "their own JVM (" + (o.globalsJavaOpts.isBlank() ? "no flags" : o.globalsJavaOpts.trim()) + "), one event"
            + " loop per core", String.join("; ", kinds)));
    sb.append(String.format(Locale.ROOT, "load:     this JVM (%s)%n",
        String.join(" ", java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())));
    if (!bodies.json().isEmpty()) {
      sb.append(String.format(Locale.ROOT, "          JSON in: POST /import, bodies of %d metrics from %s, %d B of JSON, %d B"
              + " zlib-deflated at level 6 as a local's Go compress/zlib writes them (%d distinct bodies)%n",
          o.perBody, "random".equals(o.sample) ? "random values" : o.sample, bodies.jsonRawBytes(),
          bodies.jsonDeflatedBytes(), o.distinctBodies));
    }
    if (!bodies.grpc().isEmpty()) {
      sb.append(String.format(Locale.ROOT, "          gRPC in: unary forwardrpc.Forward/SendMetrics (as a v14 local's grpc-single),"
              + " one HTTP/2 connection per sender; MetricLists of %d metrics drawn from %s (a real local's gRPC flush,"
              + " protobuf as it sent it), renamed per body, %d B each, uncompressed as Veneur sends them (%d distinct"
              + " bodies)%n", o.perBody, o.grpcSample, bodies.grpcBytes(), o.distinctBodies));
    }
    boolean anySteady = cells.stream().anyMatch(c -> !c.burst());
    boolean anyBurst = cells.stream().anyMatch(Cell::burst);
    if (anySteady) {
      sb.append(String.format(Locale.ROOT, "steady:   closed-loop senders (each posts, waits for the answer, posts"
          + " again), %d s warm-up, %d s measured%n", o.warmup, o.seconds));
    }
    if (anyBurst) {
      sb.append(String.format(Locale.ROOT, "burst:    %d locals, one keep-alive connection each, all posting one body"
              + " at the same instant every %s, %d rounds%s%n", o.burst, duration(o.intervalMs / 1000.0), o.rounds,
          o.warmup > 0 ? String.format(Locale.ROOT, ", after %d s of warm-up with %d closed-loop senders",
              o.warmup, o.burstWarmupSenders) : ", proxy cold (no warm-up)"));
    }
    if (!Double.isNaN(floor)) {
      sb.append(String.format(Locale.ROOT, "floor:    %.2f CPU-s per M metrics to inflate these JSON bodies and deflate"
          + " their JSON again at level 1 (java.util.zip, sync-flushed), nothing else: one thread of this JVM, measured"
          + " before the runs (the zlib floor of JSON in and out)%n", floor));
    }
    if (o.rate > 0) {
      sb.append(String.format(Locale.ROOT, "rate:     %,d metrics/s over all senders (each waits for its slot; a slow"
          + " answer delays its sender's next post)%n", o.rate));
    }
    sb.append(String.format(Locale.ROOT, "delivery: every post carries one probe metric more (%s, tagged probe:<id>);"
        + " its delivery time is its global's arrival minus the sender's 202 (CLOCK_MONOTONIC in both JVMs)%n",
        Probes.NAME));
    sb.append(String.format(Locale.ROOT, "runs:     %d per cell, interleaved; %s; about %s in all; logs in %s%n",
        o.runs, o.runs > 1 ? "the table shows the median [min-max]" : "one run per cell, so no spread shown",
        duration(estimateSeconds(o, cells)), dir));
    return sb.toString();
  }

  private static String summaryLine(Options o, Result r) {
    if (!r.ok()) return "   => FAILED: " + r.error();
    return String.format(Locale.ROOT, "   => %s, %s, %s %d globals %s: %.0f metrics/s, %.2f CPU-s/M, p99 %.0f ms, refused %d,"
            + " peak RSS %.0f MiB, lost %d", proxyLabel(o, r.cell().proxy()), r.cell().flow(), r.cell().mode(),
        r.cell().globals(),
        r.cell().burst() ? r.cell().senders() + " locals" : r.cell().senders() + " senders", r.deliveredPerSec(),
        r.cpuPerM(), r.p99(), r.refused(), r.peakRssMiB(), r.lost());
  }

  static String table(List<Cell> cells, List<Result> results, Options o) {
    Map<Cell, List<Result>> byCell = new LinkedHashMap<>();
    for (Cell c : cells) byCell.put(c, new ArrayList<>());
    for (Result r : results) byCell.get(r.cell()).add(r);
    StringBuilder sb = new StringBuilder();
    sb.append("| proxy | in → out | mode | globals | senders | delivered/s | accepted/s | proxy CPU-s per M | CPU-s per M, whole run | p50 ms | p99 ms | refused"
        + " | other errors | delivery p50 / p99 ms | peak RSS MiB | sent / accepted / delivered | lost | burst delivered in"
        + " | cores: proxy / globals / bench | proxy CPU in JIT / GC % | runs |\n");
    sb.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (Map.Entry<Cell, List<Result>> e : byCell.entrySet()) {
      Cell c = e.getKey();
      List<Result> ok = e.getValue().stream().filter(Result::ok).collect(Collectors.toList());
      int failedRuns = e.getValue().size() - ok.size();
      String senders = c.burst()
          ? String.format(Locale.ROOT, "%d locals x %d every %s", c.senders(), o.rounds, duration(o.intervalMs / 1000.0))
          : String.valueOf(c.senders());
      if (ok.isEmpty()) {
        sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %d | %s | all %d runs failed: %s ||||||||||||||%n",
            proxyLabel(o, c.proxy()), c.flow(), c.mode(), c.globals(), senders, failedRuns,
            e.getValue().isEmpty() ? "" : e.getValue().get(0).error()));
        continue;
      }
      long sent = 0;
      long accepted = 0;
      long delivered = 0;
      long requests = 0;
      for (Result r : ok) {
        sent += r.sentMetrics();
        accepted += r.acceptedMetrics();
        delivered += r.deliveredMetrics();
        requests += r.requests();
      }
      long refusedTotal = ok.stream().mapToLong(Result::refused).sum();
      String refused = stat(ok, r -> r.refused(), "%.0f")
          + (requests == 0 ? "" : String.format(Locale.ROOT, " (%.1f%%)", 100.0 * refusedTotal / requests));
      String lost = String.valueOf(accepted - delivered);
      if (accepted - delivered < 0) lost = (delivered - accepted) + " extra";
      String cores = String.format(Locale.ROOT, "%s / %s / %s", median(ok, Result::proxyCores, "%.2f"),
          median(ok, Result::globalsCores, "%.2f"), median(ok, Result::benchCores, "%.2f"));
      String notes = ok.stream().map(Result::notes).filter(s -> !s.isEmpty()).distinct().collect(Collectors.joining("; "));
      long probesLost = ok.stream().mapToLong(Result::probesLost).sum();
      String delivery = c.burst() ? "" : stat(ok, Result::deliveryP50, "%.0f") + " / " + stat(ok, Result::deliveryP99, "%.0f")
          + (probesLost == 0 ? "" : " (" + probesLost + " probes lost)");
      String jvm = c.burst() || c.go() ? "" : median(ok, r -> 100 * r.jitShare(), "%.1f") + " / " + median(ok, r -> 100 * r.gcShare(), "%.1f");
      sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d%s |%n",
          proxyLabel(o, c.proxy()), c.flow(), c.mode(), c.globals(), senders,
          stat(ok, Result::deliveredPerSec, "%,.0f"),
          stat(ok, Result::acceptedPerSec, "%,.0f"),
          stat(ok, Result::cpuPerM, "%.2f"),
          c.burst() ? "" : stat(ok, Result::cpuPerMWhole, "%.2f"),
          stat(ok, Result::p50, "%.0f"),
          stat(ok, Result::p99, "%.0f"),
          refused,
          stat(ok, r -> r.otherErrors(), "%.0f"),
          delivery,
          stat(ok, Result::peakRssMiB, "%.0f"),
          String.format(Locale.ROOT, "%.2fM / %.2fM / %.2fM", sent / 1e6, accepted / 1e6, delivered / 1e6),
          lost,
          c.burst() ? deliverStat(ok) : "",
          cores,
          jvm,
          ok.size(),
          (failedRuns > 0 ? ", " + failedRuns + " failed" : "") + (notes.isEmpty() ? "" : "; " + notes)));
    }
    if (cells.stream().anyMatch(c -> !c.burst())) {
      sb.append("\nsteady rows: delivered/s (counted at the globals), accepted/s (answered 202 or OK), CPU per M metrics"
          + " delivered, latency and refused over the measured window; accepted/s above delivered/s means the proxy"
          + " queued (or dropped) the difference; CPU-s per M, whole run = the proxy's CPU from the first request to"
          + " the end of the drain over every metric delivered, which holds when it queues. sent / accepted / delivered over whole runs (warm-up and drain"
          + " included), summed over runs; lost = accepted (202, gRPC OK) but never delivered; refused = 503 from"
          + " /import, UNAVAILABLE or RESOURCE_EXHAUSTED from gRPC. A Go proxy answers gRPC before it forwards: its"
          + " accepted is what it was sent, not what it delivered. proxy CPU in JIT / GC % = the share of the proxy's CPU in the"
          + " window spent by the JVM's compiler threads and by its GC and VM threads (medians): a JIT share of more than a few"
          + " per cent means the window was not yet steady state (give a longer --warmup).\n");
    }
    if (cells.stream().anyMatch(Cell::burst)) {
      sb.append(cells.stream().allMatch(Cell::burst) ? "\n" : "").append("burst rows: delivered/s = metrics delivered / (rounds x interval); \"burst delivered in\" = the"
          + " slowest round, from the instant the locals posted to the last metric at the globals; peak RSS = VmHWM"
          + " since the first round (cleared via /proc/PID/clear_refs after the warm-up where allowed).\n");
    }
    return sb.toString();
  }

  /**
   * For every cell a Go proxy ran, its CPU per metric against each jar's in the same cell (same
   * globals, senders and flow), medians over the runs: "how many times less CPU per metric".
   */
  static String ratios(List<Cell> cells, List<Result> results, Options o) {
    StringBuilder sb = new StringBuilder();
    for (Cell go : cells) {
      if (!go.go()) continue;
      double goCpu = medianOf(results, go, Result::cpuPerM);
      double goRate = medianOf(results, go, Result::deliveredPerSec);
      for (Cell c : cells) {
        if (c.go() || c.burst() != go.burst() || c.globals() != go.globals() || c.senders() != go.senders()
            || c.grpcIn() != go.grpcIn() || c.grpcOut() != go.grpcOut()) continue;
        double cpu = medianOf(results, c, Result::cpuPerM);
        double rate = medianOf(results, c, Result::deliveredPerSec);
        if (sb.length() == 0) sb.append("\nratios (medians of the runs, same cells):\n");
        sb.append(String.format(Locale.ROOT, "  %s, %s, %d globals, %d %s: CPU per metric %s / %s = %.2f / %.2f = %.1fx less;"
                + " delivered/s %.1fx%s%s%n",
            c.flow(), c.mode(), c.globals(), c.senders(), c.burst() ? "locals" : "senders", proxyLabel(o, go.proxy()),
            proxyLabel(o, c.proxy()), goCpu, cpu, goCpu / cpu, rate / goRate,
            Double.isNaN(floor) || c.grpcIn() || c.grpcOut() ? ""
                : String.format(Locale.ROOT, "; zlib floor %.2f, %s at %.1fx it", floor, proxyLabel(o, c.proxy()), cpu / floor),
            pairedRatios(results, go, c)));
      }
    }
    return sb.toString();
  }

  /**
   * The CPU ratio of each run of {@code go} to the run of {@code c} with the same number, which the
   * interleaving ran next to it in time: "; run by run 9.6x, 9.8x, 10.2x". A median can sit on either
   * side of a target while the runs straddle it; this shows how they spread. Empty with one run.
   */
  static String pairedRatios(List<Result> results, Cell go, Cell c) {
    List<String> each = new ArrayList<>();
    for (Result g : results) {
      if (!g.ok() || !g.cell().equals(go) || Double.isNaN(g.cpuPerM())) continue;
      results.stream()
          .filter(r -> r.ok() && r.cell().equals(c) && r.run() == g.run() && !Double.isNaN(r.cpuPerM()) && r.cpuPerM() > 0)
          .findFirst()
          .ifPresent(r -> each.add(String.format(Locale.ROOT, "%.1fx", g.cpuPerM() / r.cpuPerM())));
    }
    return each.size() < 2 ? "" : "; run by run " + String.join(", ", each);
  }

  private static double medianOf(List<Result> results, Cell c, ToDoubleFunction<Result> f) {
    double[] v = results.stream().filter(r -> r.ok() && r.cell().equals(c)).mapToDouble(f)
        .filter(d -> !Double.isNaN(d)).sorted().toArray();
    return v.length == 0 ? Double.NaN : median(v);
  }

  private static String deliverStat(List<Result> ok) {
    if (ok.stream().anyMatch(r -> Double.isInfinite(r.deliverMs()))) {
      long late = ok.stream().filter(r -> Double.isInfinite(r.deliverMs())).count();
      List<Result> timed = ok.stream().filter(r -> !Double.isInfinite(r.deliverMs())).collect(Collectors.toList());
      return late + " of " + ok.size() + " runs had a round not delivered before the next"
          + (timed.isEmpty() ? "" : "; others " + stat(timed, r -> r.deliverMs() / 1000, "%.2f") + " s");
    }
    return stat(ok, r -> r.deliverMs() / 1000, "%.2f") + " s";
  }

  /** The median, and with several runs the range: "4.01 [3.18-5.24]". */
  static String stat(List<Result> rs, ToDoubleFunction<Result> f, String fmt) {
    double[] v = rs.stream().mapToDouble(f).filter(d -> !Double.isNaN(d)).sorted().toArray();
    if (v.length == 0) return "-";
    String med = String.format(Locale.ROOT, fmt, median(v));
    if (v.length == 1) return med;
    return med + " [" + String.format(Locale.ROOT, fmt, v[0]) + "-" + String.format(Locale.ROOT, fmt, v[v.length - 1]) + "]";
  }

  private static String median(List<Result> rs, ToDoubleFunction<Result> f, String fmt) {
    double[] v = rs.stream().mapToDouble(f).filter(d -> !Double.isNaN(d)).sorted().toArray();
    return v.length == 0 ? "-" : String.format(Locale.ROOT, fmt, median(v));
  }

  static double median(double[] sorted) {
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  private static void writeCsv(Path file, List<Result> results) throws IOException {
    StringBuilder sb = new StringBuilder("proxy,in,out,mode,globals,senders,run,error,delivered_per_s,accepted_per_s,cpu_s_per_m,cpu_s_per_m_whole_run,p50_ms,p99_ms,"
        + "requests,refused_503,other_errors,peak_rss_mib,sent,accepted,delivered,lost,proxy_cores,globals_cores,"
        + "bench_cores,burst_deliver_ms,delivery_p50_ms,delivery_p99_ms,probes_lost,jit_share,gc_share\n");
    for (Result r : results) {
      sb.append(String.format(Locale.ROOT, "%s,%s,%s,%s,%d,%d,%d,%s,%.0f,%.0f,%.3f,%.3f,%.1f,%.1f,%d,%d,%d,%.0f,%d,%d,%d,%d,%.2f,%.2f,%.2f,%.0f,%.1f,%.1f,%d,%.4f,%.4f%n",
          r.cell().proxy(), r.cell().grpcIn() ? "grpc" : "json", r.cell().grpcOut() ? "grpc" : "http",
          r.cell().mode(), r.cell().globals(), r.cell().senders(), r.run(),
          r.error() == null ? "" : '"' + r.error().replace('"', '\'').replace('\n', ' ') + '"',
          r.deliveredPerSec(), r.acceptedPerSec(), r.cpuPerM(), r.cpuPerMWhole(), r.p50(), r.p99(), r.requests(), r.refused(), r.otherErrors(),
          r.peakRssMiB(), r.sentMetrics(), r.acceptedMetrics(), r.deliveredMetrics(), r.lost(), r.proxyCores(),
          r.globalsCores(), r.benchCores(), r.deliverMs(), r.deliveryP50(), r.deliveryP99(), r.probesLost(), r.jitShare(), r.gcShare()));
    }
    if (file.getParent() != null) Files.createDirectories(file.getParent());
    Files.writeString(file, sb);
  }

  private static String cpuModel() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (l.startsWith("model name")) return l.substring(l.indexOf(':') + 1).trim();
      }
    } catch (IOException e) {
      // not Linux
    }
    return "unknown CPU";
  }

  private static long memTotalKib() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
        if (l.startsWith("MemTotal:")) return Long.parseLong(l.replaceAll("[^0-9]", ""));
      }
    } catch (IOException e) {
      // not Linux
    }
    return 0;
  }

  private static String kernel() {
    try {
      return Files.readString(Path.of("/proc/sys/kernel/osrelease")).trim();
    } catch (IOException e) {
      return System.getProperty("os.version");
    }
  }
}
