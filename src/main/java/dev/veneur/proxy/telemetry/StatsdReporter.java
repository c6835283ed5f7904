package dev.veneur.proxy.telemetry;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Gauge;
import com.codahale.metrics.Histogram;
import com.codahale.metrics.Meter;
import com.codahale.metrics.Metric;
import com.codahale.metrics.MetricFilter;
import com.codahale.metrics.MetricRegistry;
import com.codahale.metrics.ScheduledReporter;
import com.codahale.metrics.Timer;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.datagram.DatagramSocket;
import io.vertx.core.datagram.DatagramSocketOptions;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reports the Dropwizard registry to a StatsD/DogStatsD agent (normally a local Veneur) over UDP,
 * every {@code stats_interval}, with the wire types the Go proxy used, so the agent builds the same
 * series ({@code veneur_proxy.proxy.duration_ns.99percentile}, {@code .count}, ...).
 *
 * <ul>
 *   <li>Timers ({@link IntervalTimer}): each sample recorded since the last report is one DogStatsD
 *       timing line, {@code name:<nanoseconds>|ms|#tags}; the Go proxy also sent nanoseconds as
 *       {@code |ms} (hence the {@code _ns} names). When an interval recorded more samples than its
 *       reservoir keeps, the kept uniform sample carries {@code |@<kept/recorded>}, so the agent's
 *       counts (sum of 1/rate) come out right.</li>
 *   <li>Histograms ({@link IntervalHistogram}): the same, as {@code |h}.</li>
 *   <li>Counters: the increase since the last report, {@code |c}; no line when a counter did not
 *       move, except a {@link DeltaCounter} given {@code inc(0)}, which sends {@code 0|c}.</li>
 *   <li>Gauges: {@code |g}. An {@link EventGauge} only in intervals where it was set; other gauges
 *       (state: queues, memory, JVM) every interval.</li>
 * </ul>
 *
 * <p>A registry name {@code forward.error_total#cause:io} becomes {@code
 * veneur_proxy.forward.error_total:1|c|#cause:io}. Lines are packed into datagrams of at most 1432
 * bytes (what DogStatsD agents accept) and never split; a single line longer than that is dropped
 * with a warning. Written here rather than taken from Maven Central because the maintained
 * Dropwizard reporters send snapshots (no per-sample timings) or pull in a second StatsD client with
 * its own threads; this one uses the Vert.x datagram socket.
 *
 * <p>The reporting state (counter baselines, samples, gauge marks) lives in the metrics themselves,
 * so a reporter replaced on reload carries on where the previous one stopped. Metrics of plain
 * Dropwizard kinds registered directly still work: plain counters and meters as deltas from this
 * reporter's start; plain timers and histograms cannot give their samples and are skipped with a
 * warning (create them with the registry's {@code timer(name)}/{@code histogram(name)}).
 */
public final class StatsdReporter extends ScheduledReporter {
  private static final Logger LOG = LoggerFactory.getLogger(StatsdReporter.class);
  /** Largest datagram sent: DogStatsD's default buffer, safe under a 1500-byte MTU. */
  public static final int MAX_PACKET = 1432;

  private final DatagramSocket socket;
  private final String host;
  private final int port;
  private final String prefix;
  /** Baselines for plain (non-{@link DeltaCounter}) counters and meters. */
  private final Map<String, Long> lastCounts = new HashMap<>();
  private final Map<String, String[]> wireNames = new HashMap<>();
  private final Set<String> warnedAbout = new HashSet<>();
  private long linesSent;
  private long datagramsSent;
  private volatile boolean warned;

  public StatsdReporter(Vertx vertx, MetricRegistry registry, String hostPort, String prefix) {
    super(registry, "statsd", MetricFilter.ALL, TimeUnit.SECONDS, TimeUnit.NANOSECONDS);
    String hp = hostPort.replaceFirst("^udp://", "");
    int colon = hp.lastIndexOf(':');
    this.host = hp.substring(0, colon).replace("[", "").replace("]", "");
    this.port = Integer.parseInt(hp.substring(colon + 1));
    this.prefix = prefix;
    this.socket = vertx.createDatagramSocket(new DatagramSocketOptions());
    // Plain counters that already exist count from here: what they hold was either reported by a
    // previous reporter or happened while none was configured.
    registry.getCounters().forEach((n, c) -> {
      if (!(c instanceof DeltaCounter)) lastCounts.put(n, c.getCount());
    });
    registry.getMeters().forEach((n, m) -> lastCounts.put(n, m.getCount()));
  }

  public String target() {
    return host + ":" + port;
  }

  /** Lines and datagrams handed to the socket so far (for tests and debugging). */
  public synchronized long linesSent() {
    return linesSent;
  }

  public synchronized long datagramsSent() {
    return datagramsSent;
  }

  @Override
  @SuppressWarnings("rawtypes")
  public synchronized void report(SortedMap<String, Gauge> gauges, SortedMap<String, Counter> counters,
      SortedMap<String, Histogram> histograms, SortedMap<String, Meter> meters,
      SortedMap<String, Timer> timers) {
    Packer out = new Packer();
    gauges.forEach((name, g) -> {
      if (g instanceof EventGauge eg && !eg.takeDirty()) return;
      Object v = g.getValue();
      if (v instanceof Number n) {
        String text = num(n);
        if (text != null) out.line(name, text, "g", 1.0);
      }
    });
    counters.forEach((name, c) -> {
      if (c instanceof DeltaCounter dc) {
        DeltaCounter.Delta d = dc.drain();
        if (d.worthALine()) out.line(name, Long.toString(d.delta()), "c", 1.0);
      } else {
        plainDelta(out, name, c.getCount());
      }
    });
    meters.forEach((name, m) -> plainDelta(out, name, m.getCount()));
    histograms.forEach((name, h) -> {
      if (h instanceof IntervalHistogram ih) {
        samples(out, name, ih.reservoir().drain(), "h");
      } else {
        unsupported(name, h);
      }
    });
    timers.forEach((name, t) -> {
      if (t instanceof IntervalTimer it) {
        samples(out, name, it.reservoir().drain(), "ms");
      } else {
        unsupported(name, t);
      }
    });
    out.flush();
  }

  private void plainDelta(Packer out, String name, long count) {
    long last = lastCounts.getOrDefault(name, 0L);
    lastCounts.put(name, count);
    if (count != last) out.line(name, Long.toString(count - last), "c", 1.0);
  }

  private void samples(Packer out, String name, IntervalReservoir.Drained d, String type) {
    long[] s = d.samples();
    if (s.length == 0) return;
    double rate = d.rate();
    for (long v : s) out.line(name, Long.toString(v), type, rate);
  }

  private void unsupported(String name, Metric m) {
    if (warnedAbout.add(name)) {
      LOG.warn("self-metric {} ({}) is not reported: its samples are not available; create it with the"
          + " registry's timer(name)/histogram(name)", name, m.getClass().getSimpleName());
    }
  }

  /** A gauge value as StatsD text, or null for values that have none (NaN, infinities). */
  static String num(Number n) {
    if (n instanceof Double || n instanceof Float) {
      double d = n.doubleValue();
      if (Double.isNaN(d) || Double.isInfinite(d)) return null;
      if (d == Math.rint(d) && Math.abs(d) < 1e15) return Long.toString((long) d);
      return BigDecimal.valueOf(d).toPlainString();
    }
    if (n instanceof BigDecimal b) return b.toPlainString();
    return Long.toString(n.longValue());
  }

  /** A sample rate as DogStatsD text, plain decimal (no exponent), enough digits to rebuild counts. */
  static String rate(double r) {
    return BigDecimal.valueOf(r).toPlainString();
  }

  /**
   * {@code [metric name, tags]} for a registry name, with the characters that would break a line
   * replaced: in the name {@code : | @ #} and whitespace; in the tags {@code |} and line breaks.
   */
  private String[] wireName(String registryName) {
    return wireNames.computeIfAbsent(registryName, rn -> {
      int hash = rn.indexOf('#');
      String metric = hash < 0 ? rn : rn.substring(0, hash);
      String tags = hash < 0 ? "" : rn.substring(hash + 1);
      return new String[] {prefix + metric.replaceAll("[:|@#\\s]", "_"), tags.replaceAll("[|\\r\\n]", "_")};
    });
  }

  /** Joins lines with '\n' into datagrams of at most {@link #MAX_PACKET} bytes; never splits one. */
  private final class Packer {
    private final byte[] packet = new byte[MAX_PACKET];
    private int length;
    private String lastName;
    private String lastType;
    private double lastRate = Double.NaN;
    private String tail;

    void line(String registryName, String value, String type, double rate) {
      String[] wire = wireName(registryName);
      // The part after the value is the same for every sample of a metric: build it once.
      if (!registryName.equals(lastName) || !type.equals(lastType) || rate != lastRate) {
        lastName = registryName;
        lastType = type;
        lastRate = rate;
        tail = "|" + type + (rate < 1.0 ? "|@" + rate(rate) : "") + (wire[1].isEmpty() ? "" : "|#" + wire[1]);
      }
      byte[] line = (wire[0] + ":" + value + tail).getBytes(StandardCharsets.UTF_8);
      if (line.length > MAX_PACKET) {
        if (warnedAbout.add("oversize:" + registryName)) {
          LOG.warn("self-metric {} not sent: its StatsD line is {} bytes, over the {}-byte datagram limit",
              registryName, line.length, MAX_PACKET);
        }
        return;
      }
      if (length > 0 && length + 1 + line.length > MAX_PACKET) flush();
      if (length > 0) packet[length++] = '\n';
      System.arraycopy(line, 0, packet, length, line.length);
      length += line.length;
      linesSent++;
    }

    void flush() {
      if (length == 0) return;
      Buffer b = Buffer.buffer(length);
      b.appendBytes(packet, 0, length);
      length = 0;
      datagramsSent++;
      try {
        socket.send(b, port, host).onComplete(ar -> {
          if (ar.failed()) {
            cannotSend(ar.cause());
          } else {
            warned = false;
          }
        });
      } catch (RuntimeException e) {
        // Vert.x closing under us (shutdown, tests): a warning once, not an error per report.
        cannotSend(e);
      }
    }
  }

  private void cannotSend(Throwable cause) {
    if (!warned) {
      warned = true;
      LOG.warn("cannot send self-metrics to {}:{}: {}", host, port, cause.getMessage());
    }
  }

  /**
   * Stops reporting and sends a last report. Blocks: it waits (up to a second or two) for the
   * reporting thread to finish, so call it on a worker, never on an event loop.
   */
  @Override
  public void stop() {
    OffLoop.check("StatsdReporter.stop");
    try {
      super.stop(); // reports one last time when it was started
    } finally {
      socket.close();
    }
  }
}
