package dev.veneur.proxy.ring;

import io.vertx.core.Deployable;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * A forwarder factory for the ring's tests: each forwarder only records its life. A member whose
 * URL contains "broken" fails to start; one given a count in {@link #failFirst} fails that many
 * starts, then starts.
 */
final class RecordingForwarders implements Function<String, Deployable> {
  /** Members whose forwarder is running. */
  final Set<String> running = ConcurrentHashMap.newKeySet();
  /** Forwarder starts tried, failed ones included. */
  final AtomicInteger starts = new AtomicInteger();
  /** Member to how many of its next starts fail. */
  final java.util.Map<String, AtomicInteger> failFirst = new ConcurrentHashMap<>();

  @Override
  public Deployable apply(String member) {
    return new VerticleBase() {
      @Override
      public Future<?> start() {
        starts.incrementAndGet();
        if (member.contains("broken")) return Future.failedFuture("cannot start");
        AtomicInteger left = failFirst.get(member);
        if (left != null && left.getAndDecrement() > 0) return Future.failedFuture("not yet");
        running.add(member);
        return Future.succeededFuture();
      }

      @Override
      public Future<?> stop() {
        running.remove(member);
        return Future.succeededFuture();
      }
    };
  }
}
