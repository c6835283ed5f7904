package dev.veneur.proxy.forward;

import dev.veneur.proxy.core.Timers;
import com.codahale.metrics.Counter;
import com.codahale.metrics.Histogram;
import com.codahale.metrics.Timer;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Exclusion;
import dev.veneur.proxy.bus.Halves;
import dev.veneur.proxy.bus.Health;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.routing.Handoff;
import dev.veneur.proxy.telemetry.EventGauge;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.WebClientOptions;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Forwards to one global Veneur. Compressed chunks queue here until a batch is full (by metric
 * count or JSON bytes) or has lingered long enough; the batch goes out as one zlib body made by
 * concatenating the chunks ({@link BatchBody}), with a bounded number of POSTs in flight. The
 * heavy bytes work (deflate) was done on the HTTP event loops, so this verticle only joins arrays
 * and talks HTTP: one global takes a fraction of a core however much traffic it gets.
 *
 * <p>Every batch settles exactly once: forwarded (2xx), or dropped with a cause. Between, a failed
 * POST (I/O error, deadline, 429, 5xx) is retried with exponential backoff and jitter within
 * {@code forward_retry_budget} of its first attempt. A 4xx (other than 429) means the global will
 * not take some metric in the batch: the batch is split in halves and each half sent again, until
 * the refused metrics are isolated and dropped ({@code rejected}) without their neighbours.
 *
 * <p>A global that fails, answers slower than {@code eject_slow_after}, or cannot drain (its queue
 * reaches {@code max_queued_bytes_per_destination}) collects strikes; after
 * {@code eject_after_failures} in a row it asks the ring to eject it. Out of the ring, it hands
 * everything it holds back to be routed to the others, and probes {@code /healthcheck} on a
 * backoff until the global answers (fast) again. If the ring cannot eject it (it is the only
 * one), it keeps one trial POST in flight and drops what waits longer than the retry budget.
 *
 * <p>Each of those rules lives in a part of its own ({@link BatchBuilder}, {@link SendWindow},
 * {@link RetryPolicy}, {@link Peers}, {@link Ejection}, {@link HealthProbe}, {@link Drain}); this
 * verticle wires them to the event bus, the HTTP client, the accounting and the metrics.
 */
public final class ForwarderVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ForwarderVerticle.class);

  private final ProxyContext ctx;
  private final String destination;
  private final ProxyMetrics metrics;
  private final ProxyContext.DestinationState state = new ProxyContext.DestinationState();
  private final LogThrottle logs = new LogThrottle(LOG, 10_000);
  private GlobalClient client;
  /** For a member named {@code host:port} (as v14 names gRPC globals): gRPC instead of HTTP. */
  private GrpcGlobalClient grpc;
  private MessageConsumer<Handoff> consumer;
  private MessageConsumer<Exclusion> control;
  private String url;
  private String healthUrl;

  private BatchBuilder batches;
  private SendWindow window;
  private HealthProbe probe;
  private Drain drain;

  private Ejection ejection;
  private boolean leaving;
  private long sweepTimer = -1;

  private Timer jsonTimer;
  private Timer postTimer;
  private Histogram bodyBytes;
  private Counter posts;
  private Counter errorsZero;
  private EventGauge byDestination;
  /** protocol:http or protocol:grpc: how this global is reached, on the v14 series. */
  private String protocol;
  private Counter proxied;
  private Counter v14Errors;

  public ForwarderVerticle(ProxyContext ctx, String destination) {
    this.ctx = ctx;
    this.destination = destination;
    this.metrics = ctx.metrics();
  }

  @Override
  public Future<?> start() {
    ProxyConfig cfg = ctx.config();
    if (dev.veneur.proxy.config.MemberAddress.isGrpc(destination)) {
      url = "grpc://" + destination + "/" + GrpcGlobalClient.SEND_METRICS;
      healthUrl = url;
      io.vertx.core.http.HttpClientOptions grpcOptions = new io.vertx.core.http.HttpClientOptions();
      if (cfg.forwardTls.isSet()) {
        // forward_tls: every gRPC global is reached over TLS (ALPN h2), verified against ca_file.
        io.vertx.core.net.ClientSSLOptions ssl = cfg.forwardTls.clientOptions(cfg.forwardTimeout.toMillis());
        grpcOptions.setSsl(true).setUseAlpn(true)
            .setTrustOptions(ssl.getTrustOptions())
            .setKeyCertOptions(ssl.getKeyCertOptions())
            .setVerifyHost(true)
            .setSslHandshakeTimeout(ssl.getSslHandshakeTimeout())
            .setSslHandshakeTimeoutUnit(ssl.getSslHandshakeTimeoutUnit());
      }
      grpc = new GrpcGlobalClient(vertx, destination, grpcOptions
          .setKeepAlive(true)
          .setIdleTimeout((int) Math.max(1, cfg.idleConnectionTimeout.toSeconds()))
          .setIdleTimeoutUnit(TimeUnit.SECONDS)
          .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, cfg.forwardTimeout.toMillis()))
          // One HTTP/2 connection carries up to this many calls at once (the send window's size).
          .setHttp2MultiplexingLimit(cfg.maxIdleConnsPerHost));
    } else {
      URI u = URI.create(destination);
      url = destination + "/import";
      healthUrl = destination + "/healthcheck";
      WebClientOptions webOptions = new WebClientOptions();
      boolean https = "https".equals(u.getScheme());
      if (https && cfg.forwardTls.isSet()) {
        // forward_tls: the global verified against ca_file (else the JVM's CAs), our certificate shown.
        io.vertx.core.net.ClientSSLOptions ssl = cfg.forwardTls.clientOptions(cfg.forwardTimeout.toMillis());
        webOptions.setTrustOptions(ssl.getTrustOptions())
            .setKeyCertOptions(ssl.getKeyCertOptions())
            .setSslHandshakeTimeout(ssl.getSslHandshakeTimeout())
            .setSslHandshakeTimeoutUnit(ssl.getSslHandshakeTimeoutUnit());
      }
      client = new GlobalClient(vertx, webOptions
          .setKeepAlive(true)
          .setIdleTimeout((int) Math.max(1, cfg.idleConnectionTimeout.toSeconds()))
          .setIdleTimeoutUnit(TimeUnit.SECONDS)
          .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, cfg.forwardTimeout.toMillis()))
          .setSsl(https)
          .setVerifyHost(true)
          .setUserAgent("veneur-proxy-jvm"),
          new PoolOptions().setHttp1MaxSize(cfg.maxIdleConnsPerHost));
      if (https && cfg.forwardTls.isSet()) {
        GlobalClient c = client;
        tlsWatch = dev.veneur.proxy.core.TlsWatch.start(vertx, cfg.forwardTls, destination, files ->
            vertx.executeBlocking(() -> files.clientOptionsRead(cfg.forwardTimeout.toMillis()), false)
                .compose(c::updateSSLOptions)
                .onFailure(e -> LOG.error("{}: could not load the new forward_tls files ({}); keeping the old: {}",
                    destination, files, e.toString())));
      }
    }
    Timers timers = Timers.of(vertx);
    batches = new BatchBuilder(timers, b -> {
      window.add(b);
      pump();
    });
    window = new SendWindow(timers, this::pump);
    probe = new HealthProbe(timers, () -> ctx.config().ejectProbeInterval.toMillis(), this::probeOnce, () -> {
      LOG.info("{} answers /healthcheck again; asking the ring to re-admit it", destination);
      ejection.askBackIn();
    });
    drain = new Drain(timers);
    ejection = new Ejection(destination,
        healthy -> vertx.eventBus().<Exclusion>request(Addresses.RING_HEALTH, new Health(destination, healthy))
            .map(reply -> reply.body().excluded()),
        new Ejection.Listener() {
          @Override
          public void exclusion(boolean out) {
            applyExclusion(out);
          }

          @Override
          public void readmissionAnswered() {
            probe.readmitted(System.nanoTime());
          }

          @Override
          public void readmissionUnheard() {
            if (ejection.excluded() && !leaving) probe.start(System.nanoTime());
          }
        },
        () -> ctx.config().ejectAfterFailures, () -> !ctx.stopping() && !leaving);
    jsonTimer = metrics.timer(ProxyMetrics.withTags(ProxyMetrics.FORWARD_DURATION, "part:json"));
    postTimer = metrics.timer(ProxyMetrics.FORWARD_POST_DURATION);
    bodyBytes = metrics.registry().histogram(ProxyMetrics.FORWARD_BYTES);
    posts = metrics.registry().counter(ProxyMetrics.FORWARD_POSTS);
    errorsZero = metrics.registry().counter(ProxyMetrics.FORWARD_ERRORS);
    protocol = grpc != null ? "protocol:grpc" : "protocol:http";
    // v2's series exactly as the Go v2 proxy sent it; with the protocol tag v14 adds where a v14
    // operator reads it (a v14 file, or a global reached by gRPC).
    boolean v14Tags = grpc != null || "v14".equals(cfg.compat.generation());
    byDestination = metrics.eventGauge(v14Tags
        ? ProxyMetrics.withTags(ProxyMetrics.BY_DESTINATION, "destination:" + destination, protocol)
        : ProxyMetrics.tagged(ProxyMetrics.BY_DESTINATION, "destination", destination));
    proxied = metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_PROXIED, protocol));
    v14Errors = metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_FORWARD_ERRORS, protocol));
    ctx.destinations().put(destination, state);
    control = vertx.eventBus().consumer(Addresses.forwarderControl(destination),
        m -> ejection.apply(m.body().excluded()));
    consumer = vertx.eventBus().consumer(Addresses.forwarder(destination), this::onChunk);
    LOG.info("forwarding to {}", url);
    return control.completion().compose(v -> consumer.completion());
  }

  // ---------------------------------------------------------------- queueing

  private void onChunk(Message<Handoff> m) {
    Handoff h = m.body();
    m.reply(null);
    MetricChunk chunk = h.chunk();
    if (!chunk.land()) return;
    if (ejection.excluded() || leaving) {
      // Routed on a snapshot from before this destination left the ring: on to its new owner.
      Dispatch.reroute(vertx.eventBus(), ctx, chunk, h.hops() + 1, destination);
      return;
    }
    hold(chunk);
    ProxyConfig cfg = ctx.config();
    batches.add(chunk, new BatchBuilder.Limits(cfg.batchMaxMetrics, cfg.batchMaxBytes, cfg.batchLinger.toMillis()));
    long queued = state.queuedBytes.get();
    ejection.queued(queued, cfg.maxQueuedBytesPerDestination,
        () -> Peers.drainsWorse(queued, peers(s -> s.queuedBytes.get(), false)));
  }

  private void hold(MetricChunk c) {
    state.queuedMetrics.addAndGet(c.count);
    state.queuedBytes.addAndGet(c.bytes());
  }

  private void letGo(List<MetricChunk> chunks) {
    for (MetricChunk c : chunks) {
      state.queuedMetrics.addAndGet(-c.count);
      state.queuedBytes.addAndGet(-c.bytes());
    }
  }

  /** How many POSTs may be in flight: one trial while failing and not ejectable. */
  private int windowSize() {
    return ejection.trialOnly() ? 1 : ctx.config().maxIdleConnsPerHost;
  }

  private void pump() {
    if (drain.closing() || ejection.excluded() || leaving) {
      // Nothing new goes out: at the shutdown deadline what waits is dropped; out of the ring,
      // it goes to the new owners (halves of a refused batch, say, that came back late).
      window.takeReady(b -> {
        if (drain.closing()) drop(b, "shutdown");
        else handBack(b);
      });
    }
    for (Batch b; (b = window.next(windowSize())) != null;) post(b);
    drain.check(window.idle() && batches.isEmpty());
  }

  // ---------------------------------------------------------------- posting

  private void post(Batch batch) {
    ProxyConfig cfg = ctx.config();
    long t0 = System.nanoTime();
    Buffer body;
    if (grpc != null) {
      MetricListBody.Built built = MetricListBody.of(batch.chunks);
      body = built.body();
      if (built.left() > 0) {
        // Checked as JSON on the way in, but not translatable to protobuf (a histogram value that
        // is not a t-digest, say): dropped alone, counted by cause, once.
        batch.untranslated = built.untranslated();
        logs.warn("untranslatable", "dropped " + built.left() + " metric(s) for " + url
            + " that have no protobuf form (" + built.firstProblem() + "); sent the other " + built.metrics());
      }
    } else {
      // A retry builds the body again: the loss is counted on the first attempt only.
      boolean first = batch.attempts == 0;
      body = BatchBody.of(batch.chunks, lost -> {
        if (first) ctx.metrics().registry().counter("grpc.scope_lost_total").inc(lost);
      });
    }
    if (batch.attempts == 0) {
      jsonTimer.update(System.nanoTime() - t0, TimeUnit.NANOSECONDS);
      batch.deadlineNanos = System.nanoTime() + cfg.forwardRetryBudget.toNanos();
    }
    bodyBytes.update(body.length());
    // The body is a copy of the chunks for the time of the POST: it counts in the budget too.
    long held = body.length();
    ctx.budget().reserve(held);
    batch.attempts++;
    state.inFlight.set(window.inFlight());
    posts.inc();
    boolean[] struck = new boolean[1];
    long slowMs = cfg.ejectSlowAfter.toMillis();
    Runnable onSlow = () -> {
      // No answer yet after eject_slow_after: a strike now, not only when the deadline passes,
      // so a hanging global is out of the ring in seconds.
      if (slowerThanPeers(TimeUnit.MILLISECONDS.toNanos(slowMs))) {
        struck[0] = true;
        ejection.strike("no answer within eject_slow_after (" + slowMs + "ms)");
      }
    };
    java.util.function.Consumer<GlobalClient.Outcome> onOutcome = outcome -> {
      ctx.budget().release(held);
      window.ended();
      state.inFlight.set(window.inFlight());
      postTimer.update(outcome.elapsedNanos(), TimeUnit.NANOSECONDS);
      long ewma = state.latencyEwmaNanos;
      // Weighted to follow a change within a few answers.
      state.latencyEwmaNanos = ewma == 0 ? outcome.elapsedNanos() : (ewma + outcome.elapsedNanos()) / 2;
      byDestination.set(batch.metrics);
      outcome(batch, outcome, struck[0]);
      pump();
    };
    if (grpc != null) grpc.send(body, cfg.forwardTimeout.toMillis(), slowMs, onSlow, onOutcome);
    else client.post(url, body, cfg.forwardTimeout.toMillis(), slowMs, onSlow, onOutcome);
  }

  private void outcome(Batch batch, GlobalClient.Outcome o, boolean struck) {
    switch (RetryPolicy.verdict(o)) {
      case DELIVERED_BADLY -> {
        errorsZero.inc(0);
        forwarded(batch);
        String how = o.timedOut() ? "did not end within forward_timeout" : "broke off (" + o.error() + ")";
        if (!struck) ejection.strike("its " + o.status() + " answer " + how);
        logs.warn("endless", url + " answered " + o.status() + " but its answer " + how
            + "; counted delivered, the connection cut");
      }
      case DELIVERED -> {
        errorsZero.inc(0);
        forwarded(batch);
        long slowNanos = ctx.config().ejectSlowAfter.toNanos();
        if (slowNanos > 0 && o.elapsedNanos() > slowNanos && slowerThanPeers(o.elapsedNanos())) {
          if (!struck) ejection.strike("answered after " + o.elapsedNanos() / 1_000_000 + "ms");
        } else {
          ejection.healthyAnswer();
        }
      }
      case REFUSED -> {
        countError(o);
        refused(batch, describe(o));
      }
      case FAILED -> {
        countError(o);
        String what = describe(o);
        if (!struck) ejection.strike(what);
        logs.warn("fail", "forward of " + batch.metrics + " metrics to " + url + " failed (attempt "
            + batch.attempts + "): " + what);
        if (ejection.excluded() || leaving) handBack(batch);
        else retryOrDrop(batch, what);
      }
    }
  }

  private void countError(GlobalClient.Outcome o) {
    v14Errors.inc();
    if (o.status() != 0) {
      metrics.counter(ProxyMetrics.FORWARD_ERRORS, "cause", Integer.toString(o.status())).inc();
    } else {
      metrics.counter(ProxyMetrics.FORWARD_ERRORS, "cause", "io").inc();
      metrics.counter(ProxyMetrics.FORWARD_ERRORS, "cause", "post").inc();
    }
  }

  private String describe(GlobalClient.Outcome o) {
    if (o.status() != 0) return "HTTP " + o.status() + (o.excerpt().isEmpty() ? "" : ": " + o.excerpt());
    return o.timedOut() ? "no complete answer within forward_timeout (" + ctx.config().forwardTimeout.toMillis() + "ms)"
        : String.valueOf(o.error());
  }

  private void forwarded(Batch batch) {
    letGo(batch.chunks);
    int left = 0;
    for (java.util.Map.Entry<String, Integer> e : batch.untranslated.entrySet()) {
      left += e.getValue();
      failed("untranslated_" + e.getKey(), e.getValue());
    }
    proxied.inc(batch.metrics - left);
    ctx.accounting().forwardedExcept(batch.chunks, batch.untranslated);
  }

  private void drop(Batch batch, String cause) {
    letGo(batch.chunks);
    failed(cause, batch.metrics);
    ctx.accounting().dropped(batch.chunks, cause);
  }

  private void failed(String cause, int n) {
    metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_PROXIED_FAILED, "cause:" + cause, protocol)).inc(n);
  }

  private void retryOrDrop(Batch batch, String lastError) {
    ProxyConfig cfg = ctx.config();
    if (drain.closing()) {
      drop(batch, "shutdown");
      return;
    }
    long delay = RetryPolicy.backoffMs(cfg.forwardRetryBackoff, batch.attempts);
    if (!RetryPolicy.mayRetry(batch, System.nanoTime(), delay, cfg.forwardRetryBudget)) {
      logs.warn("retries_exhausted", "dropped " + batch.metrics + " metrics for " + url + " after "
          + batch.attempts + " attempts within forward_retry_budget; last error: " + lastError);
      drop(batch, "retries_exhausted");
      return;
    }
    window.retryAfter(batch, delay);
  }

  // ---------------------------------------------------------------- refused batches

  /** A 4xx: split the batch until the refused metrics are alone, then drop only them. */
  private void refused(Batch batch, String what) {
    if (batch.metrics <= 1 || batch.splitBudget[0] < 2) {
      logs.warn("rejected", url + " refused " + batch.metrics + " metric(s) (" + what + "); dropped as rejected");
      drop(batch, "rejected");
      return;
    }
    logs.warn("splitting", url + " refused a batch of " + batch.metrics + " metrics (" + what
        + "); sending it again in halves to isolate the metrics it refuses");
    Batch[] halves = batch.halves();
    if (halves != null) {
      window.addFirst(halves[1]);
      window.addFirst(halves[0]);
      return;
    }
    batch.splitBudget[0] -= 2;
    MetricChunk only = batch.chunks.get(0);
    // Splitting one chunk means inflating and deflating it: the HTTP verticles do that.
    window.begin();
    vertx.eventBus().<Halves>request(Addresses.INGEST_SPLIT, only,
        new DeliveryOptions().setSendTimeout(Addresses.SPLIT_TIMEOUT_MS)).onComplete(ar -> {
      window.ended();
      if (ar.succeeded()) landHalves(ar.result().body());
      if (ar.failed() || ar.result().body().first() == null || ar.result().body().second() == null) {
        if (ar.succeeded()) releaseHalves(ar.result().body());
        logs.warn("rejected", url + " refused " + batch.metrics + " metric(s) (" + what
            + ") and the batch could not be split; dropped as rejected");
        drop(batch, "rejected");
      } else {
        Halves h = ar.result().body();
        letGo(batch.chunks);
        ctx.accounting().replaced(only, new MetricChunk[] {h.first(), h.second()}, "rejected");
        hold(h.first());
        hold(h.second());
        window.addFirst(new Batch(new ArrayList<>(List.of(h.second())), batch.splitBudget));
        window.addFirst(new Batch(new ArrayList<>(List.of(h.first())), batch.splitBudget));
      }
      pump();
    });
  }

  /** The halves were in transit from the HTTP verticle that split them: they are ours now. */
  private static void landHalves(Halves h) {
    if (h.first() != null) h.first().land();
    if (h.second() != null) h.second().land();
  }

  private void releaseHalves(Halves h) {
    if (h.first() != null) ctx.budget().release(h.first().bytes());
    if (h.second() != null) ctx.budget().release(h.second().bytes());
  }

  // ---------------------------------------------------------------- health

  /** Whether an answer this slow marks this global as slow, compared with the others ({@link Peers}). */
  private boolean slowerThanPeers(long elapsedNanos) {
    return Peers.slowerThan(elapsedNanos, peers(s -> s.latencyEwmaNanos, true));
  }

  /** A figure of every other global in the ring; with {@code answered}, only of those that answered. */
  private List<Long> peers(java.util.function.ToLongFunction<ProxyContext.DestinationState> figure, boolean answered) {
    List<Long> out = new ArrayList<>();
    ctx.destinations().forEach((d, s) -> {
      if (!d.equals(destination) && !s.excluded && (!answered || s.latencyEwmaNanos > 0)) {
        out.add(figure.applyAsLong(s));
      }
    });
    return out;
  }

  /**
   * The ring's word on whether this destination routes. Out: hand everything back and probe.
   * In while still failing (it is the last member): one trial POST at a time, and what waits past
   * the retry budget is dropped rather than held.
   */
  private void applyExclusion(boolean out) {
    state.excluded = out;
    if (out) {
      handBackAllQueued();
      if (!leaving) probe.start(System.nanoTime());
    } else {
      probe.stop();
    }
    if (ejection.trialOnly()) startSweeping();
    pump();
  }

  private void probeOnce(java.util.function.Consumer<Boolean> healthy) {
    if (!ejection.excluded() || leaving) {
      probe.stop();
      return;
    }
    ProxyConfig cfg = ctx.config();
    long slow = cfg.ejectSlowAfter.toNanos();
    java.util.function.Consumer<GlobalClient.Outcome> answered =
        o -> healthy.accept(o.ok() && (slow == 0 || o.elapsedNanos() <= slow));
    if (grpc != null) grpc.probe(Math.min(cfg.forwardTimeout.toMillis(), 5_000), answered);
    else client.get(healthUrl, Math.min(cfg.forwardTimeout.toMillis(), 5_000), answered);
  }

  /** While failing and not ejectable: drop what has waited past the retry budget, once a second. */
  private void startSweeping() {
    if (sweepTimer >= 0) return;
    sweepTimer = vertx.setPeriodic(1000, t -> {
      if (!ejection.trialOnly()) {
        vertx.cancelTimer(sweepTimer);
        sweepTimer = -1;
        return;
      }
      long budget = ctx.config().forwardRetryBudget.toNanos();
      long now = System.nanoTime();
      int dropped = window.sweepReady(b -> now - b.cutNanos > budget, b -> drop(b, "retries_exhausted"));
      if (dropped > 0) {
        logs.warn("expired", "dropped " + dropped + " metrics for " + url + " that waited past "
            + "forward_retry_budget while it keeps failing and no other global can take them");
      }
      drain.check(window.idle() && batches.isEmpty());
    });
  }

  // ---------------------------------------------------------------- handing back

  /** Gives a batch's metrics back, to be routed on the current ring. */
  private void handBack(Batch batch) {
    handBack(batch.chunks);
  }

  private void handBack(List<MetricChunk> chunks) {
    letGo(chunks);
    for (MetricChunk c : chunks) Dispatch.reroute(vertx.eventBus(), ctx, c, 0, destination);
  }

  /** Everything queued here, in any state but in flight, back to the ring. */
  private void handBackAllQueued() {
    handBack(batches.takeAll());
    window.takeQueued(this::handBack);
  }

  // ---------------------------------------------------------------- stopping

  /** Leaving the ring or stopping the proxy: see {@link Drain} for how each ends. */
  private dev.veneur.proxy.core.TlsWatch tlsWatch;

  @Override
  public Future<?> stop() {
    if (tlsWatch != null) tlsWatch.stop();
    return consumer.unregister().compose(v -> control.unregister()).compose(v -> {
      probe.stop();
      if (sweepTimer >= 0) vertx.cancelTimer(sweepTimer);
      sweepTimer = -1;
      Future<Void> done;
      if (ctx.stopping()) {
        batches.cut();
        window.hurryWaiting();
        done = drain.whenIdleOrDeadline(ctx.config().shutdownTimeout.toMillis(), this::closeQueue);
      } else {
        leaving = true;
        done = drain.whenIdle();
        handBackAllQueued();
      }
      pump();
      return done;
    }).onComplete(v -> {
      ctx.destinations().remove(destination, state);
      if (grpc != null) grpc.close();
      else client.close();
    });
  }

  /** The shutdown deadline: nothing new starts; what waits is dropped; in-flight POSTs finish. */
  private void closeQueue() {
    batches.cut();
    int[] lost = new int[1];
    window.takeQueued(b -> {
      lost[0] += b.metrics;
      drop(b, "shutdown");
    });
    if (lost[0] > 0) {
      LOG.error("dropped {} metrics for {} still queued at the shutdown deadline; {} POST(s) in flight "
          + "may still complete", lost[0], url, window.inFlight());
    }
    drain.check(window.idle() && batches.isEmpty());
  }
}
