package dev.veneur.proxy.routing;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.core.ProxyContext;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBus;

/**
 * Hands chunks between verticles. Request/reply rather than a bare send, so a chunk whose receiver
 * has just gone (a ring change racing the sender's snapshot) is noticed: it is routed again on the
 * current ring instead of vanishing. {@link MetricChunk#land()} decides ownership when a send fails
 * after all, so a chunk is never both re-routed and kept.
 */
public final class Dispatch {
  private static final DeliveryOptions OPTIONS = new DeliveryOptions().setSendTimeout(5_000);
  /** A chunk sent back this often is dropped: its routing keeps pointing at nothing. */
  private static final int MAX_HOPS = 8;

  private Dispatch() {}

  /** Registers the local codecs of the routing messages, beside {@code LocalCodec.registerAll}. */
  public static void registerCodecs(io.vertx.core.Vertx vertx) {
    dev.veneur.proxy.bus.LocalCodec.register(vertx.eventBus(), HashRing.class);
    dev.veneur.proxy.bus.LocalCodec.register(vertx.eventBus(), Handoff.class);
    dev.veneur.proxy.bus.LocalCodec.register(vertx.eventBus(), RingSet.class);
  }

  /** To the forwarder of {@code destination}; if none takes it, routed again. */
  public static void toForwarder(EventBus bus, ProxyContext ctx, String destination, MetricChunk chunk, int hops) {
    chunk.depart();
    bus.request(Addresses.forwarder(destination), new Handoff(chunk, hops), OPTIONS).onFailure(e -> {
      if (chunk.land()) reroute(bus, ctx, chunk, hops + 1, destination);
    });
  }

  /** To an HTTP verticle, to be split by the current ring and sent on; dropped if nobody takes it. */
  public static void reroute(EventBus bus, ProxyContext ctx, MetricChunk chunk, int hops) {
    reroute(bus, ctx, chunk, hops, null);
  }

  /**
   * As {@link #reroute(EventBus, ProxyContext, MetricChunk, int)}, from {@code from}: the ring
   * verticle splits it on that destination's ring (JSON or gRPC); without one, on the JSON ring.
   */
  public static void reroute(EventBus bus, ProxyContext ctx, MetricChunk chunk, int hops, String from) {
    // While stopping, forwarders are leaving one by one: a chunk with nowhere to go is a
    // casualty of the stop, not of the ring.
    if (hops > MAX_HOPS) {
      dropLost(ctx, chunk, "routed " + hops + " times without reaching a forwarder");
      return;
    }
    chunk.depart();
    bus.request(Addresses.RING_REROUTE, new Handoff(chunk, hops, null, from), OPTIONS).onFailure(e -> {
      if (chunk.land()) dropLost(ctx, chunk, "the ring verticle did not take it (" + e.getMessage() + ")");
    });
  }

  /** From the ring verticle: to an HTTP verticle, to be split on {@code ring}. */
  public static void split(EventBus bus, ProxyContext ctx, MetricChunk chunk, int hops,
      dev.veneur.proxy.routing.HashRing ring) {
    chunk.depart();
    bus.request(Addresses.INGEST_REROUTE, new Handoff(chunk, hops, ring), OPTIONS).onFailure(e -> {
      if (chunk.land()) dropLost(ctx, chunk, "no HTTP verticle took it (" + e.getMessage() + ")");
    });
  }

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Dispatch.class);
  private static final dev.veneur.proxy.telemetry.LogThrottle LOST = new dev.veneur.proxy.telemetry.LogThrottle(LOG, 10_000);

  /** Nowhere to send it: dropped, counted, and said (once per episode). */
  static void dropLost(ProxyContext ctx, MetricChunk chunk, String why) {
    String cause = ctx.stopping() ? "shutdown" : "no_destination";
    ctx.accounting().dropped(chunk, cause);
    if (!ctx.stopping()) LOST.error("lost", "dropped " + chunk.count + " metrics with nowhere to route them: " + why);
  }
}
