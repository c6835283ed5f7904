package dev.veneur.proxy;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.LocalCodec;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.config.GoDuration;
import dev.veneur.proxy.discovery.ConsulDiscoveryVerticle;
import dev.veneur.proxy.discovery.ConsulEndpoint;
import dev.veneur.proxy.discovery.StaticDiscoveryVerticle;
import dev.veneur.proxy.ingest.ImportVerticle;
import dev.veneur.proxy.ring.HashRing;
import dev.veneur.proxy.ring.RingVerticle;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.Map;
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
  private final Map<String, String> env;

  private ProxyApp(Vertx vertx, ProxyConfig config, Map<String, String> env) {
    this.vertx = vertx;
    this.env = Map.copyOf(env);
    this.ctx = new ProxyContext(config);
  }

  public static Future<ProxyApp> start(Vertx vertx, ProxyConfig config) {
    return start(vertx, config, System.getenv());
  }

  /** @param env where {@code CONSUL_HTTP_ADDR} and {@code CONSUL_HTTP_TOKEN} are read from */
  public static Future<ProxyApp> start(Vertx vertx, ProxyConfig config, Map<String, String> env) {
    LocalCodec.registerAll(vertx);
    ProxyApp app = new ProxyApp(vertx, config, env);
    return app.deploy().map(app);
  }

  private Future<Void> deploy() {
    ProxyConfig cfg = ctx.config();
    for (String w : cfg.warnings) LOG.warn(w);
    return vertx.deployVerticle(new RingVerticle(ctx))
        .onSuccess(deployments::add)
        .compose(id -> vertx.deployVerticle(discoveryFor(cfg)))
        .onSuccess(deployments::add)
        .compose(id -> awaitRing(cfg))
        .compose(v -> vertx.deployVerticle(() -> new ImportVerticle(ctx),
            new DeploymentOptions().setInstances(cfg.effectiveHttpInstances())))
        .onSuccess(deployments::add)
        .onSuccess(id -> LOG.info("veneur-proxy listening on http://{}:{} with {} HTTP verticles",
            cfg.httpHost, cfg.httpPort, cfg.effectiveHttpInstances()))
        .mapEmpty();
  }

  /** Consul wins over static addresses when both are set, as in the Go proxy. */
  private VerticleBase discoveryFor(ProxyConfig cfg) {
    if (cfg.usesConsul()) {
      if (!cfg.forwardAddresses.isEmpty()) {
        LOG.warn("both consul_forward_service_name and forward_address(es) are set; using Consul");
      }
      return new ConsulDiscoveryVerticle(ctx, ConsulEndpoint.resolve(cfg, env));
    }
    return new StaticDiscoveryVerticle(cfg.forwardAddresses);
  }

  /**
   * Like the Go proxy, refuse to serve with zero destinations: wait (bounded) for discovery to
   * put a first member in the ring.
   */
  private Future<Void> awaitRing(ProxyConfig cfg) {
    Promise<Void> p = Promise.promise();
    Duration limit = cfg.usesConsul() ? cfg.consulStartupTimeout : Duration.ofSeconds(30);
    String what = cfg.usesConsul()
        ? "no healthy instance of Consul service '" + cfg.consulForwardServiceName + "' at "
            + ConsulEndpoint.resolve(cfg, env) + " within " + GoDuration.format(limit)
            + " (consul_startup_timeout)"
        : "no destination became available within " + GoDuration.format(limit);
    poll(p, System.nanoTime() + limit.toNanos(), what);
    return p.future();
  }

  private void poll(Promise<Void> p, long deadline, String what) {
    vertx.eventBus().<HashRing>request(Addresses.RING_CURRENT, null).onComplete(ar -> {
      if (ar.succeeded() && !ar.result().body().isEmpty()) {
        p.complete();
      } else if (System.nanoTime() > deadline) {
        p.fail(what);
      } else {
        vertx.setTimer(20, t -> poll(p, deadline, what));
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
