package dev.veneur.proxy.ring;

import dev.veneur.proxy.ProxyContext;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RouteQuery;
import dev.veneur.proxy.forward.Dispatch;
import dev.veneur.proxy.forward.ForwarderVerticle;
import dev.veneur.proxy.ingest.ChunkBuilder;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.Message;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Owns the hash ring: the only writer of ring state. Takes member sets from discovery, deploys a
 * forwarder for each new member before any importer can route to it, publishes the new immutable
 * ring to the importers, then retires forwarders of members that left (they hand their queued
 * metrics back here to be routed again). Also answers routing queries for tools and tests.
 */
public final class RingVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(RingVerticle.class);

  private final ProxyContext ctx;
  private HashRing ring = HashRing.empty();
  private final Map<String, String> forwarders = new HashMap<>();
  /** Member sets arrive faster than deployments finish; apply them one at a time, latest wins. */
  private Membership pending;
  private boolean applying;

  public RingVerticle(ProxyContext ctx) {
    this.ctx = ctx;
  }

  @Override
  public Future<?> start() {
    EventBus bus = vertx.eventBus();
    bus.<Membership>consumer(Addresses.RING_MEMBERS, m -> {
      pending = m.body();
      m.reply(null);
      applyPending();
    });
    bus.<Object>consumer(Addresses.RING_CURRENT, m -> m.reply(ring));
    bus.<Object>consumer(Addresses.RING_STATE, m -> m.reply(state()));
    bus.<RouteQuery>consumer(Addresses.RING_ROUTE, this::route);
    bus.<MetricChunk>consumer(Addresses.RING_REROUTE, this::reroute);
    return Future.succeededFuture();
  }

  private io.vertx.core.json.JsonObject state() {
    return new io.vertx.core.json.JsonObject()
        .put("members", new io.vertx.core.json.JsonArray(new ArrayList<>(ring.members())));
  }

  private void route(Message<RouteQuery> m) {
    String dest = ring.route(m.body().name(), m.body().type(), m.body().tagstring());
    if (dest == null) m.fail(503, "the ring has no members");
    else m.reply(dest);
  }

  private void applyPending() {
    if (applying || pending == null) return;
    Membership next = pending;
    pending = null;
    if (next.members().isEmpty()) {
      // Discovery never means "drop everything"; keep the last good ring.
      LOG.warn("ignoring an empty member set from {}; keeping {}", next.source(), ring.members());
      return;
    }
    HashRing nextRing = HashRing.of(next.members());
    if (nextRing.members().equals(ring.members())) return;
    applying = true;
    List<Future<?>> deployments = new ArrayList<>();
    for (String member : nextRing.members()) {
      if (!forwarders.containsKey(member)) {
        deployments.add(vertx.deployVerticle(new ForwarderVerticle(ctx, member))
            .onSuccess(id -> forwarders.put(member, id)));
      }
    }
    Future.join(deployments).onComplete(done -> {
      HashRing previous = ring;
      List<String> live = new ArrayList<>();
      for (String m : nextRing.members()) if (forwarders.containsKey(m)) live.add(m);
      ring = HashRing.of(live);
      LOG.info("ring members from {}: {} (was {})", next.source(), ring.members(), previous.members());
      vertx.eventBus().publish(Addresses.RING_SNAPSHOT, ring);
      for (String old : previous.members()) {
        if (!ring.members().contains(old)) {
          String id = forwarders.remove(old);
          if (id != null) {
            vertx.undeploy(id).onFailure(e -> LOG.error("could not retire forwarder for {}", old, e));
          }
        }
      }
      applying = false;
      applyPending();
    });
  }

  /** Splits a chunk by the current ring; each part goes to its owner's forwarder. */
  private void reroute(Message<MetricChunk> m) {
    m.reply(null);
    MetricChunk chunk = m.body();
    if (ring.isEmpty()) {
      ctx.metrics().dropped(chunk.count, chunk.metricBytes(), "no_destination");
      return;
    }
    ChunkBuilder[] parts = new ChunkBuilder[ring.size()];
    for (int i = 0; i < chunk.count; i++) {
      int owner = ring.ownerIndex(chunk.hashes[i]);
      if (parts[owner] == null) parts[owner] = ChunkBuilder.forSplit(chunk, ring.size());
      parts[owner].append(chunk.data, chunk.starts[i], chunk.end(i), chunk.hashes[i]);
    }
    for (int d = 0; d < parts.length; d++) {
      if (parts[d] != null) Dispatch.fromRing(vertx.eventBus(), ctx, ring.members().get(d), parts[d].build());
    }
  }

  @Override
  public Future<?> stop() {
    return Future.succeededFuture();
  }
}
