package dev.veneur.proxy.ingest;

import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.HashRing;
import io.vertx.ext.web.RoutingContext;

/**
 * {@code GET /healthcheck}, on http_address and admin_address: {@code 200 ok} while the proxy can
 * take metrics and send them somewhere; {@code 503} while it is stopping or has no global in any
 * ring (discovery says they are gone), so a load balancer or a Kubernetes readiness probe sends
 * locals to another proxy instead of one that would refuse them.
 */
public final class Health {
  private Health() {}

  public static void answer(RoutingContext rc, ProxyContext ctx, HashRing ring) {
    String why = ctx.stopping() ? "stopping" : ring.isEmpty() ? "no global Veneur in the ring" : null;
    rc.response().setStatusCode(why == null ? 200 : 503).putHeader("Content-Type", "text/plain")
        .end(why == null ? "ok\n" : why + "\n");
  }
}
