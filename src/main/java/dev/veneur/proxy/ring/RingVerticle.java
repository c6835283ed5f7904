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
  /** Who discovery says exists. */
  private List<String> members = List.of();
  /**
   * What the ring hashes for a member: itself, except for HTTP globals from Consul under a v14
   * file, which Veneur v14.2.0 names {@code <Node.Address>:<Service.Port>} with no scheme.
   */
  private java.util.function.UnaryOperator<String> hashName = m -> m;
  /** Members taken out of routing for failing; never more than all of them. */
  private final TreeSet<String> ejected = new TreeSet<>();
  /** What importers route on. */
  private HashRing ring = HashRing.empty();
  /** Set in {@link #start()}: one forwarder per member. */
  private ForwarderFleet forwarders;
  private final Function<String, Deployable> forwarderFactory;
  /** Member sets arrive faster than deployments finish; apply them one at a time, latest wins. */
  private Membership pending;
  private boolean applying;
  /**
   * A member set none of whose forwarders could start: not applied (the last good ring stays),
   * applied as soon as a retry starts one of them, unless a newer set came first.
   */
  private Membership waiting;
  private final dev.veneur.proxy.telemetry.LogThrottle memberLogs =
      new dev.veneur.proxy.telemetry.LogThrottle(LOG, 60_000);

  /** @param forwarderFactory makes the forwarder of one member (a destination URL) */
  public RingVerticle(ProxyContext ctx, Function<String, Deployable> forwarderFactory) {
    this.ctx = ctx;
    this.forwarderFactory = forwarderFactory;
  }

  @Override
  public Future<?> start() {
    forwarders = new ForwarderFleet(vertx, forwarderFactory).onRetry(this::wanted, this::forwarderStarted);
    EventBus bus = vertx.eventBus();
    bus.<Membership>consumer(Addresses.RING_MEMBERS, m -> {
      pending = m.body();
      m.reply(null);
      applyPending();
    });
    bus.<Object>consumer(Addresses.RING_CURRENT, m -> m.reply(ring));
    bus.<Object>consumer(Addresses.RING_STATE, m -> m.reply(state()));
    bus.<RouteQuery>consumer(Addresses.RING_ROUTE, this::route);
    bus.<Health>consumer(Addresses.RING_HEALTH, this::health);
    bus.<Handoff>consumer(Addresses.RING_REROUTE, this::reroute);
    return Future.succeededFuture();
  }

  private JsonObject state() {
    return new JsonObject()
        .put("members", new JsonArray(new ArrayList<>(members)))
        .put("ejected", new JsonArray(new ArrayList<>(ejected)))
        .put("routing", new JsonArray(new ArrayList<>(ring.members())))
        .put("starting", new JsonArray(new ArrayList<>(new TreeSet<>(forwarders.failing()))));
  }

  private void route(Message<RouteQuery> m) {
    String dest = ring.route(m.body().name(), m.body().type(), m.body().tagstring());
    if (dest == null) m.fail(503, "the ring has no members");
    else m.reply(dest);
  }

  private void health(Message<Health> m) {
    Health h = m.body();
    String dest = h.destination();
    if (!members.contains(dest)) {
      m.reply(new Exclusion(false));
      return;
    }
    boolean changed = h.healthy() ? ejected.remove(dest) : ejected.add(dest);
    if (changed) {
      String tag = dest;
      if (h.healthy()) {
        ctx.metrics().counter("forward.readmissions", "destination", tag).inc();
        LOG.info("re-admitted {} to the ring: it answers again", dest);
      } else {
        ctx.metrics().counter("forward.ejections", "destination", tag).inc();
        LOG.warn("ejected {} from the ring (its forwarder found it failing, slow or saturated, as logged just "
            + "before); its keys go to the others until it answers /healthcheck", dest);
      }
      publish();
    }
    m.reply(new Exclusion(isExcluded(dest)));
  }

  private boolean isExcluded(String dest) {
    return ejected.contains(dest) && !ring.members().contains(dest);
  }

  /** Recomputes the routing ring, publishes it, and tells every forwarder whether it is in. */
  private void publish() {
    List<String> routing = new ArrayList<>();
    for (String m : members) {
      if (!ejected.contains(m) && forwarders.has(m)) routing.add(m);
    }
    if (routing.isEmpty()) {
      if (!ejected.isEmpty() && !members.isEmpty()) {
        allOut.error("all_ejected", "every member is ejected; routing to all of them rather than to none");
      }
      for (String m : members) if (forwarders.has(m)) routing.add(m);
    }
    HashRing next = HashRing.of(routing, hashName);
    if (next.members().equals(ring.members())) return;
    ring = next;
    vertx.eventBus().publish(Addresses.RING_SNAPSHOT, ring);
    for (String m : forwarders.members()) {
      vertx.eventBus().send(Addresses.forwarderControl(m), new Exclusion(!ring.members().contains(m)));
    }
  }

  /** Whether a member whose forwarder failed to start should still be retried. */
  private boolean wanted(String member) {
    return members.contains(member) || (waiting != null && waiting.members().contains(member));
  }

  /** A forwarder started on a retry: route to it, or apply the set that waited for it. */
  private void forwarderStarted(String member) {
    if (!wanted(member)) {
      forwarders.retire(member);
      return;
    }
    if (members.contains(member)) publish();
    if (waiting != null && waiting.members().contains(member) && pending == null) {
      pending = waiting;
      applyPending();
    }
  }

  /**
   * Every member checked on its own ({@link MemberAddress}), whatever its source: one that cannot
   * be a destination is left out, counted ({@code discoverer.invalid_members{source,cause}}) and
   * logged (escaped, once a minute per source and cause), and never takes the others with it.
   */
  private List<String> usable(Membership m) {
    List<String> ok = new ArrayList<>(m.members().size());
    for (String member : m.members()) {
      MemberAddress.Checked c = MemberAddress.url(member);
      if (c.ok()) {
        ok.add(member);
        continue;
      }
      ctx.metrics().registry().counter(dev.veneur.proxy.telemetry.ProxyMetrics.withTags(
          "discoverer.invalid_members", "source:" + m.source(), "cause:" + c.cause())).inc();
      memberLogs.warn(m.source() + "/" + c.cause(), "skipping member " + LogText.escape(member) + " from "
          + LogText.escape(m.source()) + ": it " + c.reason());
    }
    return ok;
  }

  private void applyPending() {
    if (applying || pending == null) return;
    Membership next = pending;
    pending = null;
    List<String> valid = usable(next);
    if (valid.isEmpty()) {
      // Discovery never means "drop everything"; keep the last good ring.
      LOG.warn("ignoring a member set from {} with no usable member ({} listed); keeping {}",
          LogText.escape(next.source()), next.members().size(), members);
      return;
    }
    List<String> nextMembers = HashRing.of(valid).members();
    if (nextMembers.equals(members)) {
      waiting = null;
      return;
    }
    applying = true;
    // Descriptors for the old and the new forwarders' pools, before any new one connects: the
    // inbound cap gives way first. Once the leavers are retired, only the new set counts.
    java.util.Set<String> both = new java.util.HashSet<>(members);
    both.addAll(nextMembers);
    ctx.planDescriptors(both.size());
    forwarders.open(nextMembers).onComplete(done -> {
      boolean anyStarted = false;
      for (String m : nextMembers) anyStarted |= forwarders.has(m);
      if (!anyStarted && !members.isEmpty()) {
        // Routing to a set with no forwarder would empty the ring: keep the last good one until a
        // retry starts one of these (forwarderStarted applies the set then).
        waiting = next;
        allOut.error("none_started", "no forwarder could start for any member of the set from "
            + LogText.escape(next.source()) + " " + nextMembers + "; keeping the last good ring " + members
            + " and retrying");
        applying = false;
        applyPending();
        return;
      }
      waiting = null;
      List<String> previous = members;
      members = nextMembers;
      boolean v14Consul = next.source().startsWith("consul") && "v14".equals(ctx.config().compat.generation());
      hashName = v14Consul ? RingVerticle::withoutScheme : m -> m;
      ejected.retainAll(members);
      LOG.info("ring members from {}: {} (was {})", next.source(), members, previous);
      publish();
      List<Future<Void>> retiring = new ArrayList<>();
      for (String old : previous) {
        if (!members.contains(old)) retiring.add(forwarders.retire(old));
      }
      List<String> now = members;
      Future.join(retiring).onComplete(r -> {
        if (members == now) ctx.planDescriptors(now.size());
      });
      applying = false;
      applyPending();
    });
  }

  /**
   * A chunk to route again: split on this verticle's current ring, every member of which has a
   * forwarder, so it cannot go back to one that left while an HTTP verticle's snapshot lags.
   */
  private void reroute(Message<Handoff> m) {
    Handoff h = m.body();
    m.reply(null);
    MetricChunk chunk = h.chunk();
    if (!chunk.land()) return;
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
