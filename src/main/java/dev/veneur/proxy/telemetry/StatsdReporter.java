package dev.veneur.proxy.telemetry;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Gauge;
import com.codahale.metrics.Histogram;
import com.codahale.metrics.Meter;
import com.codahale.metrics.MetricFilter;
import com.codahale.metrics.MetricRegistry;
import com.codahale.metrics.ScheduledReporter;
import com.codahale.metrics.Snapshot;
import com.codahale.metrics.Timer;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.datagram.DatagramSocket;
import io.vertx.core.datagram.DatagramSocketOptions;
import java.util.HashMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reports the Dropwizard registry to a StatsD/DogStatsD agent over UDP, every
 * {@code stats_interval}. Written here rather than taken from Maven Central because the
 * maintained Dropwizard reporters either speak plain StatsD (no tags) or pull in a second StatsD
 * client with its own threads; this one is a page long and uses the Vert.x datagram socket.
 *
 * <p>A registry name {@code forward.error_total#cause:timeout} becomes the StatsD line
 * {@code veneur_proxy.forward.error_total:3|c|#cause:timeout}. Counters are sent as the increase
 * since the last report ({@code |c}), so summing them over time gives totals; gauges as
 * {@code |g}; timers and histograms as gauges of their recent distribution ({@code .p50},
 * {@code .p99}, {@code .max}; timers in nanoseconds) plus a {@code .count} counter. Lines are
 * packed into datagrams of at most 1432 bytes, as DogStatsD accepts.
 */
public final class StatsdReporter extends ScheduledReporter {
  private static final Logger LOG = LoggerFactory.getLogger(StatsdReporter.class);
  private static final int MAX_PACKET = 1432;

  private final DatagramSocket socket;
  private final String host;
  private final int port;
  private final String prefix;
  private final Map<String, Long> lastCounts = new HashMap<>();
  private boolean warned;

  public StatsdReporter(Vertx vertx, MetricRegistry registry, String hostPort, String prefix) {
    super(registry, "statsd", MetricFilter.ALL, TimeUnit.SECONDS, TimeUnit.NANOSECONDS);
    String hp = hostPort.replaceFirst("^udp://", "");
    int colon = hp.lastIndexOf(':');
    this.host = hp.substring(0, colon).replace("[", "").replace("]", "");
    this.port = Integer.parseInt(hp.substring(colon + 1));
    this.prefix = prefix;
    this.socket = vertx.createDatagramSocket(new DatagramSocketOptions());
  }

  public String target() {
    return host + ":" + port;
  }

  @Override
  @SuppressWarnings("rawtypes")
  public synchronized void report(SortedMap<String, Gauge> gauges, SortedMap<String, Counter> counters,
      SortedMap<String, Histogram> histograms, SortedMap<String, Meter> meters,
      SortedMap<String, Timer> timers) {
    Packer out = new Packer();
    gauges.forEach((name, g) -> {
      Object v = g.getValue();
      if (v instanceof Number) out.line(name, "", num((Number) v), "g");
    });
    counters.forEach((name, c) -> delta(out, name, "", c.getCount()));
    meters.forEach((name, m) -> delta(out, name, "", m.getCount()));
    histograms.forEach((name, h) -> {
      delta(out, name, ".count", h.getCount());
      distribution(out, name, h.getSnapshot());
    });
    timers.forEach((name, t) -> {
      delta(out, name, ".count", t.getCount());
      distribution(out, name, t.getSnapshot());
    });
    out.flush();
  }

  private void delta(Packer out, String name, String suffix, long count) {
    String key = name + suffix;
    long last = lastCounts.getOrDefault(key, 0L);
    lastCounts.put(key, count);
    if (count != last) out.line(name, suffix, Long.toString(count - last), "c");
  }

  private void distribution(Packer out, String name, Snapshot s) {
    if (s.size() == 0) return;
    out.line(name, ".p50", num(s.getMedian()), "g");
    out.line(name, ".p99", num(s.get99thPercentile()), "g");
    out.line(name, ".max", Long.toString(s.getMax()), "g");
  }

  private static String num(Number n) {
    if (n instanceof Double || n instanceof Float) {
      double d = n.doubleValue();
      if (Double.isNaN(d) || Double.isInfinite(d)) return "0";
      return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }
    return Long.toString(n.longValue());
  }

  /** Joins lines with '\n' into datagrams that stay under the safe UDP payload. */
  private final class Packer {
    private final StringBuilder packet = new StringBuilder(MAX_PACKET);

    void line(String registryName, String suffix, String value, String type) {
      int hash = registryName.indexOf('#');
      String metric = hash < 0 ? registryName : registryName.substring(0, hash);
      String tags = hash < 0 ? "" : registryName.substring(hash + 1);
      String line = prefix + metric + suffix + ":" + value + "|" + type + (tags.isEmpty() ? "" : "|#" + tags);
      if (packet.length() > 0 && packet.length() + 1 + line.length() > MAX_PACKET) flush();
      if (packet.length() > 0) packet.append('\n');
      packet.append(line);
    }

    void flush() {
      if (packet.length() == 0) return;
      socket.send(Buffer.buffer(packet.toString()), port, host).onComplete(ar -> {
        if (ar.failed() && !warned) {
          warned = true;
          LOG.warn("cannot send self-metrics to {}:{}: {}", host, port, ar.cause().getMessage());
        } else if (ar.succeeded()) {
          warned = false;
        }
      });
      packet.setLength(0);
    }
  }

  @Override
  public void stop() {
    try {
      super.stop();
    } finally {
      socket.close();
    }
  }
}
