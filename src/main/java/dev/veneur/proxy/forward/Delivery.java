package dev.veneur.proxy.forward;

import dev.veneur.proxy.bus.Halves;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.telemetry.LogThrottle;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.EventBus;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Sending a batch and what its answer means: the body built for the global's protocol (and
 * counted in the memory budget while it exists), one exchange with one deadline, then the verdict
 * ({@link RetryPolicy}): delivered (and whether slowly, a strike), refused (the refused metrics
 * isolated by {@link Isolation}), or failed (a strike; retried within the budget, handed back if
 * the global is out of the ring, dropped by cause otherwise). Every batch settles here exactly once,
 * in the accounting and in the v14 series.
 */
final class Delivery {
  /** What the forwarder around it provides. */
  interface Host {
    void pump();

    boolean leaving();

    void handBack(Batch batch);

    void hold(MetricChunk chunk);

    void letGo(List<MetricChunk> chunks);

    /** Whether an answer this slow marks the global as slow, compared with the others. */
    boolean slowerThanPeers(long elapsedNanos);
  }

  private final ProxyContext ctx;
  private final ProxyContext.DestinationState state;
  private final GlobalLink link;
  private final String url;
  private final SendWindow window;
  private final Ejection ejection;
  private final Drain drain;
  private final ForwardMetrics fm;
  private final LogThrottle logs;
  private final Host host;
  private final Isolation isolation;

  Delivery(ProxyContext ctx, ProxyContext.DestinationState state, GlobalLink link, SendWindow window, Ejection ejection,
      Drain drain, ForwardMetrics fm, LogThrottle logs, EventBus bus, Host host) {
    this.ctx = ctx;
    this.state = state;
    this.link = link;
    this.url = link.url;
    this.window = window;
    this.ejection = ejection;
    this.drain = drain;
    this.fm = fm;
    this.logs = logs;
    this.host = host;
    this.isolation = new Isolation(bus, ctx.budget(), window, logs, url, new Isolation.Queue() {
      @Override
      public void drop(Batch batch, String cause) {
        Delivery.this.drop(batch, cause);
      }

      @Override
      public void replaced(Batch batch, MetricChunk only, Halves h) {
        host.letGo(batch.chunks);
        ctx.accounting().replaced(only, new MetricChunk[] {h.first(), h.second()}, "rejected");
        host.hold(h.first());
        host.hold(h.second());
      }

      @Override
      public void pump() {
        host.pump();
      }
    });
  }

  void post(Batch batch) {
    ProxyConfig cfg = ctx.config();
    long t0 = System.nanoTime();
    Buffer body;
    if (link.grpc()) {
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
      fm.json.update(System.nanoTime() - t0, TimeUnit.NANOSECONDS);
      batch.deadlineNanos = System.nanoTime() + cfg.forwardRetryBudget.toNanos();
    }
    fm.bodyBytes.update(body.length());
    // The body is a copy of the chunks for the time of the POST (JSON: the body built here; gRPC:
    // the copy vertx-grpc makes behind its 5-byte prefix of a list that wraps the chunks): it
    // counts in the budget too.
    long held = body.length();
    ctx.budget().reserve(held);
    batch.attempts++;
    state.inFlight.set(window.inFlight());
    fm.posts.inc();
    boolean[] struck = new boolean[1];
    long slowMs = cfg.ejectSlowAfter.toMillis();
    Runnable onSlow = () -> {
      // No answer yet after eject_slow_after: a strike now, not only when the deadline passes,
      // so a hanging global is out of the ring in seconds.
      if (host.slowerThanPeers(TimeUnit.MILLISECONDS.toNanos(slowMs))) {
        struck[0] = true;
        ejection.strike("no answer within eject_slow_after (" + slowMs + "ms)");
      }
    };
    java.util.function.Consumer<GlobalClient.Outcome> onOutcome = outcome -> {
      ctx.budget().release(held);
      window.ended();
      state.inFlight.set(window.inFlight());
      fm.post.update(outcome.elapsedNanos(), TimeUnit.NANOSECONDS);
      long ewma = state.latencyEwmaNanos;
      // Weighted to follow a change within a few answers.
      state.latencyEwmaNanos = ewma == 0 ? outcome.elapsedNanos() : (ewma + outcome.elapsedNanos()) / 2;
      fm.byDestination.set(batch.metrics);
      outcome(batch, outcome, struck[0]);
      host.pump();
    };
    link.send(body, cfg.forwardTimeout.toMillis(), slowMs, onSlow, onOutcome);
  }

  private void outcome(Batch batch, GlobalClient.Outcome o, boolean struck) {
    switch (RetryPolicy.verdict(o)) {
      case DELIVERED_BADLY -> {
        fm.errorsZero.inc(0);
        forwarded(batch);
        String how = o.timedOut() ? "did not end within forward_timeout" : "broke off (" + o.error() + ")";
        if (!struck) ejection.strike("its " + o.status() + " answer " + how);
        logs.warn("endless", url + " answered " + o.status() + " but its answer " + how
            + "; counted delivered, the connection cut");
      }
      case DELIVERED -> {
        fm.errorsZero.inc(0);
        forwarded(batch);
        long slowNanos = ctx.config().ejectSlowAfter.toNanos();
        if (slowNanos > 0 && o.elapsedNanos() > slowNanos && host.slowerThanPeers(o.elapsedNanos())) {
          if (!struck) ejection.strike("answered after " + o.elapsedNanos() / 1_000_000 + "ms");
        } else {
          ejection.healthyAnswer();
        }
      }
      case REFUSED -> {
        fm.error(o);
        isolation.refused(batch, describe(o));
      }
      case FAILED -> {
        fm.error(o);
        String what = describe(o);
        if (!struck) ejection.strike(what);
        logs.warn("fail", "forward of " + batch.metrics + " metrics to " + url + " failed (attempt "
            + batch.attempts + "): " + what);
        // Out of the ring: to the new owners; but one that keeps its backlog while the proxy stops
        // retries like any global until the shutdown deadline (the others are stopping too).
        if ((ejection.excluded() && !(ejection.keepsBacklog() && ctx.stopping())) || host.leaving()) host.handBack(batch);
        else retryOrDrop(batch, what);
      }
    }
  }

  private String describe(GlobalClient.Outcome o) {
    if (o.status() != 0) return "HTTP " + o.status() + (o.excerpt().isEmpty() ? "" : ": " + o.excerpt());
    return o.timedOut() ? "no complete answer within forward_timeout (" + ctx.config().forwardTimeout.toMillis() + "ms)"
        : String.valueOf(o.error());
  }

  private void forwarded(Batch batch) {
    host.letGo(batch.chunks);
    int left = 0;
    for (java.util.Map.Entry<String, Integer> e : batch.untranslated.entrySet()) {
      left += e.getValue();
      fm.failed("untranslated_" + e.getKey(), e.getValue());
    }
    fm.proxied.inc(batch.metrics - left);
    ctx.accounting().forwardedExcept(batch.chunks, batch.untranslated);
  }

  void drop(Batch batch, String cause) {
    host.letGo(batch.chunks);
    fm.failed(cause, batch.metrics);
    ctx.accounting().dropped(batch.chunks, cause);
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
}
