package dev.veneur.proxy.forward;

import dev.veneur.proxy.config.MemberAddress;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.TlsWatch;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.net.ClientSSLOptions;
import io.vertx.ext.web.client.WebClientOptions;
import java.net.URI;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How one global is reached, chosen by how its member is named: a URL is an HTTP(S) global ({@code
 * POST /import} of zlib JSON, {@code GET /healthcheck}); {@code host:port}, as Veneur v14 names gRPC
 * globals, is reached by gRPC ({@code SendMetrics} of a {@code MetricList}; a probe is an empty
 * call). With {@code forward_tls} the global is verified and the proxy shows its certificate; an
 * HTTPS global's client takes rewritten PEM files live.
 */
final class GlobalLink {
  private static final Logger LOG = LoggerFactory.getLogger(GlobalLink.class);

  /** Where batches go, for logs: {@code http(s)://.../import} or {@code grpc://host:port/method}. */
  final String url;
  private final String healthUrl;
  private final GlobalClient http;
  private final GrpcGlobalClient grpc;
  private final TlsWatch tlsWatch;

  private GlobalLink(String url, String healthUrl, GlobalClient http, GrpcGlobalClient grpc, TlsWatch tlsWatch) {
    this.url = url;
    this.healthUrl = healthUrl;
    this.http = http;
    this.grpc = grpc;
    this.tlsWatch = tlsWatch;
  }

  static GlobalLink open(Vertx vertx, ProxyConfig cfg, String destination) {
    if (MemberAddress.isGrpc(destination)) {
      HttpClientOptions o = new HttpClientOptions();
      if (cfg.forwardTls.isSet()) {
        // forward_tls: every gRPC global is reached over TLS (ALPN h2), verified against ca_file.
        ClientSSLOptions ssl = cfg.forwardTls.clientOptions(cfg.forwardTimeout.toMillis());
        o.setSsl(true).setUseAlpn(true)
            .setTrustOptions(ssl.getTrustOptions())
            .setKeyCertOptions(ssl.getKeyCertOptions())
            .setVerifyHost(true)
            .setSslHandshakeTimeout(ssl.getSslHandshakeTimeout())
            .setSslHandshakeTimeoutUnit(ssl.getSslHandshakeTimeoutUnit());
      }
      GrpcGlobalClient grpc = new GrpcGlobalClient(vertx, destination, o
          .setKeepAlive(true)
          .setIdleTimeout((int) Math.max(1, cfg.idleConnectionTimeout.toSeconds()))
          .setIdleTimeoutUnit(TimeUnit.SECONDS)
          .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, cfg.forwardTimeout.toMillis()))
          // One HTTP/2 connection carries up to this many calls at once (the send window's size).
          .setHttp2MultiplexingLimit(cfg.maxIdleConnsPerHost));
      String url = "grpc://" + destination + "/" + GrpcGlobalClient.SEND_METRICS;
      return new GlobalLink(url, url, null, grpc, null);
    }
    boolean https = "https".equals(URI.create(destination).getScheme());
    WebClientOptions o = new WebClientOptions();
    if (https && cfg.forwardTls.isSet()) {
      // forward_tls: the global verified against ca_file (else the JVM's CAs), our certificate shown.
      ClientSSLOptions ssl = cfg.forwardTls.clientOptions(cfg.forwardTimeout.toMillis());
      o.setTrustOptions(ssl.getTrustOptions())
          .setKeyCertOptions(ssl.getKeyCertOptions())
          .setSslHandshakeTimeout(ssl.getSslHandshakeTimeout())
          .setSslHandshakeTimeoutUnit(ssl.getSslHandshakeTimeoutUnit());
    }
    GlobalClient http = new GlobalClient(vertx, o
        .setKeepAlive(true)
        .setIdleTimeout((int) Math.max(1, cfg.idleConnectionTimeout.toSeconds()))
        .setIdleTimeoutUnit(TimeUnit.SECONDS)
        .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, cfg.forwardTimeout.toMillis()))
        .setSsl(https)
        .setVerifyHost(true)
        .setUserAgent("veneur-proxy-jvm"),
        new PoolOptions().setHttp1MaxSize(cfg.maxIdleConnsPerHost));
    TlsWatch watch = null;
    if (https && cfg.forwardTls.isSet()) {
      watch = TlsWatch.start(vertx, cfg.forwardTls, destination, files ->
          vertx.executeBlocking(() -> files.clientOptionsRead(cfg.forwardTimeout.toMillis()), false)
              .compose(http::updateSSLOptions)
              .onFailure(e -> LOG.error("{}: could not load the new forward_tls files ({}); keeping the old: {}",
                  destination, files, e.toString())));
    }
    return new GlobalLink(destination + "/import", destination + "/healthcheck", http, null, watch);
  }

  boolean grpc() {
    return grpc != null;
  }

  /** One exchange with one deadline; {@code onSlow} once if no answer came within {@code slowMs}. */
  void send(Buffer body, long deadlineMs, long slowMs, Runnable onSlow, Consumer<GlobalClient.Outcome> done) {
    if (grpc != null) grpc.send(body, deadlineMs, slowMs, onSlow, done);
    else http.post(url, body, deadlineMs, slowMs, onSlow, done);
  }

  /** Whether the global answers: {@code /healthcheck}, or an empty gRPC call. */
  void probe(long deadlineMs, Consumer<GlobalClient.Outcome> done) {
    if (grpc != null) grpc.probe(deadlineMs, done);
    else http.get(healthUrl, deadlineMs, done);
  }

  /** Leaving: rewritten PEM files no longer matter (a reload racing the close would only log). */
  void stopWatching() {
    if (tlsWatch != null) tlsWatch.stop();
  }

  void close() {
    stopWatching();
    if (grpc != null) grpc.close();
    else http.close();
  }
}
