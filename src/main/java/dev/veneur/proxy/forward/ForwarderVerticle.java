package dev.veneur.proxy.forward;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Exclusion;
import dev.veneur.proxy.bus.Health;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.core.Timers;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.routing.Handoff;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import java.util.List;
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
  /** HTTP(S), or gRPC for a member named {@code host:port} (as v14 names gRPC globals). */
  private GlobalLink link;
  private MessageConsumer<Handoff> consumer;
  private MessageConsumer<Exclusion> control;
  private String url;

  private BatchBuilder batches;
  private SendWindow window;
  private HealthProbe probe;
  private Drain drain;

  private Ejection ejection;
  private boolean leaving;
  private long sweepTimer = -1;

  private Delivery delivery;
  private ForwardMetrics fm;

  public ForwarderVerticle(ProxyContext ctx, String destination) {
    this.ctx = ctx;
    this.destination = destination;
    this.metrics = ctx.metrics();
  }

  @Override
  public Future<?> start() {
    ProxyConfig cfg = ctx.config();
    link = GlobalLink.open(vertx, cfg, destination);
    url = link.url;
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
    // v2's series exactly as the Go v2 proxy sent it; with the protocol tag v14 adds where a v14
    // operator reads it (a v14 file, or a global reached by gRPC).
    fm = new ForwardMetrics(metrics, destination, link.grpc(), link.grpc() || "v14".equals(cfg.compat.generation()));
    delivery = new Delivery(ctx, state, link, window, ejection, drain, fm, logs, vertx.eventBus(), new Delivery.Host() {
      @Override
      public void pump() {
        ForwarderVerticle.this.pump();
      }

      @Override
      public boolean leaving() {
        return leaving;
      }

      @Override
      public void handBack(Batch batch) {
        ForwarderVerticle.this.handBack(batch);
      }

      @Override
      public void hold(MetricChunk chunk) {
        ForwarderVerticle.this.hold(chunk);
      }

      @Override
      public void letGo(List<MetricChunk> chunks) {
        ForwarderVerticle.this.letGo(chunks);
      }

      @Override
      public boolean slowerThanPeers(long elapsedNanos) {
        return ForwarderVerticle.this.slowerThanPeers(elapsedNanos);
      }
    });
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
      handedBack(chunk.count);
      Dispatch.reroute(vertx.eventBus(), ctx, chunk, h.hops() + 1, destination);
      return;
    }
    hold(chunk);
    ProxyConfig cfg = ctx.config();
    batches.add(chunk, new BatchBuilder.Limits(cfg.batchMaxMetrics, cfg.batchMaxBytes, cfg.batchLinger.toMillis()));
    long queued = state.queuedBytes.get();
    ejection.queued(queued, cfg.maxQueuedBytesPerDestination,
        () -> Peers.drainsWorse(queued, Peers.others(ctx.destinations(), destination, s -> s.queuedBytes.get(), false))
            && Peers.noneOut(ctx.destinations(), destination));
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
    queueShrank();
  }

  /** The queue's size to {@link Ejection#dequeued}: a global out for a full queue asks back in once drained. */
  private void queueShrank() {
    ejection.dequeued(state.queuedBytes.get(), ctx.config().maxQueuedBytesPerDestination);
  }

  /** How many POSTs may be in flight: one trial while failing and not ejectable. */
  private int windowSize() {
    return ejection.trialOnly() ? 1 : ctx.config().maxIdleConnsPerHost;
  }

  private void pump() {
    if (drain.closing() || (ejection.excluded() && !ejection.keepsBacklog()) || leaving) {
      // Nothing new goes out: at the shutdown deadline what waits is dropped; out of the ring,
      // it goes to the new owners (halves of a refused batch, say, that came back late).
      window.takeReady(b -> {
        if (drain.closing()) delivery.drop(b, "shutdown");
        else handBack(b);
      });
    }
    for (Batch b; (b = window.next(windowSize())) != null;) delivery.post(b);
    drain.check(window.idle() && batches.isEmpty());
  }

  // ---------------------------------------------------------------- health

  /** Whether an answer this slow marks this global as slow, compared with the others ({@link Peers}). */
  private boolean slowerThanPeers(long elapsedNanos) {
    return Peers.slowerThan(elapsedNanos, Peers.others(ctx.destinations(), destination, s -> s.latencyEwmaNanos, true));
  }

  /**
   * The ring's word on whether this destination routes. Out: hand everything back and probe;
   * out for a full queue alone: keep draining what it holds ({@link Ejection#keepsBacklog}).
   * In while still failing (it is the last member): one trial POST at a time, and what waits past
   * the retry budget is dropped rather than held.
   */
  private void applyExclusion(boolean out) {
    state.excluded = out;
    if (out && ejection.keepsBacklog()) {
      // Out for a full queue: it drains what it holds and asks back in once below half the cap
      // (Ejection#dequeued); no probe, its own answers say whether it is alive. It may have
      // drained that far while the ring was being asked.
      probe.stop();
      queueShrank();
    } else if (out) {
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
    link.probe(Math.min(cfg.forwardTimeout.toMillis(), 5_000), answered);
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
      int dropped = window.sweepReady(b -> now - b.cutNanos > budget, b -> delivery.drop(b, "retries_exhausted"));
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
    for (MetricChunk c : chunks) {
      handedBack(c.count);
      Dispatch.reroute(vertx.eventBus(), ctx, c, 0, destination);
    }
  }

  private void handedBack(int metrics) {
    state.handedBackMetrics.addAndGet(metrics);
    fm.handedBack.inc(metrics);
  }

  /** Everything queued here, in any state but in flight, back to the ring. */
  private void handBackAllQueued() {
    handBack(batches.takeAll());
    window.takeQueued(this::handBack);
  }

  // ---------------------------------------------------------------- stopping

  /** Leaving the ring or stopping the proxy: see {@link Drain} for how each ends. */
  @Override
  public Future<?> stop() {
    link.stopWatching();
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
      link.close();
    });
  }

  /** The shutdown deadline: nothing new starts; what waits is dropped; in-flight POSTs finish. */
  private void closeQueue() {
    batches.cut();
    int[] lost = new int[1];
    window.takeQueued(b -> {
      lost[0] += b.metrics;
      delivery.drop(b, "shutdown");
    });
    if (lost[0] > 0) {
      LOG.error("dropped {} metrics for {} still queued at the shutdown deadline; {} POST(s) in flight "
          + "may still complete", lost[0], url, window.inFlight());
    }
    drain.check(window.idle() && batches.isEmpty());
  }
}
