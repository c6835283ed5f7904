package dev.veneur.proxy.ingest;

import dev.veneur.proxy.wire.Bridge;
import dev.veneur.proxy.wire.MetricPb;
import java.io.ByteArrayOutputStream;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Turns what a v14 local sends by gRPC ({@code MetricList} for {@code SendMetrics}, one
 * {@code Metric} per message for {@code SendMetricsV2}) into the JSON array {@code /import} carries,
 * so gRPC metrics take the same way through the proxy as JSON ones (scan, route by
 * {@code name + type + tagstring}, deflate per destination) and a series sent by either protocol
 * lands on the same global.
 *
 * <p>Each metric is checked as a v14 global reads it ({@link MetricPb#scan}); one that a global
 * would refuse or panic on is left out alone and counted by cause, never the whole message. A
 * message whose framing does not parse is refused whole, as a Go gRPC server refuses it.
 */
final class GrpcTranslator {
  private final MetricPb.Fields fields = new MetricPb.Fields();
  private final ByteArrayOutputStream json;
  private int valid;
  private int scopeLost;
  private final Map<String, Integer> dropped = new LinkedHashMap<>();
  private String firstProblem;

  GrpcTranslator(int initialBytes) {
    json = new dev.veneur.proxy.wire.FastBytes(Math.max(64, initialBytes));
    json.write('[');
  }

  /**
   * Adds the metrics of a {@code MetricList}.
   *
   * @return false if the list's framing does not parse (nothing of it was added)
   */
  boolean addList(byte[] b, int off, int len) {
    // Framing first: a message that does not parse is refused whole, with nothing half-added.
    MetricPb.ListReader check = new MetricPb.ListReader(b, off, len);
    while (check.next()) {
      // only walking the framing
    }
    if (check.malformed) return false;
    MetricPb.ListReader r = new MetricPb.ListReader(b, off, len);
    while (r.next()) addMetric(b, r.metricOff, r.metricLen);
    return true;
  }

  /** Adds one {@code Metric} (a {@code SendMetricsV2} message). */
  void addMetric(byte[] b, int off, int len) {
    if (!MetricPb.scan(b, off, len, fields)) {
      dropped.merge(fields.problem.cause, 1, Integer::sum);
      if (firstProblem == null) firstProblem = fields.problem.cause + ": " + fields.detail;
      return;
    }
    if (Bridge.lostScope(fields)) scopeLost++;
    if (valid > 0) json.write(',');
    Bridge.toJson(b, fields, json);
    valid++;
  }

  int valid() {
    return valid;
  }

  /** Global-scope histograms and timers that JSON can only carry as mixed (README: the bridge's one loss). */
  int scopeLost() {
    return scopeLost;
  }

  /** Metrics left out, by cause. */
  Map<String, Integer> dropped() {
    return dropped;
  }

  int droppedTotal() {
    int n = 0;
    for (int v : dropped.values()) n += v;
    return n;
  }

  /** The first reason a metric was left out, for a log line and the gRPC status message. */
  String firstProblem() {
    return firstProblem;
  }

  /** JSON bytes so far (without the closing bracket). */
  int size() {
    return json.size();
  }

  /** The JSON array of every metric added. */
  byte[] finish() {
    json.write(']');
    return json.toByteArray();
  }
}
