package dev.veneur.proxy.routing;

import dev.veneur.proxy.bus.MetricChunk;


/**
 * A chunk handed to a forwarder, or to be routed again. Whoever lands it
 * ({@link MetricChunk#land()}) owns it. {@code hops} counts how often it has been sent back, so a
 * chunk can never circle for ever. {@code ring}, when set, is the ring to split it on: the ring
 * verticle attaches its own, whose every member has a forwarder, rather than let an HTTP verticle
 * use a snapshot that may be a change behind. {@code from}, when set, is the destination it comes
 * back from, which says which ring it belongs to (JSON or gRPC) when there are two.
 */
public record Handoff(MetricChunk chunk, int hops, HashRing ring, String from) {
  public Handoff(MetricChunk chunk, int hops) {
    this(chunk, hops, null, null);
  }

  public Handoff(MetricChunk chunk, int hops, HashRing ring) {
    this(chunk, hops, ring, null);
  }
}
