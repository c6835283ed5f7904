package dev.veneur.proxy.ring;

import io.vertx.core.Deployable;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ring's supervisor role: one forwarder per member. The ring asks for forwarders before it
 * routes to their members and retires them after it stopped routing to them, so every member of a
 * published ring has one. What a forwarder is comes from the composition root (a factory), so the
 * ring never depends on the forward stage.
 *
 * <p>Used on the ring verticle's event loop only.
 */
final class ForwarderFleet {
  private static final Logger LOG = LoggerFactory.getLogger(ForwarderFleet.class);

  private final Vertx vertx;
  private final Function<String, Deployable> factory;
  /** Member to deployment id, for forwarders that started. */
  private final Map<String, String> deployed = new HashMap<>();

  ForwarderFleet(Vertx vertx, Function<String, Deployable> factory) {
    this.vertx = vertx;
    this.factory = factory;
  }

  boolean has(String member) {
    return deployed.containsKey(member);
  }

  Collection<String> members() {
    return deployed.keySet();
  }

  /**
   * Starts a forwarder for each of {@code members} that has none. Completes when every start has
   * ended, successfully or not: a member whose forwarder failed to start has none, and the ring
   * leaves it out of routing.
   */
  Future<?> open(List<String> members) {
    List<Future<?>> starts = new ArrayList<>();
    for (String member : members) {
      if (deployed.containsKey(member)) continue;
      starts.add(vertx.deployVerticle(factory.apply(member))
          .onSuccess(id -> deployed.put(member, id))
          .onFailure(e -> LOG.error("could not start a forwarder for {}: {}", member, e.getMessage())));
    }
    return Future.join(starts).otherwiseEmpty();
  }

  /**
   * Stops the forwarder of a member the ring no longer routes to. It hands what it queued back to be
   * routed on the current ring and waits for its POSTs in flight, so this may take up to a forward
   * deadline; the member counts as gone at once.
   */
  Future<Void> retire(String member) {
    String id = deployed.remove(member);
    if (id == null) return Future.succeededFuture();
    return vertx.undeploy(id).onFailure(e -> LOG.error("could not retire forwarder for {}", member, e));
  }
}
