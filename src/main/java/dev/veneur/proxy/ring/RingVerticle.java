package dev.veneur.proxy.ring;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Exclusion;
import dev.veneur.proxy.bus.Health;
import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RouteQuery;
import dev.veneur.proxy.config.LogText;
import dev.veneur.proxy.config.MemberAddress;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.routing.Handoff;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.RingSet;
import io.vertx.core.Deployable;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.Message;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Owns the hash ring: the only writer of ring state. Two inputs shape it: member sets from
 * discovery (the authority on who exists) and health reports from forwarders (a layer on top that
 * ejects failing members). The routing ring is the members minus the ejected ones, or all members
 * when every one is ejected: the ring is never empty once it had members.
 *
 * <p>For each new member a forwarder is started ({@link ForwarderFleet}) before any importer can
 * route to it; then the new immutable ring is published to the importers; then forwarders of
 * members that left are retired (they hand their queued metrics back to the HTTP verticles, which
 * route them again on the new ring). Also answers routing queries.
 */
public final class RingVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(RingVerticle.class);

  private final ProxyContext ctx;
  private final dev.veneur.proxy.telemetry.LogThrottle allOut = new dev.veneur.proxy.telemetry.LogThrottle(LOG, 60_000);
  /**
   * The ring of HTTP globals and the ring of gRPC globals (Veneur v14.2.0 keeps both: JSON to
   * the first, gRPC to the second). A proxy with one kind of global uses one of them.
   */
  private final RingState json = new RingState("json", false);
  private final RingState grpc = new RingState("grpc", true);
  /** What importers route on, per ingest protocol. */
  private RingSet rings = RingSet.EMPTY;
  /** Set in {@link #start()}: one forwarder per member of either ring. */
  private ForwarderFleet forwarders;
  private final Function<String, Deployable> forwarderFactory;
  private final MemberCheck memberCheck;

  /** @param forwarderFactory makes the forwarder of one member (a destination URL) */
  public RingVerticle(ProxyContext ctx, Function<String, Deployable> forwarderFactory) {
    this.ctx = ctx;
    this.forwarderFactory = forwarderFactory;
    this.memberCheck = new MemberCheck(ctx.metrics(), new dev.veneur.proxy.telemetry.LogThrottle(LOG, 60_000));
  }

  @Override
  public Future<?> start() {
    forwarders = new ForwarderFleet(vertx, forwarderFactory).onRetry(this::wanted, this::forwarderStarted);
    EventBus bus = vertx.eventBus();
    bus.<Membership>consumer(Addresses.RING_MEMBERS, m -> {
      RingState r = m.body().grpcRing() ? grpc : json;
      r.pending = m.body();
      m.reply(null);
      applyPending(r);
    });
    bus.<Object>consumer(Addresses.RING_CURRENT, m -> m.reply(rings));
    bus.<Object>consumer(Addresses.RING_STATE, m -> m.reply(state()));
    bus.<RouteQuery>consumer(Addresses.RING_ROUTE, this::route);
    bus.<Health>consumer(Addresses.RING_HEALTH, this::health);
    bus.<Handoff>consumer(Addresses.RING_REROUTE, this::reroute);
    bus.<Object>consumer(Addresses.RING_REKEY, m -> {
      publish(json);
      publish(grpc);
      publishRings();
    });
    return Future.succeededFuture();
  }

  /** The ring a member belongs to, or null. */
  private RingState ringOf(String member) {
    if (json.members.contains(member)) return json;
    if (grpc.members.contains(member)) return grpc;
    return null;
  }

  private JsonObject state() {
    // The JSON ring's fields where they always were; the gRPC ring's beside them when there is one.
    RingState main = json.members.isEmpty() && !grpc.members.isEmpty() && !ctx.config().jsonRing ? grpc : json;
    JsonObject s = ringState(main);
    if (main == json && (ctx.config().grpcRing || !grpc.members.isEmpty())) s.put("grpc_ring", ringState(grpc));
    return s;
  }

  private JsonObject ringState(RingState r) {
    return new JsonObject()
        .put("members", new JsonArray(new ArrayList<>(r.members)))
        .put("ejected", new JsonArray(new ArrayList<>(r.ejected)))
        .put("routing", new JsonArray(new ArrayList<>(r.ring.members())))
        .put("starting", new JsonArray(new ArrayList<>(new TreeSet<>(forwarders.failing().stream()
            .filter(m -> r.members.contains(m) || (r.waiting != null && r.waiting.members().contains(m))).toList()))));
  }

  /** Routing queries (tests, tools) are answered on the ring JSON metrics use. */
  private void route(Message<RouteQuery> m) {
    String dest = rings.forJson().route(m.body().name(), m.body().type(), m.body().tagstring());
    if (dest == null) m.fail(503, "the ring has no members");
    else m.reply(dest);
  }

  private void health(Message<Health> m) {
    Health h = m.body();
    String dest = h.destination();
    RingState r = ringOf(dest);
    if (r == null) {
      m.reply(new Exclusion(false));
      return;
    }
    boolean changed = h.healthy() ? r.ejected.remove(dest) : r.ejected.add(dest);
    if (changed) {
      String tag = dest;
      if (h.healthy()) {
        ctx.metrics().counter("forward.readmissions", "destination", tag).inc();
        LOG.info("re-admitted {} to {}: its forwarder asked, as logged just before (it answers again, or"
            + " drained its backlog)", dest, r.label());
      } else {
        ctx.metrics().counter("forward.ejections", "destination", tag).inc();
        LOG.warn("ejected {} from {} (its forwarder found it failing, slow or saturated, as logged just "
            + "before); its keys go to the others until it is re-admitted", dest, r.label());
      }
      publish(r);
    }
    m.reply(new Exclusion(isExcluded(r, dest)));
  }

  private boolean isExcluded(RingState r, String dest) {
    return r.ejected.contains(dest) && !r.ring.members().contains(dest);
  }

  /** Recomputes a ring's routing, publishes the rings, and tells its forwarders whether they are in. */
  private void publish(RingState r) {
    List<String> routing = new ArrayList<>();
    for (String m : r.members) {
      if (!r.ejected.contains(m) && forwarders.has(m)) routing.add(m);
    }
    if (routing.isEmpty()) {
      if (!r.ejected.isEmpty() && !r.members.isEmpty()) {
        allOut.error("all_ejected/" + r.name, "every member of " + r.label()
            + " is ejected; routing to all of them rather than to none");
      }
      for (String m : r.members) if (forwarders.has(m)) routing.add(m);
    }
    HashRing next = HashRing.of(routing, r.hashName, r.keyIgnore(ctx.config()));
    if (next.members().equals(r.ring.members()) && next.keyIgnore() == r.ring.keyIgnore()) return;
    r.ring = next;
    publishRings();
    for (String m : r.members) {
      vertx.eventBus().send(Addresses.forwarderControl(m), new Exclusion(!r.ring.members().contains(m)));
    }
  }

  /**
   * JSON to the HTTP globals' ring, gRPC to the gRPC globals' (or as ring_for_json / ring_for_grpc
   * say); either to the other ring when its own has no member.
   */
  private void publishRings() {
    HashRing forJson = "grpc".equals(ctx.config().ringForJson) ? grpc.ring : json.ring;
    HashRing forGrpc = "http".equals(ctx.config().ringForGrpc) ? json.ring : grpc.ring;
    if (forJson.isEmpty()) forJson = forGrpc;
    if (forGrpc.isEmpty()) forGrpc = forJson;
    rings = new RingSet(forJson, forGrpc);
    vertx.eventBus().publish(Addresses.RING_SNAPSHOT, rings);
  }

  /** Whether a member whose forwarder failed to start should still be retried. */
  private boolean wanted(String member) {
    for (RingState r : List.of(json, grpc)) {
      if (r.members.contains(member) || (r.waiting != null && r.waiting.members().contains(member))) return true;
    }
    return false;
  }

  /** A forwarder started on a retry: route to it, or apply the set that waited for it. */
  private void forwarderStarted(String member) {
    if (!wanted(member)) {
      forwarders.retire(member);
      return;
    }
    for (RingState r : List.of(json, grpc)) {
      if (r.members.contains(member)) publish(r);
      if (r.waiting != null && r.waiting.members().contains(member) && r.pending == null) {
        r.pending = r.waiting;
        applyPending(r);
      }
    }
  }

  private int allMembers() {
    java.util.Set<String> all = new java.util.HashSet<>(json.members);
    all.addAll(grpc.members);
    return all.size();
  }

  private void applyPending(RingState r) {
    if (r.applying || r.pending == null) return;
    Membership next = r.pending;
    r.pending = null;
    if (next.empties()) {
      r.waiting = null;
      if (r.members.isEmpty()) return;
      List<String> previous = r.members;
      r.members = List.of();
      r.ejected.clear();
      r.ring = HashRing.empty();
      if (Membership.UNCONFIGURED.equals(next.source())) {
        LOG.info("{} is no longer configured; its members {} leave", r.label(), previous);
      } else {
        LOG.warn("{}: {} says its globals are gone; the members {} leave", r.label(),
            LogText.escape(next.source().substring(Membership.GONE.length())), previous);
      }
      publishRings();
      List<Future<Void>> retiring = new ArrayList<>();
      for (String old : previous) if (ringOf(old) == null) retiring.add(forwarders.retire(old));
      Future.join(retiring).onComplete(x -> ctx.planDescriptors(allMembers()));
      return;
    }
    List<String> valid = memberCheck.usable(next);
    if (valid.isEmpty()) {
      // Discovery never means "drop everything"; keep the last good ring.
      LOG.warn("ignoring a member set from {} with no usable member ({} listed); keeping {}",
          LogText.escape(next.source()), next.members().size(), r.members);
      return;
    }
    List<String> nextMembers = HashRing.of(valid).members();
    if (nextMembers.equals(r.members)) {
      r.waiting = null;
      return;
    }
    r.applying = true;
    // Descriptors for the old and the new forwarders' pools, before any new one connects: the
    // inbound cap gives way first. Once the leavers are retired, only the new sets count.
    java.util.Set<String> both = new java.util.HashSet<>(json.members);
    both.addAll(grpc.members);
    both.addAll(nextMembers);
    ctx.planDescriptors(both.size());
    forwarders.open(nextMembers).onComplete(done -> {
      boolean anyStarted = false;
      for (String m : nextMembers) anyStarted |= forwarders.has(m);
      if (!anyStarted && !r.members.isEmpty()) {
        // Routing to a set with no forwarder would empty the ring: keep the last good one until a
        // retry starts one of these (forwarderStarted applies the set then).
        r.waiting = next;
        allOut.error("none_started/" + r.name, "no forwarder could start for any member of the set from "
            + LogText.escape(next.source()) + " " + nextMembers + "; keeping the last good ring " + r.members
            + " and retrying");
        r.applying = false;
        applyPending(r);
        return;
      }
      r.waiting = null;
      List<String> previous = r.members;
      r.members = nextMembers;
      r.ejected.retainAll(r.members);
      // Discovered HTTP globals (Consul, DNS) of a v14 file are hashed as v14 hashes Consul's.
      boolean v14Consul = (next.source().startsWith("consul") || next.source().startsWith("dns:")
          || next.source().startsWith("kubernetes:")) && !r.ofGrpc
          && "v14".equals(ctx.config().compat.generation());
      r.hashName = v14Consul ? RingVerticle::withoutScheme : m -> m;
      LOG.info("{} members from {}: {} (was {})", r.ofGrpc ? "gRPC ring" : "ring", next.source(), r.members, previous);
      publish(r);
      List<Future<Void>> retiring = new ArrayList<>();
      for (String old : previous) {
        if (!r.members.contains(old) && ringOf(old) == null) retiring.add(forwarders.retire(old));
      }
      Future.join(retiring).onComplete(x -> ctx.planDescriptors(allMembers()));
      r.applying = false;
      applyPending(r);
    });
  }

  /**
   * A chunk to route again: split on the current ring of the destination it comes back from
   * (every member of which has a forwarder, so it cannot go back to one that left while an HTTP
   * verticle's snapshot lags); without one (a spill replay), a protobuf chunk (only gRPC makes
   * them) on the ring gRPC metrics use, a JSON one on the ring JSON metrics use.
   */
  private void reroute(Message<Handoff> m) {
    Handoff h = m.body();
    m.reply(null);
    MetricChunk chunk = h.chunk();
    if (!chunk.land()) return;
    // Ring members are of one kind per ring (usable()): a gRPC global's chunk is the gRPC ring's.
    boolean grpcRing = h.from() != null ? MemberAddress.isGrpc(h.from()) : chunk.proto;
    HashRing ring = grpcRing ? rings.forGrpc() : rings.forJson();
    if (ring.isEmpty()) {
      ctx.accounting().dropped(chunk, ctx.stopping() ? "shutdown" : "no_destination");
      return;
    }
    Dispatch.split(vertx.eventBus(), ctx, chunk, h.hops(), ring);
  }

  private static String withoutScheme(String member) {
    int i = member.indexOf("://");
    return i < 0 ? member : member.substring(i + 3);
  }

  @Override
  public Future<?> stop() {
    return Future.succeededFuture();
  }
}
