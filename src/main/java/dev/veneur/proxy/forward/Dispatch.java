package dev.veneur.proxy.forward;

import dev.veneur.proxy.ProxyContext;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.MetricChunk;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBus;

/**
 * Hands a chunk to its destination's forwarder. Uses request/reply rather than a bare send so a
 * chunk whose forwarder has just left (a ring change racing the sender's snapshot) is noticed and
 * routed again instead of vanishing.
 */
public final class Dispatch {
  private static final DeliveryOptions OPTIONS = new DeliveryOptions().setSendTimeout(30_000);

  private Dispatch() {}

  /** From an importer: on refusal the ring verticle routes the chunk again on its current ring. */
  public static void toForwarder(EventBus bus, ProxyContext ctx, String destination, MetricChunk chunk) {
    long bytes = chunk.metricBytes();
    ctx.budget().add(destination, bytes);
    bus.request(Addresses.forwarder(destination), chunk, OPTIONS).onFailure(e -> {
      ctx.budget().add(destination, -bytes);
      bus.request(Addresses.RING_REROUTE, chunk, OPTIONS)
          .onFailure(e2 -> ctx.metrics().dropped(chunk.count, bytes, "no_destination"));
    });
  }

  /** From the ring verticle: a refusal here is final, so it is counted as a drop. */
  public static void fromRing(EventBus bus, ProxyContext ctx, String destination, MetricChunk chunk) {
    long bytes = chunk.metricBytes();
    ctx.budget().add(destination, bytes);
    bus.request(Addresses.forwarder(destination), chunk, OPTIONS).onFailure(e -> {
      ctx.budget().add(destination, -bytes);
      ctx.metrics().dropped(chunk.count, bytes, "no_destination");
    });
  }
}
