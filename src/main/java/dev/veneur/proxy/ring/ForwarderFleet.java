package dev.veneur.proxy.ring;

import dev.veneur.proxy.config.LogText;
import dev.veneur.proxy.telemetry.LogThrottle;
import io.vertx.core.Deployable;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ring's supervisor role: one forwarder per member. The ring asks for forwarders before it
 * routes to their members and retires them after it stopped routing to them, so every member of a
 * published ring has one. What a forwarder is comes from the composition root (a factory), so the
 * ring never depends on the forward stage.
 *
 * <p>A forwarder that fails to start is started again with backoff ({@value #FIRST_RETRY_MS} ms
 * doubling to {@value #MAX_RETRY_MS} ms, jittered) for as long as the ring still wants its member;
 * each success is told to the ring, which then routes to it. A failed start is logged once per
 * {@value #LOG_PERIOD_MS} ms per member, not once per attempt.
 *
 * <p>Used on the ring verticle's event loop only.
 */
final class ForwarderFleet {
  private static final Logger LOG = LoggerFactory.getLogger(ForwarderFleet.class);
  static final long FIRST_RETRY_MS = 250;
  static final long MAX_RETRY_MS = 30_000;
  private static final long LOG_PERIOD_MS = 60_000;

  private final Vertx vertx;
  private final Function<String, Deployable> factory;
  private final LogThrottle failures = new LogThrottle(LOG, LOG_PERIOD_MS);
  /** Member to deployment id, for forwarders that started. */
  private final Map<String, String> deployed = new HashMap<>();
  /** Members whose forwarder failed to start: the next backoff, and the timer that retries. */
  private final Map<String, long[]> retrying = new HashMap<>();
  /** Members being started now. */
  private final Map<String, Future<?>> starting = new HashMap<>();
  private Predicate<String> wanted = m -> false;
  private Consumer<String> started = m -> { };

  ForwarderFleet(Vertx vertx, Function<String, Deployable> factory) {
    this.vertx = vertx;
    this.factory = factory;
  }

  /**
   * @param wanted whether the ring still wants a member whose forwarder failed (else no retry)
   * @param started told of each forwarder that started on a retry
   */
  ForwarderFleet onRetry(Predicate<String> wanted, Consumer<String> started) {
    this.wanted = wanted;
    this.started = started;
    return this;
  }

  boolean has(String member) {
    return deployed.containsKey(member);
  }

  Collection<String> members() {
    return deployed.keySet();
  }

  /** Members whose forwarder failed to start and waits for a retry (for the ring's state). */
  Collection<String> failing() {
    return retrying.keySet();
  }

  /**
   * Starts a forwarder for each of {@code members} that has none. Completes when every start has
   * ended, successfully or not: a member whose forwarder failed to start has none (the ring leaves
   * it out of routing) and is retried with backoff while the ring wants it.
   */
  Future<?> open(List<String> members) {
    List<Future<?>> starts = new ArrayList<>();
    for (String member : members) {
      if (deployed.containsKey(member)) continue;
      Future<?> pending = starting.get(member);
      if (pending != null) {
        starts.add(pending);
        continue;
      }
      if (retrying.containsKey(member)) continue; // its timer is set; the ring hears when it starts
      starts.add(start(member));
    }
    return Future.join(starts).otherwiseEmpty();
  }

  private Future<?> start(String member) {
    Future<?> f;
    try {
      f = vertx.deployVerticle(factory.apply(member));
    } catch (RuntimeException e) {
      f = Future.failedFuture(e);
    }
    starting.put(member, f);
    return f.onComplete(ar -> {
      starting.remove(member);
      if (ar.succeeded()) {
        long[] r = retrying.remove(member);
        if (r != null && r[1] >= 0) vertx.cancelTimer(r[1]);
        deployed.put(member, (String) ar.result());
        if (r != null) LOG.info("started the forwarder for {} after {} failed start(s)", member, r[2]);
      } else {
        scheduleRetry(member, ar.cause());
      }
    });
  }

  private void scheduleRetry(String member, Throwable cause) {
    long[] r = retrying.computeIfAbsent(member, m -> new long[] {FIRST_RETRY_MS, -1, 0});
    long delay = r[0];
    r[0] = Math.min(r[0] * 2, MAX_RETRY_MS);
    r[2]++;
    failures.error("start:" + member, "could not start a forwarder for " + LogText.escape(member) + ": "
        + LogText.escape(String.valueOf(cause.getMessage())) + "; it gets no traffic and is tried again with "
        + "backoff (" + FIRST_RETRY_MS + " ms doubling to " + MAX_RETRY_MS / 1000 + " s)");
    long jittered = delay / 2 + ThreadLocalRandom.current().nextLong(delay / 2 + 1);
    r[1] = vertx.setTimer(Math.max(1, jittered), t -> {
      r[1] = -1;
      if (deployed.containsKey(member) || starting.containsKey(member)) return;
      if (!wanted.test(member)) {
        retrying.remove(member);
        return;
      }
      start(member).onSuccess(x -> started.accept(member));
    });
  }

  /**
   * Stops the forwarder of a member the ring no longer routes to. It hands what it queued back to be
   * routed on the current ring and waits for its POSTs in flight, so this may take up to a forward
   * deadline; the member counts as gone at once. A pending retry for it is cancelled.
   */
  Future<Void> retire(String member) {
    long[] r = retrying.remove(member);
    if (r != null && r[1] >= 0) vertx.cancelTimer(r[1]);
    String id = deployed.remove(member);
    if (id == null) return Future.succeededFuture();
    return vertx.undeploy(id).onFailure(e -> LOG.error("could not retire forwarder for {}", member, e));
  }
}
