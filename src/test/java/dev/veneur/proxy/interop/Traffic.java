package dev.veneur.proxy.interop;

import dev.veneur.proxy.routing.HashRing;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Known statsd traffic for real Veneur locals, and what their globals must flush for it. Each
 * series is written as DogStatsD lines for one named local; the same series from several locals
 * merges at its global (counter sums add, set members unite, histogram values pool), as it would
 * in a fleet. Only series a local forwards are described: global-scope counters and gauges
 * ({@code #veneurglobalonly}), sets, and histograms and timers, mixed-scope or global-scope.
 *
 * <p>A series can be given a name that a ring places on a chosen member ({@link #placeOn}), so a
 * test can make sure each generation of local reaches each generation of global whatever ports
 * the run was given.
 */
final class Traffic {
  enum Kind {
    COUNTER("counter"), GAUGE("gauge"), SET("set"), HISTOGRAM("histogram"), TIMER("timer");

    /** The JSON {@code type} a local forwards, which is also part of the ring key. */
    final String type;

    Kind(String type) {
      this.type = type;
    }
  }

  /** What the globals must flush for one series (name and tags), from every local that sent it. */
  static final class Series {
    final String name;
    final Kind kind;
    final List<String> tags;
    final Set<String> locals = new LinkedHashSet<>();
    long counterSum;
    double gauge;
    final Set<String> members = new TreeSet<>();
    final List<Double> values = new ArrayList<>();
    /** A global-scope histogram or timer ({@code #veneurglobalonly}): the global flushes min, max and count too. */
    boolean globalOnly;

    Series(String name, Kind kind, List<String> tags) {
      this.name = name;
      this.kind = kind;
      this.tags = List.copyOf(tags);
    }

    /** The JSON {@code tagstring}: a local's tags (without {@code veneurglobalonly}) joined by commas. */
    String tagstring() {
      return String.join(",", tags);
    }

    @Override
    public String toString() {
      return kind.type + " " + name + (tags.isEmpty() ? "" : " " + tags) + " from " + locals;
    }
  }

  final Map<String, Series> series = new LinkedHashMap<>();
  final Map<String, List<String>> lines = new LinkedHashMap<>();
  private HashRing ring;
  private String member;

  /**
   * Names of the series added next get the smallest numeric suffix that {@code ring} places on
   * {@code member} (the proxy's placement for v2 members, which this ring is).
   */
  Traffic placeOn(HashRing ring, String member) {
    this.ring = ring;
    this.member = member;
    return this;
  }

  /** Names of the series added next are taken as given. */
  Traffic placeAnywhere() {
    this.ring = null;
    this.member = null;
    return this;
  }

  private String name(String base, Kind kind, List<String> tags) {
    if (ring == null) return base;
    for (int k = 0; k < 10_000; k++) {
      String n = base + "." + k;
      if (member.equals(ring.route(n, kind.type, String.join(",", tags)))) return n;
    }
    throw new IllegalStateException("no name for " + base + " lands on " + member);
  }

  private Series series(String local, String base, Kind kind, List<String> tags) {
    String n = name(base, kind, tags);
    Series s = series.computeIfAbsent(n + "|" + kind + "|" + tags, k -> new Series(n, kind, tags));
    if (s.kind != kind) throw new IllegalArgumentException(n + " is already a " + s.kind);
    s.locals.add(local);
    return s;
  }

  private void line(String local, String line) {
    lines.computeIfAbsent(local, k -> new ArrayList<>()).add(line);
  }

  private static String tagSuffix(boolean globalOnly, List<String> tags) {
    List<String> all = new ArrayList<>();
    if (globalOnly) all.add("veneurglobalonly");
    all.addAll(tags);
    return all.isEmpty() ? "" : "|#" + String.join(",", all);
  }

  /** A global-scope counter: one line per value. */
  Series counter(String local, String base, List<String> tags, long... values) {
    Series s = series(local, base, Kind.COUNTER, tags);
    for (long v : values) {
      line(local, s.name + ":" + v + "|c" + tagSuffix(true, tags));
      s.counterSum += v;
    }
    return s;
  }

  /** A global-scope counter sent {@code times} times with value 1 at a sample rate: each counts 1/rate. */
  Series sampledCounter(String local, String base, int times, double rate) {
    Series s = series(local, base, Kind.COUNTER, List.of());
    for (int i = 0; i < times; i++) {
      line(local, s.name + ":1|c|@" + String.format(Locale.ROOT, "%s", rate) + tagSuffix(true, List.of()));
      s.counterSum += Math.round(1 / rate);
    }
    return s;
  }

  /** A global-scope gauge set to each value in turn: the last one stands. */
  Series gauge(String local, String base, double... values) {
    Series s = series(local, base, Kind.GAUGE, List.of());
    for (double v : values) {
      line(local, s.name + ":" + String.format(Locale.ROOT, "%s", v) + "|g" + tagSuffix(true, List.of()));
      s.gauge = v;
    }
    return s;
  }

  /** A set: each member sent {@code repeats} times. */
  Series set(String local, String base, List<String> members, int repeats) {
    Series s = series(local, base, Kind.SET, List.of());
    for (int r = 0; r < repeats; r++) for (String m : members) line(local, s.name + ":" + m + "|s");
    s.members.addAll(members);
    return s;
  }

  /** A mixed-scope histogram ({@code |h}) or timer ({@code |ms}): the global flushes its percentiles. */
  Series histogram(String local, String base, Kind kind, double... values) {
    if (kind != Kind.HISTOGRAM && kind != Kind.TIMER) throw new IllegalArgumentException(kind.toString());
    Series s = series(local, base, kind, List.of());
    String suffix = kind == Kind.TIMER ? "|ms" : "|h";
    for (double v : values) {
      line(local, s.name + ":" + String.format(Locale.ROOT, "%s", v) + suffix);
      s.values.add(v);
    }
    return s;
  }

  /**
   * A global-scope histogram or timer ({@code #veneurglobalonly}): a v14 local forwards its digest
   * with scope {@code Global} by gRPC, and the global flushes its percentiles and its min, max and
   * count over every local's values (the locals flush nothing of it). JSON cannot carry that scope,
   * so only a path that stays protobuf end to end keeps it.
   */
  Series globalHistogram(String local, String base, Kind kind, double... values) {
    if (kind != Kind.HISTOGRAM && kind != Kind.TIMER) throw new IllegalArgumentException(kind.toString());
    Series s = series(local, base, kind, List.of());
    s.globalOnly = true;
    String suffix = (kind == Kind.TIMER ? "|ms" : "|h") + tagSuffix(true, List.of());
    for (double v : values) {
      line(local, s.name + ":" + String.format(Locale.ROOT, "%s", v) + suffix);
      s.values.add(v);
    }
    return s;
  }

  /**
   * One local's usual load, each series named {@code prefix.<what>}: counters (one with a tag, one
   * sampled), a gauge set twice, a set of 200 members sent twice each, a histogram of 1..200 and a
   * timer of 10, 20, ... 1000 ms.
   */
  void standard(String local, String prefix) {
    counter(local, prefix + ".requests", List.of(), range(1, 20));
    counter(local, prefix + ".errors", List.of("code:500"), 7, 7, 7);
    sampledCounter(local, prefix + ".sampled", 4, 0.25);
    gauge(local, prefix + ".temperature", 42.5, 17.25);
    set(local, prefix + ".users", members("u", 0, 200), 2);
    histogram(local, prefix + ".latency", Kind.HISTOGRAM, doubles(1, 200, 1));
    histogram(local, prefix + ".db", Kind.TIMER, doubles(10, 1000, 10));
  }

  /** How many metrics a local forwards per flush for this traffic: one per series it sent. */
  long forwardedBy(String local) {
    return series.values().stream().filter(s -> s.locals.contains(local)).count();
  }

  long forwardedByAll() {
    return series.values().stream().mapToLong(s -> s.locals.size()).sum();
  }

  static long[] range(long from, long to) {
    long[] r = new long[(int) (to - from + 1)];
    for (int i = 0; i < r.length; i++) r[i] = from + i;
    return r;
  }

  static double[] doubles(double from, double to, double step) {
    int n = (int) Math.round((to - from) / step) + 1;
    double[] r = new double[n];
    for (int i = 0; i < n; i++) r[i] = from + i * step;
    return r;
  }

  static List<String> members(String prefix, int from, int to) {
    List<String> r = new ArrayList<>();
    for (int i = from; i < to; i++) r.add(prefix + i);
    return r;
  }
}
