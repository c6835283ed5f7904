package dev.veneur.proxy.interop;

import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.DatadogSink;
import dev.veneur.proxy.support.DatadogSink.Point;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.StatsdSender;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.support.VeneurProcess;
import dev.veneur.proxy.support.VeneurProcess.Version;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * Real Veneur locals → this proxy (a real process) → real Veneur globals, all flushing to one
 * {@link DatadogSink} stand-in, where each point's {@code host} says which server flushed it.
 * {@link #send} feeds the locals {@link Traffic} just after a flush boundary (every server flushes
 * on the interval's wall-clock boundaries), so each local forwards all of it in one flush;
 * {@link #check} compares what the globals flushed with what the traffic says they must, series by
 * series, on the global the proxy's ring places it. Every process is stopped by {@link #close}.
 */
final class Fleet implements AutoCloseable {
  /** The locals' flush interval: they forward what they got within a second of it. */
  static final Duration INTERVAL = Duration.ofSeconds(1);
  /**
   * The globals' flush interval, ten of the locals': traffic is sent just after a global flush
   * boundary, so what every local forwards for it reaches the globals about 9 s before their next
   * flush. With the globals at 1 s too, a loaded machine could make one local's forward land on
   * one side of a global flush and the other's on the other side (seen in a CI-like run: a series
   * sent by both locals flushed as two points of 150 instead of one of 200).
   */
  static final Duration GLOBAL_INTERVAL = Duration.ofSeconds(10);
  static final double[] PERCENTILES = {0.5, 0.9, 0.99};
  /**
   * How far a flushed percentile may be from the exact quantile of the values sent, as a share of
   * their range: Veneur's merging t-digest (compression 100) is far closer than this on a few
   * hundred values, even merged from two locals; a wrong digest (lost centroids, a dropped or
   * doubled local) is far off.
   */
  static final double PERCENTILE_TOLERANCE = 0.02;
  /** Set cardinality: HyperLogLog's estimate, exact or nearly so at a few hundred members. */
  static final double SET_TOLERANCE = 0.02;

  final String name;
  final Path dir;
  final DatadogSink sink;
  final List<VeneurProcess> globals = new ArrayList<>();
  final Map<String, VeneurProcess> locals = new LinkedHashMap<>();
  ProxyProcess proxy;
  int proxyPort;
  /** What was checked, for the test's output. */
  final List<String> figures = new ArrayList<>();

  private Fleet(String name, Path dir, DatadogSink sink) {
    this.name = name;
    this.dir = dir;
    this.sink = sink;
  }

  static Fleet start(String name, Path dir) throws IOException {
    return new Fleet(name, dir, DatadogSink.start());
  }

  VeneurProcess global(Version v, String hostname) throws IOException {
    VeneurProcess.Builder b = VeneurProcess.global(v, hostname).datadog(sink).interval(GLOBAL_INTERVAL)
        .percentiles(PERCENTILES);
    // A v14 global also imports by gRPC: the proxy reaches it that way when told to (grpcEgress).
    if (v == Version.V14_2_0) b.grpc();
    VeneurProcess g = b.start(dir);
    globals.add(g);
    return g.awaitReady();
  }

  /** A local forwarding to the proxy's {@code /import}; {@code protocol} is v14's {@code proxy_protocol}, null for v2. */
  VeneurProcess local(Version v, String hostname, String protocol) throws IOException {
    return local(v, hostname, protocol, "http://127.0.0.1:" + proxyPort);
  }

  /**
   * A local forwarding to {@code forwardAddress}: a URL for JSON, {@code host:port} with no scheme
   * for v14's {@code grpc-single} and {@code grpc-stream} (tried against a v14.2.0 global).
   */
  VeneurProcess local(Version v, String hostname, String protocol, String forwardAddress) throws IOException {
    VeneurProcess.Builder b = VeneurProcess.local(v, hostname, forwardAddress)
        .datadog(sink).interval(INTERVAL).percentiles(PERCENTILES);
    if (protocol != null) b.proxyProtocol(protocol);
    VeneurProcess l = b.start(dir);
    locals.put(hostname, l);
    return l.awaitReady();
  }

  /** The proxy, forwarding to every global started so far, as a v2 YAML with {@code forward_addresses}. */
  ProxyProcess proxy(String... extraYaml) throws IOException {
    proxyPort = TestProxy.freePort();
    List<String> y = new ArrayList<>(List.of("http_address: \"127.0.0.1:" + proxyPort + "\""));
    if (grpcEgress) {
      y.add("grpc_forward_address: \"" + String.join(",", globals.stream().map(Fleet::member).toList()) + "\"");
    } else {
      y.add("forward_addresses:");
      for (VeneurProcess g : globals) y.add("  - \"" + g.httpUrl() + "\"");
    }
    y.addAll(List.of(extraYaml));
    Path yaml = dir.resolve("proxy.yaml");
    Files.writeString(yaml, String.join("\n", y) + "\n");
    proxy = ProxyProcess.start(yaml, Map.of(), "-Xmx256m");
    Await.until("the proxy answers /debug/state", Duration.ofSeconds(60), Duration.ofMillis(50),
        () -> {
          if (!proxy.process.isAlive()) throw new AssertionError("the proxy exited:\n" + proxy.log());
          return DebugState.get(proxyPort) != null;
        });
    return proxy;
  }

  /** The proxy's ring over the globals (their URLs as members, as in its YAML). */
  HashRing ring() {
    return HashRing.of(globals.stream().map(this::memberOf).toList());
  }

  VeneurProcess globalAt(String member) {
    return globals.stream().filter(g -> memberOf(g).equals(member)).findFirst().orElseThrow();
  }

  /**
   * Set before {@link #proxy}: the proxy reaches the (v14) globals by gRPC, named {@code host:port}
   * in {@code grpc_forward_address} as a v14 proxy's YAML names them.
   */
  boolean grpcEgress;

  private static String member(VeneurProcess g) {
    return "127.0.0.1:" + g.grpcPort;
  }

  private String memberOf(VeneurProcess g) {
    return grpcEgress ? member(g) : g.httpUrl();
  }

  /**
   * Sends each local its lines, starting between 50 and 300 ms after a global flush boundary
   * (which is also a local one), so every line reaches its local well inside one interval, each
   * series travels in one forward, and every forward reaches the globals within one of their
   * intervals.
   */
  void send(Traffic t) {
    long every = GLOBAL_INTERVAL.toMillis();
    Await.until("a moment just after a flush boundary", GLOBAL_INTERVAL.plusSeconds(5), Duration.ofMillis(1), () -> {
      long phase = System.currentTimeMillis() % every;
      return phase >= 50 && phase <= 300;
    });
    long start = System.currentTimeMillis();
    for (Map.Entry<String, List<String>> e : t.lines.entrySet()) {
      try (StatsdSender s = new StatsdSender(locals.get(e.getKey()).statsdPort)) {
        s.send(e.getValue());
      }
    }
    long took = System.currentTimeMillis() - start;
    figures.add(t.lines.values().stream().mapToInt(List::size).sum() + " statsd lines sent to "
        + t.lines.keySet() + " in " + took + " ms");
  }

  private Set<String> globalHosts() {
    return globals.stream().map(g -> g.hostname).collect(Collectors.toSet());
  }

  private static String percentileName(String name, double p) {
    return name + "." + (int) (p * 100) + "percentile";
  }

  private List<Point> atGlobals(String metric, Predicate<Point> also) {
    Set<String> hosts = globalHosts();
    return sink.points(p -> hosts.contains(p.host()) && p.metric().equals(metric) && also.test(p));
  }

  /** Waits until every series has been flushed by some global (counters: their whole sum) and by its locals. */
  void awaitFlushed(Traffic t) {
    Await.until("the globals flush every series of the traffic", Duration.ofSeconds(30), Duration.ofMillis(50),
        () -> missing(t).isEmpty());
  }

  /** Series not yet flushed, for the wait's condition and its message. */
  List<String> missing(Traffic t) {
    List<String> m = new ArrayList<>();
    for (Traffic.Series s : t.series.values()) {
      switch (s.kind) {
        case COUNTER -> {
          double sum = atGlobals(s.name, p -> p.tags().equals(s.tags)).stream().mapToDouble(Point::sum).sum();
          if (sum < s.counterSum) m.add(s + ": sum " + sum + " of " + s.counterSum);
        }
        case GAUGE, SET -> {
          if (atGlobals(s.name, p -> true).isEmpty()) m.add(s.toString());
        }
        case HISTOGRAM, TIMER -> {
          for (double p : PERCENTILES) if (atGlobals(percentileName(s.name, p), x -> true).isEmpty()) m.add(s + " p" + p);
          if (s.globalOnly) {
            if (atGlobals(s.name + ".count", x -> true).isEmpty()) m.add(s + " count at a global");
          } else {
            for (String l : s.locals) if (sink.points(l, s.name + ".count").isEmpty()) m.add(s + " count at " + l);
          }
        }
      }
    }
    return m;
  }

  /**
   * What the globals flushed against what they must, series by series: each on the global the
   * ring places it, counter sums exact, the last gauge value, set cardinality within
   * {@link #SET_TOLERANCE}, histogram and timer percentiles within {@link #PERCENTILE_TOLERANCE} of
   * the exact quantiles (and the locals' own min/max/count, which a mixed-scope histogram flushes
   * at the local). Returns the problems; records the figures.
   */
  List<String> check(Traffic t) {
    HashRing ring = ring();
    List<String> problems = new ArrayList<>();
    Map<String, Integer> perGlobal = new LinkedHashMap<>();
    for (Traffic.Series s : t.series.values()) {
      String owner = globalAt(ring.route(s.name, s.kind.type, s.tagstring())).hostname;
      perGlobal.merge(owner, 1, Integer::sum);
      switch (s.kind) {
        case COUNTER -> {
          List<Point> pts = atGlobals(s.name, p -> p.tags().equals(s.tags));
          double sum = pts.stream().mapToDouble(Point::sum).sum();
          if (sum != s.counterSum) problems.add(s + ": counter sum " + sum + ", expected " + s.counterSum);
          placement(problems, s, owner, pts);
          figures.add(s + " → " + owner + ": sum " + fmt(sum) + " (expected " + s.counterSum + ")");
        }
        case GAUGE -> {
          List<Point> pts = atGlobals(s.name, p -> true);
          if (pts.size() != 1 || pts.get(0).value() != s.gauge) {
            problems.add(s + ": gauge points " + values(pts) + ", expected one " + s.gauge);
          }
          placement(problems, s, owner, pts);
          figures.add(s + " → " + owner + ": " + values(pts) + " (expected " + s.gauge + ")");
        }
        case SET -> {
          List<Point> pts = atGlobals(s.name, p -> true);
          int n = s.members.size();
          if (pts.size() != 1 || Math.abs(pts.get(0).value() - n) > Math.max(1, SET_TOLERANCE * n)) {
            problems.add(s + ": set cardinality points " + values(pts) + ", expected one ~" + n);
          }
          placement(problems, s, owner, pts);
          figures.add(s + " → " + owner + ": cardinality " + values(pts) + " (" + n + " members)");
        }
        case HISTOGRAM, TIMER -> {
          double[] sorted = s.values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
          double tol = PERCENTILE_TOLERANCE * (sorted[sorted.length - 1] - sorted[0]);
          StringBuilder fig = new StringBuilder(s + " → " + owner + ":");
          for (double p : PERCENTILES) {
            List<Point> pts = atGlobals(percentileName(s.name, p), x -> true);
            double exact = quantile(sorted, p);
            if (pts.size() != 1 || Math.abs(pts.get(0).value() - exact) > tol) {
              problems.add(s + ": p" + p + " points " + values(pts) + ", expected one within " + fmt(tol) + " of " + fmt(exact));
            }
            placement(problems, s, owner, pts);
            fig.append(String.format(Locale.ROOT, " p%d %s (exact %s)", (int) (p * 100), values(pts), fmt(exact)));
          }
          if (s.globalOnly) {
            globalAggregates(problems, s, owner, sorted, fig);
            figures.add(fig.toString());
            continue;
          }
          // Min, max and count of a mixed-scope histogram are each local's own, over what it was sent.
          for (String l : s.locals) {
            double[] mine = t.lines.get(l).stream().filter(x -> x.startsWith(s.name + ":"))
                .mapToDouble(x -> Double.parseDouble(x.substring(s.name.length() + 1, x.indexOf('|')))).sorted().toArray();
            List<Point> min = sink.points(l, s.name + ".min");
            List<Point> max = sink.points(l, s.name + ".max");
            List<Point> count = sink.points(l, s.name + ".count");
            if (min.size() != 1 || min.get(0).value() != mine[0] || max.size() != 1
                || max.get(0).value() != mine[mine.length - 1] || count.size() != 1 || count.get(0).sum() != mine.length) {
              problems.add(s + ": at local " + l + " min " + values(min) + " max " + values(max) + " count "
                  + values(count) + ", expected " + fmt(mine[0]) + ", " + fmt(mine[mine.length - 1]) + ", " + mine.length);
            }
            fig.append(" | ").append(l).append(" min/max/count ").append(values(min)).append('/').append(values(max))
                .append('/').append(count.stream().map(x -> fmt(x.sum())).toList());
          }
          figures.add(fig.toString());
        }
      }
    }
    figures.add("series per global (ring placement): " + perGlobal);
    if (!sink.unreadable.isEmpty()) problems.add("unreadable series POSTs at the sink: " + sink.unreadable);
    return problems;
  }

  /**
   * A global-scope histogram's min, max and count are flushed by its global, over every local's
   * values, and by no local (a global that got it as mixed would flush none of them).
   */
  private void globalAggregates(List<String> problems, Traffic.Series s, String owner, double[] sorted, StringBuilder fig) {
    List<Point> min = atGlobals(s.name + ".min", x -> true);
    List<Point> max = atGlobals(s.name + ".max", x -> true);
    List<Point> count = atGlobals(s.name + ".count", x -> true);
    if (min.size() != 1 || min.get(0).value() != sorted[0] || max.size() != 1 || max.get(0).value() != sorted[sorted.length - 1]
        || count.size() != 1 || count.get(0).sum() != sorted.length) {
      problems.add(s + ": at the globals min " + values(min) + " max " + values(max) + " count " + values(count)
          + ", expected " + fmt(sorted[0]) + ", " + fmt(sorted[sorted.length - 1]) + ", " + sorted.length);
    }
    placement(problems, s, owner, min);
    placement(problems, s, owner, count);
    for (String l : s.locals) {
      if (!sink.points(l, s.name + ".count").isEmpty()) problems.add(s + ": flushed by local " + l + " as well");
    }
    fig.append(" | global min/max/count ").append(values(min)).append('/').append(values(max)).append('/')
        .append(count.stream().map(x -> fmt(x.sum())).toList());
  }

  private static void placement(List<String> problems, Traffic.Series s, String owner, List<Point> pts) {
    Set<String> hosts = pts.stream().map(Point::host).collect(Collectors.toCollection(TreeSet::new));
    if (!pts.isEmpty() && !hosts.equals(Set.of(owner))) {
      problems.add(s + ": flushed by " + hosts + ", but the ring places it on " + owner);
    }
  }

  /**
   * The q-quantile as a t-digest estimates it on distinct values: each value is a centroid of
   * weight 1 centred on its rank, so the quantile at rank {@code q*n} interpolates between the
   * values whose centres surround it.
   */
  static double quantile(double[] sorted, double q) {
    double pos = q * sorted.length - 0.5;
    if (pos <= 0) return sorted[0];
    if (pos >= sorted.length - 1) return sorted[sorted.length - 1];
    int i = (int) Math.floor(pos);
    return sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]);
  }

  private static List<String> values(List<Point> pts) {
    return pts.stream().map(p -> fmt(p.value())).toList();
  }

  static String fmt(double d) {
    return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : String.format(Locale.ROOT, "%.3f", d);
  }

  /**
   * The proxy's own accounting once idle: it received exactly what the locals forwarded, forwarded
   * all of it, dropped nothing, and {@code received = forwarded + dropped + queued}.
   */
  /**
   * Sends the traffic, waits for the flush, checks the globals and the proxy's accounting, then
   * stops the proxy and checks its last words: everything it received forwarded, nothing dropped.
   */
  void run(Traffic t) throws Exception {
    send(t);
    awaitFlushed(t);
    List<String> problems = new ArrayList<>(check(t));
    problems.addAll(checkProxy(t.forwardedByAll()));
    System.out.println("interop " + name + ":\n  " + String.join("\n  ", figures)
        + "\n  Veneur complaints: " + complaints());
    org.junit.jupiter.api.Assertions.assertTrue(problems.isEmpty(), "interop " + name + ":\n  "
        + String.join("\n  ", problems) + "\nVeneur complaints: " + complaints() + "\nproxy log:\n" + proxy.log());
    // A global that refused an import, or a local that failed to forward, says so in its log.
    org.junit.jupiter.api.Assertions.assertTrue(complaints().isEmpty(), "Veneur servers complained: " + complaints());
    org.junit.jupiter.api.Assertions.assertEquals(0, proxy.terminate(Duration.ofSeconds(30)), proxy.log());
    ProxyProcess.StopSummary stop = proxy.stopSummary();
    org.junit.jupiter.api.Assertions.assertTrue(stop != null && stop.received() == t.forwardedByAll()
        && stop.forwarded() == stop.received() && stop.dropped() == 0,
        "the proxy's last words: " + (stop == null ? proxy.log() : stop.line()));
  }

  List<String> checkProxy(long expectedMetrics) {
    List<String> problems = new ArrayList<>();
    if (!DebugState.awaitIdle(proxy, proxyPort, Duration.ofSeconds(20))) problems.add("the proxy did not settle");
    JsonObject state = DebugState.get(proxyPort);
    String acc = DebugState.accountingProblem(state, true);
    if (acc != null) problems.add(acc);
    long received = DebugState.counter(state, "received");
    long forwarded = DebugState.counter(state, "forwarded");
    long dropped = state == null ? -1 : state.getJsonObject("counters").getLong("dropped_total", -1L);
    if (received != expectedMetrics) problems.add("the proxy received " + received + " metrics, the locals forwarded " + expectedMetrics);
    if (forwarded != received) problems.add("the proxy forwarded " + forwarded + " of " + received);
    if (dropped != 0) problems.add("the proxy dropped " + dropped + ": " + (state == null ? "" : state.getJsonObject("counters").encode()));
    figures.add("proxy /debug/state: received " + received + ", forwarded " + forwarded + ", dropped " + dropped
        + " (the locals forwarded " + expectedMetrics + ")");
    return problems;
  }

  /** Warnings, errors and panics any Veneur server logged, by server. */
  Map<String, List<String>> complaints() {
    Map<String, List<String>> c = new LinkedHashMap<>();
    for (VeneurProcess v : all()) if (!v.complaints().isEmpty()) c.put(v.hostname, v.complaints());
    return c;
  }

  private List<VeneurProcess> all() {
    List<VeneurProcess> a = new ArrayList<>(locals.values());
    a.addAll(globals);
    return a;
  }

  /** Stops the locals, then the proxy, then the globals and the sink; keeps their logs under target/. */
  @Override
  public void close() {
    for (VeneurProcess l : locals.values()) l.close();
    if (proxy != null) {
      proxy.kill();
      proxy.saveLog("interop-" + name + "-proxy");
    }
    for (VeneurProcess g : globals) g.close();
    for (VeneurProcess v : all()) v.saveLog("interop-" + name + "-" + v.hostname);
    sink.close();
  }
}
