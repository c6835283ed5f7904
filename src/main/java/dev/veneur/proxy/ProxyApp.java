package dev.veneur.proxy;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.LocalCodec;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.discovery.StaticDiscoveryVerticle;
import dev.veneur.proxy.ingest.ImportVerticle;
import dev.veneur.proxy.ring.HashRing;
import dev.veneur.proxy.ring.RingVerticle;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One running proxy inside a Vertx: the ring verticle first (it owns forwarders), then discovery
 * (so the ring has members), then the HTTP verticles (so no request meets an empty ring).
 */
public final class ProxyApp {
  private static final Logger LOG = LoggerFactory.getLogger(ProxyApp.class);

  private final Vertx vertx;
  private final ProxyContext ctx;
  private final List<String> deployments = new ArrayList<>();

  private ProxyApp(Vertx vertx, ProxyConfig config) {
    this.vertx = vertx;
    this.ctx = new ProxyContext(config);
  }

  public static Future<ProxyApp> start(Vertx vertx, ProxyConfig config) {
    LocalCodec.registerAll(vertx);
    ProxyApp app = new ProxyApp(vertx, config);
    return app.deploy().map(app);
  }

  private Future<Void> deploy() {
    ProxyConfig cfg = ctx.config();
    for (String w : cfg.warnings) LOG.warn(w);
    return vertx.deployVerticle(new RingVerticle(ctx))
        .onSuccess(deployments::add)
        .compose(id -> vertx.deployVerticle(new StaticDiscoveryVerticle(cfg.forwardAddresses)))
        .onSuccess(deployments::add)
        .compose(id -> awaitRing(cfg))
        .compose(v -> vertx.deployVerticle(() -> new ImportVerticle(ctx),
            new DeploymentOptions().setInstances(cfg.effectiveHttpInstances())))
        .onSuccess(deployments::add)
        .onSuccess(id -> LOG.info("veneur-proxy listening on http://{}:{} with {} HTTP verticles",
            cfg.httpHost, cfg.httpPort, cfg.effectiveHttpInstances()))
        .mapEmpty();
  }

  private Future<Void> awaitRing(ProxyConfig cfg) {
    Promise<Void> p = Promise.promise();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    poll(p, deadline);
    return p.future();
  }

  private void poll(Promise<Void> p, long deadline) {
    vertx.eventBus().<HashRing>request(Addresses.RING_CURRENT, null).onComplete(ar -> {
      if (ar.succeeded() && !ar.result().body().isEmpty()) {
        p.complete();
      } else if (System.nanoTime() > deadline) {
        p.fail("no destination became available");
      } else {
        vertx.setTimer(20, t -> poll(p, deadline));
      }
    });
  }

  public ProxyContext context() {
    return ctx;
  }

  /** Stops taking imports, lets forwarders flush within shutdown_timeout, then undeploys all. */
  public Future<Void> stop() {
    ctx.stopping(true);
    Future<Void> chain = Future.succeededFuture();
    for (int i = deployments.size() - 1; i >= 0; i--) {
      String id = deployments.get(i);
      chain = chain.compose(v -> vertx.undeploy(id).recover(e -> Future.succeededFuture()));
    }
    deployments.clear();
    return chain;
  }
}
