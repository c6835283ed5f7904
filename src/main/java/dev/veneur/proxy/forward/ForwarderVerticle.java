package dev.veneur.proxy.forward;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Timer;
import dev.veneur.proxy.ProxyContext;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.net.URI;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Forwards to one global Veneur. Metric chunks queue here until a batch is full (by count or
 * bytes) or has lingered long enough, then go out as one deflated JSON array over a keep-alive
 * connection, with a bounded number of POSTs in flight. A destination's troubles stay in its own
 * forwarder: other destinations never wait on it.
 */
public final class ForwarderVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ForwarderVerticle.class);

  private final ProxyContext ctx;
  private final String destination;
  private final ProxyMetrics metrics;
  private WebClient client;
  private BatchEncoder encoder;
  private MessageConsumer<MetricChunk> consumer;
  private String url;

  private List<MetricChunk> pending = new ArrayList<>();
  private int pendingMetrics;
  private long pendingBytes;
  private long lingerTimer = -1;
  private final ArrayDeque<Batch> ready = new ArrayDeque<>();
  private int inflight;
  private Promise<Void> drained;
  private Timer postTimer;
  private Counter byDestination;

  private static final class Batch {
    final List<MetricChunk> chunks;
    final int metrics;
    final long bytes;

    Batch(List<MetricChunk> chunks, int metrics, long bytes) {
      this.chunks = chunks;
      this.metrics = metrics;
      this.bytes = bytes;
    }
  }

  public ForwarderVerticle(ProxyContext ctx, String destination) {
    this.ctx = ctx;
    this.destination = destination;
    this.metrics = ctx.metrics();
  }

  @Override
  public Future<?> start() {
    ProxyConfig cfg = ctx.config();
    URI u = URI.create(destination);
    url = destination + "/import";
    client = WebClient.create(vertx, new WebClientOptions()
        .setKeepAlive(true)
        .setIdleTimeout((int) Math.max(1, cfg.idleConnectionTimeout.toSeconds()))
        .setIdleTimeoutUnit(TimeUnit.SECONDS)
        .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, cfg.forwardTimeout.toMillis()))
        .setSsl("https".equals(u.getScheme()))
        .setUserAgent("veneur-proxy-jvm"),
        new PoolOptions().setHttp1MaxSize(cfg.maxIdleConnsPerHost));
    encoder = new BatchEncoder(cfg.forwardCompressionLevel);
    postTimer = metrics.timer(ProxyMetrics.FORWARD_DURATION);
    byDestination = metrics.counter(ProxyMetrics.BY_DESTINATION, "destination", destination);
    consumer = vertx.eventBus().consumer(Addresses.forwarder(destination), this::onChunk);
    LOG.info("forwarding to {}", url);
    return consumer.completion();
  }

  private void onChunk(Message<MetricChunk> m) {
    MetricChunk chunk = m.body();
    m.reply(null);
    pending.add(chunk);
    pendingMetrics += chunk.count;
    pendingBytes += chunk.metricBytes();
    ProxyConfig cfg = ctx.config();
    if (pendingMetrics >= cfg.batchMaxMetrics || pendingBytes >= cfg.batchMaxBytes) {
      cutBatch();
    } else if (lingerTimer < 0) {
      lingerTimer = vertx.setTimer(cfg.batchLinger.toMillis(), t -> {
        lingerTimer = -1;
        cutBatch();
      });
    }
  }

  private void cutBatch() {
    if (lingerTimer >= 0) {
      vertx.cancelTimer(lingerTimer);
      lingerTimer = -1;
    }
    if (pendingMetrics == 0) return;
    ready.add(new Batch(pending, pendingMetrics, pendingBytes));
    pending = new ArrayList<>();
    pendingMetrics = 0;
    pendingBytes = 0;
    pump();
  }

  private void pump() {
    while (inflight < ctx.config().maxIdleConnsPerHost && !ready.isEmpty()) {
      post(ready.poll());
    }
    if (drained != null && inflight == 0 && ready.isEmpty()) drained.tryComplete();
  }

  private void post(Batch batch) {
    inflight++;
    encoder.encode(batch.chunks);
    Buffer body = Buffer.buffer(java.util.Arrays.copyOf(encoder.bytes(), encoder.length()));
    metrics.registry().histogram(ProxyMetrics.FORWARD_BYTES).update(body.length());
    metrics.registry().counter(ProxyMetrics.FORWARD_POSTS).inc();
    long started = System.nanoTime();
    client.postAbs(url)
        .putHeader(HttpHeaders.CONTENT_TYPE.toString(), "application/json")
        .putHeader(HttpHeaders.CONTENT_ENCODING.toString(), "deflate")
        .timeout(ctx.config().forwardTimeout.toMillis())
        .sendBuffer(body)
        .onComplete(ar -> {
          inflight--;
          postTimer.update(System.nanoTime() - started, TimeUnit.NANOSECONDS);
          settle(batch, ar.succeeded() ? ar.result() : null, ar.cause());
          pump();
        });
  }

  private void settle(Batch batch, HttpResponse<Buffer> response, Throwable error) {
    ctx.budget().add(destination, -batch.bytes);
    if (response != null && response.statusCode() / 100 == 2) {
      metrics.delivered(batch.metrics, batch.bytes);
      byDestination.inc(batch.metrics);
      long oldest = Long.MAX_VALUE;
      for (MetricChunk c : batch.chunks) oldest = Math.min(oldest, c.createdNanos);
      metrics.timer(ProxyMetrics.PROXY_DURATION).update(System.nanoTime() - oldest, TimeUnit.NANOSECONDS);
      return;
    }
    String cause = response != null ? "http_" + response.statusCode() / 100 + "xx"
        : error instanceof TimeoutException || String.valueOf(error).contains("timeout") ? "timeout" : "io";
    metrics.counter(ProxyMetrics.FORWARD_ERRORS, "cause", cause).inc();
    metrics.dropped(batch.metrics, batch.bytes, "forward_failed");
    LOG.warn("forward of {} metrics to {} failed: {}", batch.metrics, url,
        response != null ? "HTTP " + response.statusCode() : String.valueOf(error));
  }

  /**
   * On shutdown, sends what is queued and waits for it; when the member merely left the ring,
   * hands queued metrics back to the ring to go to their new owners, and waits for in-flight
   * POSTs so their outcome is counted.
   */
  @Override
  public Future<?> stop() {
    return consumer.unregister().compose(v -> {
      if (lingerTimer >= 0) {
        vertx.cancelTimer(lingerTimer);
        lingerTimer = -1;
      }
      if (ctx.stopping()) {
        cutBatch();
      } else {
        List<MetricChunk> back = new ArrayList<>(pending);
        for (Batch b : ready) back.addAll(b.chunks);
        ready.clear();
        pending = new ArrayList<>();
        pendingMetrics = 0;
        pendingBytes = 0;
        for (MetricChunk c : back) {
          ctx.budget().add(destination, -c.metricBytes());
          vertx.eventBus().request(Addresses.RING_REROUTE, c).onFailure(e ->
              metrics.dropped(c.count, c.metricBytes(), "no_destination"));
        }
      }
      drained = Promise.promise();
      pump();
      long deadline = ctx.config().shutdownTimeout.toMillis();
      return drained.future().timeout(deadline, TimeUnit.MILLISECONDS).recover(e -> {
        int lost = 0;
        long bytes = 0;
        for (Batch b : ready) {
          lost += b.metrics;
          bytes += b.bytes;
        }
        ready.clear();
        if (lost > 0) {
          ctx.budget().add(destination, -bytes);
          metrics.dropped(lost, bytes, "shutdown");
          LOG.error("dropped {} metrics for {} still queued at the shutdown deadline", lost, url);
        }
        return Future.succeededFuture();
      });
    }).onComplete(v -> {
      client.close();
      encoder.close();
    });
  }
}
