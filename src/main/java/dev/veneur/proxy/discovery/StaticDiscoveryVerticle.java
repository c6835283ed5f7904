package dev.veneur.proxy.discovery;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Membership;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import java.util.List;

/** Announces the destinations listed in the config ({@code forward_address(es)}) to the ring. */
public final class StaticDiscoveryVerticle extends VerticleBase {
  private final List<String> members;

  public StaticDiscoveryVerticle(List<String> members) {
    this.members = List.copyOf(members);
  }

  @Override
  public Future<?> start() {
    return vertx.eventBus().request(Addresses.RING_MEMBERS, new Membership("static", members));
  }
}
