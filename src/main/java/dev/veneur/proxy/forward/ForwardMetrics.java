package dev.veneur.proxy.forward;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Histogram;
import com.codahale.metrics.Timer;
import dev.veneur.proxy.telemetry.EventGauge;
import dev.veneur.proxy.telemetry.ProxyMetrics;

/**
 * One forwarder's own metrics, registered once: v2's series exactly as the Go v2 proxy sent them,
 * and v14's ({@code proxied}, forward errors, failures by cause) tagged with how the global is
 * reached.
 */
final class ForwardMetrics {
  final Timer json;
  final Timer post;
  final Histogram bodyBytes;
  final Counter posts;
  /** Untagged, incremented by 0 on a delivery: the Go proxy's way of reporting the series at 0. */
  final Counter errorsZero;
  final EventGauge byDestination;
  final Counter proxied;
  /** Metrics passed back to be routed again: each costs a scan and a deflate more. */
  final Counter handedBack;
  private final Counter v14Errors;
  private final ProxyMetrics metrics;
  /** protocol:http or protocol:grpc: how this global is reached, on the v14 series. */
  private final String protocol;

  /** @param v14Tags tag {@code metrics_by_destination} as v14 does (a v14 file, or a gRPC global) */
  ForwardMetrics(ProxyMetrics metrics, String destination, boolean grpc, boolean v14Tags) {
    this.metrics = metrics;
    this.protocol = grpc ? "protocol:grpc" : "protocol:http";
    json = metrics.timer(ProxyMetrics.withTags(ProxyMetrics.FORWARD_DURATION, "part:json"));
    post = metrics.timer(ProxyMetrics.FORWARD_POST_DURATION);
    bodyBytes = metrics.registry().histogram(ProxyMetrics.FORWARD_BYTES);
    posts = metrics.registry().counter(ProxyMetrics.FORWARD_POSTS);
    errorsZero = metrics.registry().counter(ProxyMetrics.FORWARD_ERRORS);
    byDestination = metrics.eventGauge(v14Tags
        ? ProxyMetrics.withTags(ProxyMetrics.BY_DESTINATION, "destination:" + destination, protocol)
        : ProxyMetrics.tagged(ProxyMetrics.BY_DESTINATION, "destination", destination));
    handedBack = metrics.counter("forward.handed_back", "destination", destination);
    proxied = metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_PROXIED, protocol));
    v14Errors = metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_FORWARD_ERRORS, protocol));
  }

  /** A failed exchange, by its HTTP status (or {@code io} and {@code post} when there was none). */
  void error(GlobalClient.Outcome o) {
    v14Errors.inc();
    if (o.status() != 0) {
      metrics.counter(ProxyMetrics.FORWARD_ERRORS, "cause", Integer.toString(o.status())).inc();
    } else {
      metrics.counter(ProxyMetrics.FORWARD_ERRORS, "cause", "io").inc();
      metrics.counter(ProxyMetrics.FORWARD_ERRORS, "cause", "post").inc();
    }
  }

  /** {@code n} metrics that did not reach the global, by cause (v14's proxied failures). */
  void failed(String cause, int n) {
    metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_PROXIED_FAILED, "cause:" + cause, protocol)).inc(n);
  }
}
