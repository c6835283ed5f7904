package dev.veneur.proxy.ingest;

import dev.veneur.proxy.config.LogText;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.TlsWatch;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.ServerSSLOptions;
import org.slf4j.Logger;

/**
 * What every TLS listener of the proxy shares ({@code http_address} with {@code http_tls},
 * {@code grpc_tls_address}): the {@code tls} block's certificate and client verification, a
 * handshake bounded by {@code http_request_timeout}, failed handshakes counted by cause, and the
 * PEM files reloaded when they are rewritten on disk.
 */
public final class TlsListener {
  private TlsListener() {}

  /**
   * TLS on {@code o} from {@code cfg.tls}. The handshake must end within http_request_timeout, like
   * the request that follows it: a connection that never finishes one holds its slot no longer
   * than a slow request would.
   */
  public static HttpServerOptions secure(HttpServerOptions o, ProxyConfig cfg) {
    ServerSSLOptions ssl = cfg.tls.serverOptions(cfg.httpRequestTimeout.toMillis());
    return o.setSsl(true)
        .setKeyCertOptions(ssl.getKeyCertOptions())
        .setTrustOptions(ssl.getTrustOptions())
        .setClientAuth(ssl.getClientAuth())
        .setSslHandshakeTimeout(ssl.getSslHandshakeTimeout())
        .setSslHandshakeTimeoutUnit(ssl.getSslHandshakeTimeoutUnit());
  }

  /**
   * Counts {@code server}'s failed handshakes in {@code tls.handshake_errors_total} (with
   * {@code listener}), and watches the files; stop the watch with the listener.
   *
   * @param key the listener's config key, for logs
   */
  public static TlsWatch watch(Vertx vertx, HttpServer server, ProxyConfig cfg, ProxyMetrics metrics, LogThrottle refusals,
      Logger log, String listener, String key) {
    // A failed handshake is the client's business: counted by cause, logged now and then, and it
    // costs nothing else (its slot was held only until the handshake deadline).
    server.exceptionHandler(e -> {
      if (!(e instanceof javax.net.ssl.SSLException) && !(e.getCause() instanceof javax.net.ssl.SSLException)
          && !(e instanceof io.netty.handler.codec.DecoderException)) {
        log.debug("{}: {}", key, e.toString());
        return;
      }
      String cause = TlsWatch.cause(e);
      metrics.registry().counter(ProxyMetrics.withTags("tls.handshake_errors_total", "listener:" + listener,
          "cause:" + cause)).inc();
      refusals.warn("tls/" + cause, "a TLS handshake on " + key + " failed (" + cause + "): "
          + LogText.escape(String.valueOf(e.getMessage())));
    });
    return TlsWatch.start(vertx, cfg.tls, key, files ->
        server.updateSSLOptions(files.serverOptions(cfg.httpRequestTimeout.toMillis()), true)
            .onFailure(e -> log.error("{}: could not load the new TLS files ({}); keeping the old: {}",
                key, files, e.toString())));
  }
}
