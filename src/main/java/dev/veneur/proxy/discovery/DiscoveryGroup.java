package dev.veneur.proxy.discovery;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import java.util.ArrayList;
import java.util.List;

/**
 * The discovery of both rings (HTTP globals and gRPC globals) as one deployment, so that a reload
 * replaces them together: each part is deployed from here, and Vert.x undeploys child
 * deployments with their parent.
 */
public final class DiscoveryGroup extends VerticleBase {
  private final List<VerticleBase> parts;

  public DiscoveryGroup(List<VerticleBase> parts) {
    this.parts = List.copyOf(parts);
  }

  @Override
  public Future<?> start() {
    List<Future<String>> started = new ArrayList<>();
    for (VerticleBase p : parts) started.add(vertx.deployVerticle(p));
    return Future.all(started);
  }
}
