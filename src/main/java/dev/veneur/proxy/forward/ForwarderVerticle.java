package dev.veneur.proxy.forward;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Histogram;
import com.codahale.metrics.Timer;
import dev.veneur.proxy.ProxyContext;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Exclusion;
import dev.veneur.proxy.bus.Health;
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
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Forwards to one global Veneur. Metric chunks queue here until a batch is full (by count or
 * bytes) or has lingered long enough, then go out as one deflated JSON array over a keep-alive
 * connection, with a bounded number of POSTs in flight. A destination's troubles stay in its own
 * forwarder: other destinations never wait on it.
 *
 * <p>Every batch settles exactly once: delivered (2xx), or dropped with a cause. Between, a failed
 * POST (I/O error, timeout, 429, 5xx) is retried with exponential backoff and jitter within
 * {@code forward_retry_budget} of its first attempt; another 4xx is final ({@code rejected}). A 2xx
 * is never retried, so a retry cannot duplicate a batch the global confirmed.
 *
 * <p>After {@code eject_after_failures} consecutive failures the forwarder reports its destination
 * unhealthy to the ring. If the ring takes it out of routing, every batch held here goes back to
 * the ring to be routed to the new owners, and the forwarder probes {@code GET /healthcheck} on a
 * backoff until the global answers, then asks to be re-admitted.
 */
public final class ForwarderVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ForwarderVerticle.class);
  private static final long MAX_RETRY_BACKOFF_MS = 2_000;
  private static final long MAX_PROBE_INTERVAL_MS = 30_000;

  private final ProxyContext ctx;
  private final String destination;
  private final ProxyMetrics metrics;
  private WebClient client;
  private BatchEncoder encoder;
  private MessageConsumer<MetricChunk> consumer;
  private MessageConsumer<Exclusion> control;
  private String url;
  private String healthUrl;

  private List<MetricChunk> pending = new ArrayList<>();
  private int pendingMetrics;
  private long pendingBytes;
  private long lingerTimer = -1;
  /** Batches ready to POST, oldest first (retries go to the front). */
  private final ArrayDeque<Batch> ready = new ArrayDeque<>();
  /** Batches waiting out a retry backoff, with their timer. */
  private final Map<Batch, Long> waiting = new LinkedHashMap<>();
  /** Failed batches held while the ring decides whether to eject this destination. */
  private final List<Batch> held = new ArrayList<>();
  private final Set<Batch> inflight = new LinkedHashSet<>();

  private int consecutiveFailures;
  private boolean reportedDown;
  private boolean excluded;
  private boolean leaving;
  private long probeTimer = -1;
  private long probeDelayMs;
  private Promise<Void> drained;
  private Timer postTimer;
  private Timer proxyTimer;
  private Histogram bodyBytes;
  private Counter posts;
  private Counter byDestination;

  private static final class Batch {
    final List<MetricChunk> chunks;
    final int metrics;
    final long bytes;
    Buffer body;
    long deadlineNanos;
    int attempts;
    boolean settled;

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
    healthUrl = destination + "/healthcheck";
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
    proxyTimer = metrics.timer(ProxyMetrics.PROXY_DURATION);
    bodyBytes = metrics.registry().histogram(ProxyMetrics.FORWARD_BYTES);
    posts = metrics.registry().counter(ProxyMetrics.FORWARD_POSTS);
    byDestination = metrics.counter(ProxyMetrics.BY_DESTINATION, "destination", destination);
    control = vertx.eventBus().consumer(Addresses.forwarderControl(destination),
        m -> applyExclusion(m.body().excluded()));
    consumer = vertx.eventBus().consumer(Addresses.forwarder(destination), this::onChunk);
    LOG.info("forwarding to {}", url);
    return control.completion().compose(v -> consumer.completion());
  }

  private void onChunk(Message<MetricChunk> m) {
    MetricChunk chunk = m.body();
    m.reply(null);
    if (excluded) {
      // Routed on a ring snapshot from before the ejection: send it on to its new owner.
      handBack(List.of(chunk));
      return;
    }
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
    while (inflight.size() < ctx.config().maxIdleConnsPerHost && !ready.isEmpty()) {
      post(ready.poll());
    }
    if (drained != null && inflight.isEmpty() && ready.isEmpty() && waiting.isEmpty() && held.isEmpty()) {
      drained.tryComplete();
    }
  }

  private void post(Batch batch) {
    ProxyConfig cfg = ctx.config();
    if (batch.body == null) {
      if (encoder.level() != cfg.forwardCompressionLevel) {
        encoder.close();
        encoder = new BatchEncoder(cfg.forwardCompressionLevel);
      }
      encoder.encode(batch.chunks);
      // Kept for retries: the same bytes go out again, never re-encoded.
      batch.body = Buffer.buffer(java.util.Arrays.copyOf(encoder.bytes(), encoder.length()));
      batch.deadlineNanos = System.nanoTime() + cfg.forwardRetryBudget.toNanos();
      bodyBytes.update(batch.body.length());
    }
    batch.attempts++;
    inflight.add(batch);
    posts.inc();
    long started = System.nanoTime();
    client.postAbs(url)
        .putHeader(HttpHeaders.CONTENT_TYPE.toString(), "application/json")
        .putHeader(HttpHeaders.CONTENT_ENCODING.toString(), "deflate")
        .timeout(cfg.forwardTimeout.toMillis())
        .sendBuffer(batch.body)
        .onComplete(ar -> {
          inflight.remove(batch);
          postTimer.update(System.nanoTime() - started, TimeUnit.NANOSECONDS);
          if (!batch.settled) outcome(batch, ar.succeeded() ? ar.result() : null, ar.cause());
          pump();
        });
  }

  private void outcome(Batch batch, HttpResponse<Buffer> response, Throwable error) {
    if (response != null && response.statusCode() / 100 == 2) {
      settle(batch, null);
      consecutiveFailures = 0;
      if (reportedDown) reportHealthy();
      return;
    }
    String cause = response != null ? "http_" + response.statusCode() / 100 + "xx"
        : error instanceof TimeoutException || String.valueOf(error).contains("timeout") ? "timeout" : "io";
    metrics.counter(ProxyMetrics.FORWARD_ERRORS, "cause", cause).inc();
    String what = response != null ? "HTTP " + response.statusCode() : String.valueOf(error);
    boolean retryable = response == null || response.statusCode() == 429 || response.statusCode() >= 500;
    if (!retryable) {
      // The global is up and says the data is bad; sending it again would not help.
      LOG.warn("{} refused {} metrics ({}); dropped", url, batch.metrics, what);
      settle(batch, "rejected");
      return;
    }
    consecutiveFailures++;
    LOG.debug("forward of {} metrics to {} failed (attempt {}): {}", batch.metrics, url, batch.attempts, what);
    if (leaving || excluded) {
      handBack(batch);
    } else if (ctx.config().ejectAfterFailures > 0 && consecutiveFailures >= ctx.config().ejectAfterFailures
        && !ctx.stopping()) {
      held.add(batch);
      if (!reportedDown) reportDown(what);
    } else {
      retryOrDrop(batch, what);
    }
  }

  private void retryOrDrop(Batch batch, String lastError) {
    long base = ctx.config().forwardRetryBackoff.toMillis() << Math.min(batch.attempts - 1, 16);
    long cap = Math.min(base, MAX_RETRY_BACKOFF_MS);
    long delay = cap / 2 + ThreadLocalRandom.current().nextLong(cap / 2 + 1);
    // Every batch gets at least one retry, even when a single attempt (a forward_timeout longer
    // than the budget) used the whole budget: that is what lets a hanging global's first batches
    // wait for its ejection and go elsewhere instead of being dropped.
    boolean retriesOff = ctx.config().forwardRetryBudget.isZero();
    if (retriesOff || batch.attempts >= 2 && System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delay) > batch.deadlineNanos) {
      LOG.warn("dropped {} metrics for {} after {} attempts within forward_retry_budget; last error: {}",
          batch.metrics, url, batch.attempts, lastError);
      settle(batch, "retries_exhausted");
      return;
    }
    long timer = vertx.setTimer(Math.max(1, delay), t -> {
      if (waiting.remove(batch) == null) return;
      ready.addFirst(batch);
      pump();
    });
    waiting.put(batch, timer);
  }

  private void settle(Batch batch, String dropCause) {
    batch.settled = true;
    batch.body = null;
    ctx.budget().add(destination, -batch.bytes);
    if (dropCause == null) {
      metrics.delivered(batch.metrics, batch.bytes);
      byDestination.inc(batch.metrics);
      long oldest = Long.MAX_VALUE;
      for (MetricChunk c : batch.chunks) oldest = Math.min(oldest, c.createdNanos);
      proxyTimer.update(System.nanoTime() - oldest, TimeUnit.NANOSECONDS);
    } else {
      metrics.dropped(batch.metrics, batch.bytes, dropCause);
    }
  }

  /** Gives a batch's metrics back to the ring, to be routed on its current members. */
  private void handBack(Batch batch) {
    batch.settled = true;
    batch.body = null;
    handBack(batch.chunks);
  }

  private void handBack(List<MetricChunk> chunks) {
    for (MetricChunk c : chunks) {
      ctx.budget().add(destination, -c.metricBytes());
      vertx.eventBus().request(Addresses.RING_REROUTE, c).onFailure(e ->
          metrics.dropped(c.count, c.metricBytes(), "no_destination"));
    }
  }

  /** Everything queued here, in any state but in flight, back to the ring. */
  private void handBackAllQueued() {
    if (lingerTimer >= 0) {
      vertx.cancelTimer(lingerTimer);
      lingerTimer = -1;
    }
    if (!pending.isEmpty()) handBack(pending);
    pending = new ArrayList<>();
    pendingMetrics = 0;
    pendingBytes = 0;
    for (Batch b : ready) handBack(b);
    ready.clear();
    for (Map.Entry<Batch, Long> w : waiting.entrySet()) {
      vertx.cancelTimer(w.getValue());
      handBack(w.getKey());
    }
    waiting.clear();
    for (Batch b : held) handBack(b);
    held.clear();
  }

  private void reportDown(String lastError) {
    reportedDown = true;
    LOG.warn("{} failed {} forwards in a row (last: {}); asking the ring to eject it", destination,
        consecutiveFailures, lastError);
    vertx.eventBus().<Exclusion>request(Addresses.RING_HEALTH, new Health(destination, false))
        .onComplete(ar -> applyExclusion(ar.succeeded() && ar.result().body().excluded()));
  }

  private void reportHealthy() {
    vertx.eventBus().<Exclusion>request(Addresses.RING_HEALTH, new Health(destination, true))
        .onComplete(ar -> {
          reportedDown = false;
          consecutiveFailures = 0;
          applyExclusion(ar.succeeded() && ar.result().body().excluded());
        });
  }

  /**
   * The ring's word on whether this destination routes. Out: hand everything back and probe.
   * In (readmitted, or every member is ejected so all must be tried): retry what was held.
   */
  private void applyExclusion(boolean out) {
    excluded = out;
    if (out) {
      handBackAllQueued();
      if (probeTimer < 0) {
        probeDelayMs = ctx.config().ejectProbeInterval.toMillis();
        probeTimer = vertx.setTimer(probeDelayMs, t -> probe());
      }
    } else {
      if (probeTimer >= 0) {
        vertx.cancelTimer(probeTimer);
        probeTimer = -1;
      }
      List<Batch> again = new ArrayList<>(held);
      held.clear();
      for (Batch b : again) retryOrDrop(b, "held while the ring decided");
    }
    pump();
  }

  private void probe() {
    probeTimer = -1;
    if (!excluded || leaving) return;
    client.getAbs(healthUrl)
        .timeout(Math.min(ctx.config().forwardTimeout.toMillis(), 5_000))
        .send()
        .onComplete(ar -> {
          if (!excluded || leaving) return;
          if (ar.succeeded() && ar.result().statusCode() / 100 == 2) {
            LOG.info("{} answers /healthcheck again; asking the ring to re-admit it", destination);
            reportHealthy();
            return;
          }
          probeDelayMs = Math.min(probeDelayMs * 2, MAX_PROBE_INTERVAL_MS);
          long jittered = probeDelayMs / 2 + ThreadLocalRandom.current().nextLong(probeDelayMs / 2 + 1);
          probeTimer = vertx.setTimer(Math.max(1, jittered), t -> probe());
        });
  }

  /**
   * On shutdown, sends what is queued and waits for it until shutdown_timeout; what is still
   * unsettled then is counted as dropped ({@code shutdown}). When the member merely left the
   * ring, hands everything queued back to the ring and waits for in-flight POSTs (a failure among
   * them is handed back too).
   */
  @Override
  public Future<?> stop() {
    return consumer.unregister().compose(v -> control.unregister()).compose(v -> {
      if (probeTimer >= 0) {
        vertx.cancelTimer(probeTimer);
        probeTimer = -1;
      }
      if (ctx.stopping()) {
        cutBatch();
        for (Map.Entry<Batch, Long> w : waiting.entrySet()) {
          vertx.cancelTimer(w.getValue());
          ready.addFirst(w.getKey());
        }
        waiting.clear();
        for (Batch b : held) retryOrDrop(b, "held at shutdown");
        held.clear();
      } else {
        leaving = true;
        handBackAllQueued();
      }
      drained = Promise.promise();
      pump();
      long deadline = ctx.config().shutdownTimeout.toMillis();
      return drained.future().timeout(deadline, TimeUnit.MILLISECONDS).recover(e -> {
        List<Batch> left = new ArrayList<>(ready);
        left.addAll(waiting.keySet());
        left.addAll(held);
        left.addAll(inflight);
        waiting.values().forEach(vertx::cancelTimer);
        ready.clear();
        waiting.clear();
        held.clear();
        int lost = 0;
        for (Batch b : left) {
          if (b.settled) continue;
          if (leaving) {
            // The member left and its global is still silent: give the metrics to the new owners
            // (a late 2xx from the old one would be ignored, so this can duplicate, never lose).
            handBack(b);
            continue;
          }
          lost += b.metrics;
          settle(b, "shutdown");
        }
        if (lost > 0) {
          LOG.error("dropped {} metrics for {} still undelivered at the shutdown deadline", lost, url);
        }
        return Future.succeededFuture();
      });
    }).onComplete(v -> {
      client.close();
      encoder.close();
    });
  }
}
