package dev.veneur.proxy.discovery;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Membership;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import java.util.List;

/**
 * Announces the destinations listed in the config to their ring: {@code forward_address(es)} to
 * the ring of HTTP globals, {@code grpc_forward_address} to the ring of gRPC globals.
 */
public final class StaticDiscoveryVerticle extends VerticleBase {
  private final List<String> members;
  private final boolean grpcRing;

  /** @param grpcRing for the ring of gRPC globals ({@code grpc_forward_address}) */
  public StaticDiscoveryVerticle(List<String> members, boolean grpcRing) {
    this.members = List.copyOf(members);
    this.grpcRing = grpcRing;
  }

  @Override
  public Future<?> start() {
    return vertx.eventBus().request(Addresses.RING_MEMBERS, new Membership(members.isEmpty() ? Membership.UNCONFIGURED
        : grpcRing ? "static:grpc" : "static", members, grpcRing));
  }
}
