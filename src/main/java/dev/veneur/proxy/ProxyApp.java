package dev.veneur.proxy;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.LocalCodec;
import dev.veneur.proxy.config.ConfigException;
import dev.veneur.proxy.config.ConfigWatchVerticle;
import dev.veneur.proxy.config.GoDuration;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.Fatal;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.discovery.ConsulDiscoveryVerticle;
import dev.veneur.proxy.discovery.ConsulEndpoint;
import dev.veneur.proxy.discovery.StaticDiscoveryVerticle;
import dev.veneur.proxy.discovery.DnsDiscoveryVerticle;
import dev.veneur.proxy.forward.ForwarderVerticle;
import dev.veneur.proxy.ingest.http.ImportVerticle;
import dev.veneur.proxy.ring.RingVerticle;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.routing.HashRing;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One running proxy inside a Vertx: the ring verticle first (it owns forwarders), then discovery
 * (so the ring has members), then the HTTP verticles (so no request meets an empty ring). Also
 * applies reloaded configs: each part that a key affects is replaced live, in an order that never
 * leaves the proxy without a listener or a ring.
 */
public final class ProxyApp {
  private static final Logger LOG = LoggerFactory.getLogger(ProxyApp.class);
  private final Vertx vertx;
  /**
   * Where reloads run: the context {@link #start} was called on (normally none, so a context of the
   * app's own, owned by no deployment). Not the config watcher's: what a reload deploys or opens
   * there (new HTTP verticles, discovery, the reporter's socket) would belong to the watcher's
   * deployment, and stopping the watcher first would take them down with it.
   */
  private final io.vertx.core.Context appContext;
  private final ProxyContext ctx;
  private final Map<String, String> env;
  // Written on the app's context (start, reloads), read and cleared by stop on its caller's thread.
  private volatile String ringId;
  private volatile String discoveryId;
  private volatile String httpId;
  private volatile String watchId;
  private volatile String adminId;
  private volatile String grpcId;
  /** The reload in progress, if any: stop waits for it, so it cannot deploy after the stop. */
  private volatile Future<Void> reloading = Future.succeededFuture();
  private final SelfTelemetry telemetry;
  /** Makes a discovery verticle for a config; a test may swap it for one that fails to start. */
  java.util.function.Function<ProxyConfig, VerticleBase> discoveryFactory = this::discoveryFor;
  /** Counts discovery replacements, so a retry of a replaced one stops. On the app's context. */
  private long discoveryGeneration;
  private final dev.veneur.proxy.telemetry.LogThrottle discoveryRetries =
      new dev.veneur.proxy.telemetry.LogThrottle(LOG, 60_000);
  private dev.veneur.proxy.ingest.ListenerWatchdog watchdog;

  private ProxyApp(Vertx vertx, ProxyConfig config, Map<String, String> env) {
    this.vertx = vertx;
    this.env = Map.copyOf(env);
    this.ctx = new ProxyContext(config);
    this.appContext = vertx.getOrCreateContext();
    this.telemetry = new SelfTelemetry(vertx, ctx);
  }

  /**
   * Set once a start opens its listener, for {@code Main}: a stop requested before that has
   * accepted nothing and can simply exit; one requested after must stop gracefully.
   */
  public static final java.util.concurrent.atomic.AtomicBoolean OPENING_LISTENER =
      new java.util.concurrent.atomic.AtomicBoolean();

  public static Future<ProxyApp> start(Vertx vertx, ProxyConfig config) {
    return start(vertx, config, System.getenv());
  }

  /** @param env where {@code CONSUL_HTTP_ADDR} and {@code CONSUL_HTTP_TOKEN} are read from */
  public static Future<ProxyApp> start(Vertx vertx, ProxyConfig config, Map<String, String> env) {
    LocalCodec.registerAll(vertx);
    Dispatch.registerCodecs(vertx);
    // Exceptions that escape a handler on an event loop: log at ERROR so Sentry sees them; an
    // OutOfMemoryError ends the process (see Fatal).
    vertx.exceptionHandler(t -> {
      Fatal.check(t);
      LOG.error("uncaught exception on an event loop: {}", t.toString(), t);
    });
    ProxyApp app = new ProxyApp(vertx, config, env);
    return app.deploy().map(app);
  }

  private Future<Void> deploy() {
    ProxyConfig cfg = ctx.config();
    for (String w : cfg.warnings) LOG.warn(w);
    LOG.info("config read as Veneur {}'s proxy file: {}; globals reached by {}", cfg.compat.generation(),
        cfg.compat.reason(), cfg.grpcRing && cfg.jsonRing
            ? "HTTP for JSON metrics and gRPC for gRPC metrics (two rings, as v14.2.0)"
            : cfg.grpcRing ? "gRPC (members host:port, as v14 names them)" : "HTTP POST /import");
    applyLogLevel(cfg);
    // Sentry first, so that a failure further on reaches it. Sentry's and JFR's start-up and
    // opening spill_dir do I/O: on a worker, whichever thread called start.
    return vertx.executeBlocking(() -> {
          openBlockingParts(cfg);
          return null;
        })
        .compose(v -> telemetry.startReporter(cfg))
        .compose(v -> deployStages(cfg));
  }

  private void openBlockingParts(ProxyConfig cfg) {
    telemetry.openBlocking(cfg);
    if (!cfg.spillDir.isEmpty()) {
      try {
        ctx.spill(dev.veneur.proxy.spill.Spill.open(java.nio.file.Path.of(cfg.spillDir)));
        LOG.info("spill_dir {}: accepted metrics are kept on disk until a global confirms them", cfg.spillDir);
      } catch (java.io.IOException e) {
        throw new ConfigException("spill_dir", cfg.spillDir,
            "a directory this process can create and write (" + e.getMessage() + ")");
      }
    }
  }

  private Future<Void> deployStages(ProxyConfig cfg) {
    return vertx.deployVerticle(new RingVerticle(ctx, member -> new ForwarderVerticle(ctx, member)))
        .onSuccess(id -> ringId = id)
        .compose(id -> vertx.deployVerticle(discoveryFor(cfg)))
        .onSuccess(id -> discoveryId = id)
        .compose(id -> awaitRing(cfg))
        .compose(v -> {
          OPENING_LISTENER.set(true);
          return deployHttp(cfg);
        })
        .onSuccess(id -> httpId = id)
        .compose(id -> deployGrpc(cfg).map(id))
        .compose(id -> deployAdmin(cfg).map(id))
        .compose(id -> ctx.spill() == null ? Future.succeededFuture(id)
            : vertx.deployVerticle(new dev.veneur.proxy.ingest.SpillReplayVerticle(ctx, ctx.spill().leftovers()))
                .map(id))
        .onSuccess(id -> {
          watchdog = new dev.veneur.proxy.ingest.ListenerWatchdog(cfg.httpHost, cfg.httpPort);
          LOG.info("veneur-proxy listening on {}://{}:{} with {} HTTP verticles, memory budget {} MiB{}",
              cfg.httpTls ? "https" : "http", cfg.httpHost, cfg.httpPort, cfg.effectiveHttpInstances(),
              cfg.memoryBudget >> 20, cfg.httpTls ? " (TLS: " + cfg.tls + ")" : "");
          LOG.info("request bodies inflated by {}", dev.veneur.proxy.wire.WholeInflate.describe());
        })
        .mapEmpty();
  }

  /**
   * The admin listener. A port it cannot bind is logged at ERROR and the proxy serves without it:
   * a drop-in replacement must not fail to start over a port the proxy it replaces never used
   * (and /healthcheck is on http_address too).
   */
  private Future<Void> deployAdmin(ProxyConfig cfg) {
    if (!cfg.adminEnabled()) return Future.succeededFuture();
    return vertx.deployVerticle(new dev.veneur.proxy.ingest.AdminVerticle(ctx))
        .onSuccess(id -> adminId = id)
        .otherwise(e -> {
          LOG.error("could not open the admin listener on admin_address {}:{} ({}); serving without it:"
              + " /healthcheck and /debug/state remain on http_address, /debug/profile is unavailable",
              cfg.adminHost, cfg.adminPort, e.getMessage());
          return null;
        })
        .mapEmpty();
  }

  /** The gRPC listener for v14 locals, as many instances as the HTTP one; none without grpc_address. */
  private Future<Void> deployGrpc(ProxyConfig cfg) {
    if (cfg.grpcPort < 0 && cfg.grpcTlsPort < 0) return Future.succeededFuture();
    return vertx.deployVerticle(() -> new dev.veneur.proxy.ingest.grpc.GrpcIngestVerticle(ctx),
            new DeploymentOptions().setInstances(cfg.effectiveHttpInstances()))
        .onSuccess(id -> {
          grpcId = id;
          if (cfg.grpcPort >= 0) {
            LOG.info("veneur-proxy serving gRPC forwardrpc.Forward on {}:{}", cfg.grpcHost, cfg.grpcPort);
          }
          if (cfg.grpcTlsPort >= 0) {
            LOG.info("veneur-proxy serving gRPC forwardrpc.Forward over TLS on {}:{} ({})", cfg.grpcTlsHost,
                cfg.grpcTlsPort, cfg.tls);
          }
        })
        .mapEmpty();
  }

  private Future<String> deployHttp(ProxyConfig cfg) {
    return vertx.deployVerticle(() -> new ImportVerticle(ctx),
        new DeploymentOptions().setInstances(cfg.effectiveHttpInstances()));
  }

  /**
   * The discovery of each configured ring: the HTTP globals' and the gRPC globals'. For each, Consul
   * wins over static addresses when both are set, as in the Go proxy.
   */
  private VerticleBase discoveryFor(ProxyConfig cfg) {
    return new dev.veneur.proxy.discovery.DiscoveryGroup(List.of(
        ringDiscovery(cfg, cfg.consulForwardServiceName, cfg.kubernetesForwardServiceName, cfg.dnsForwardName,
            cfg.forwardAddresses, false, "consul_forward_service_name", "kubernetes_forward_service_name",
            "dns_forward_name", "forward_address(es)"),
        ringDiscovery(cfg, cfg.consulForwardGrpcServiceName, cfg.kubernetesForwardGrpcServiceName, cfg.dnsForwardGrpcName,
            cfg.grpcForwardAddresses, true, "consul_forward_grpc_service_name", "kubernetes_forward_grpc_service_name",
            "dns_forward_grpc_name", "grpc_forward_address")));
  }

  /**
   * One ring's discovery, the first that is configured of Consul, the Kubernetes API, DNS and the
   * static list (each later one set as well is warned about). A ring the config does not have gets
   * an empty static list, which says so and empties the ring (a reload that drops the gRPC
   * globals, say): its forwarders hand what they hold to the other ring.
   */
  private VerticleBase ringDiscovery(ProxyConfig cfg, String service, String k8sService, String dnsName,
      List<String> statics, boolean grpcRing, String serviceKey, String k8sKey, String dnsKey, String staticKey) {
    List<String> set = new java.util.ArrayList<>();
    if (!service.isEmpty()) set.add(serviceKey);
    if (!k8sService.isEmpty()) set.add(k8sKey);
    if (!dnsName.isEmpty()) set.add(dnsKey);
    if (!statics.isEmpty()) set.add(staticKey);
    if (set.size() > 1) LOG.warn("{} are all set; using {} (Consul, then Kubernetes, then DNS, then the list)", set, set.get(0));
    if (!service.isEmpty()) return new ConsulDiscoveryVerticle(ctx, ConsulEndpoint.resolve(cfg, env), service, grpcRing);
    if (!k8sService.isEmpty()) {
      return new dev.veneur.proxy.discovery.KubernetesDiscoveryVerticle(ctx, k8sService, grpcRing, env);
    }
    if (!dnsName.isEmpty()) return new DnsDiscoveryVerticle(ctx, dnsName, grpcRing);
    return new StaticDiscoveryVerticle(statics, grpcRing);
  }

  /**
   * Like the Go proxy, refuse to serve with zero destinations: wait (bounded) for discovery to
   * put a first member in the ring.
   */
  private Future<Void> awaitRing(ProxyConfig cfg) {
    Promise<Void> p = Promise.promise();
    Duration limit = cfg.usesConsul() ? cfg.consulStartupTimeout : Duration.ofSeconds(30);
    String what = cfg.usesConsul()
        ? "no healthy instance of Consul service '" + (cfg.consulForwardServiceName.isEmpty()
            ? cfg.consulForwardGrpcServiceName : cfg.consulForwardServiceName) + "' at "
            + ConsulEndpoint.resolve(cfg, env) + " within " + GoDuration.format(limit)
            + " (consul_startup_timeout)"
        : "no destination became available within " + GoDuration.format(limit);
    poll(p, System.nanoTime() + limit.toNanos(), what);
    return p.future();
  }

  private void poll(Promise<Void> p, long deadline, String what) {
    vertx.eventBus().<dev.veneur.proxy.routing.RingSet>request(Addresses.RING_CURRENT, null).onComplete(ar -> {
      if (ar.succeeded() && !ar.result().body().forJson().isEmpty() && !ar.result().body().forGrpc().isEmpty()) {
        p.complete();
      } else if (System.nanoTime() > deadline) {
        p.fail(what);
      } else {
        vertx.setTimer(20, t -> poll(p, deadline, what));
      }
    });
  }

  private static void applyLogLevel(ProxyConfig cfg) {
    LoggerContext logback = (LoggerContext) LoggerFactory.getILoggerFactory();
    logback.getLogger("dev.veneur.proxy").setLevel(cfg.debug ? Level.DEBUG : null);
  }

  /** Watches the config files and applies valid changes live. */
  public Future<Void> watch(Path file, JsonObject initialRaw) {
    ProxyConfig cfg = ctx.config();
    return vertx.deployVerticle(new ConfigWatchVerticle(file, initialRaw,
            cfg.configScanInterval.toMillis(), this::reconfigureOnAppContext,
            () -> ctx.metrics().registry().counter("config.reload_errors").inc()))
        .onSuccess(id -> watchId = id)
        .mapEmpty();
  }

  private Future<Void> reconfigureOnAppContext(ProxyConfig next) {
    io.vertx.core.Promise<Void> done = io.vertx.core.Promise.promise();
    appContext.runOnContext(v -> {
      if (ctx.stopping()) {
        done.fail(new IllegalStateException("the proxy is stopping; the change is not applied"));
        return;
      }
      try {
        reconfigure(next).onComplete(done);
      } catch (RuntimeException e) {
        done.fail(e);
      }
    });
    reloading = done.future();
    return done.future();
  }

  /**
   * Applies a validated config, as {@link ReloadPlan} says. The listener moves first, because it is
   * the only part that can fail (the new port may be taken); if it fails nothing else has changed
   * and the whole reload is rejected. Then the config is swapped (batching, limits and timeouts are
   * read per use), the log level set, and discovery, self-metrics and Sentry are replaced as their
   * keys changed: discovery on the event loop, self-metrics and Sentry (which block) on a worker,
   * side by side. The future completes when all of it is done, so reloads never overlap.
   */
  public Future<Void> reconfigure(ProxyConfig next) {
    ProxyConfig prev = ctx.config();
    ReloadPlan plan = ReloadPlan.between(prev, next);
    if (plan.isEmpty()) return Future.succeededFuture();
    for (String w : next.warnings) LOG.warn(w);
    Future<Void> http = plan.moveListener ? moveListener(prev, next) : Future.succeededFuture();
    return http.compose(v -> {
      ctx.config(next);
      LOG.info("config reloaded: {}", plan.diff);
      for (String k : plan.restartOnly) LOG.warn("config key '{}' changed; it takes effect on restart", k);
      applyLogLevel(next);
      // The rings carry their key rule (ignore_tags): rebuilt with the new one.
      if (plan.diff.containsKey("ignore_tags") || plan.diff.containsKey("ring_for_json")
          || plan.diff.containsKey("ring_for_grpc")) {
        vertx.eventBus().send(Addresses.RING_REKEY, null);
      }
      Future<Void> reporting = telemetry.reconfigure(plan, next);
      Future<Void> discovery = plan.replaceDiscovery ? replaceDiscovery(next) : Future.succeededFuture();
      return Future.all(reporting, discovery).mapEmpty();
    });
  }

  /** New verticles bind with the new config; the old ones keep serving until that worked. */
  private Future<Void> moveListener(ProxyConfig prev, ProxyConfig staged) {
    ctx.config(staged);
    if (watchdog != null) watchdog.pause();
    return deployHttp(staged)
        .recover(e -> {
          ctx.config(prev);
          if (watchdog != null) watchdog.watch(prev.httpHost, prev.httpPort);
          return Future.failedFuture(new ConfigException("http_address", staged.httpHost + ":"
              + staged.httpPort, "an address this process can listen on (" + e.getMessage() + ")"));
        })
        .compose(newId -> {
          String oldId = httpId;
          httpId = newId;
          return vertx.undeploy(oldId).recover(e -> Future.succeededFuture());
        })
        .onSuccess(v -> {
          if (watchdog != null) watchdog.watch(staged.httpHost, staged.httpPort);
        });
  }

  /**
   * The new source sends a full member set; the ring keeps the old members until it does. A new
   * source that fails to start is tried again with backoff (250 ms doubling to 10 s) while the old
   * one keeps running, until it starts, a newer reload replaces it, or the proxy stops; the reload
   * itself completes after the first try, so later reloads are not held up.
   */
  private Future<Void> replaceDiscovery(ProxyConfig next) {
    long generation = ++discoveryGeneration;
    Promise<Void> firstTry = Promise.promise();
    deployDiscovery(next, generation, 250, firstTry);
    return firstTry.future();
  }

  private void deployDiscovery(ProxyConfig next, long generation, long backoffMs, Promise<Void> firstTry) {
    Future<String> deployed;
    try {
      deployed = vertx.deployVerticle(discoveryFactory.apply(next));
    } catch (RuntimeException e) {
      deployed = Future.failedFuture(e);
    }
    deployed.onComplete(ar -> {
      if (ar.failed()) {
        discoveryRetries.error("discovery", "could not start the new discovery ("
            + dev.veneur.proxy.config.LogText.escape(String.valueOf(ar.cause().getMessage()))
            + "); the old one keeps the ring, trying again in " + backoffMs + " ms");
        firstTry.tryComplete();
        if (generation == discoveryGeneration && !ctx.stopping()) {
          vertx.setTimer(backoffMs, t -> {
            if (generation == discoveryGeneration && !ctx.stopping()) {
              deployDiscovery(next, generation, Math.min(backoffMs * 2, 10_000), firstTry);
            }
          });
        }
        return;
      }
      String id = ar.result();
      if (generation != discoveryGeneration || ctx.stopping() || discoveryId == null) {
        // Superseded (or stopping) while it started: it is not the one to keep.
        vertx.undeploy(id);
        firstTry.tryComplete();
        return;
      }
      String oldId = discoveryId;
      discoveryId = id;
      vertx.undeploy(oldId).recover(e -> Future.succeededFuture()).onComplete(x -> firstTry.tryComplete());
    });
  }

  public ProxyContext context() {
    return ctx;
  }

  /**
   * Graceful stop: new imports get 503 at once; forwarders deliver what they hold within
   * shutdown_timeout (undeploying the ring undeploys them); then the listener closes and the last
   * self-metrics go out.
   */
  public Future<Void> stop() {
    ctx.stopping(true);
    if (watchdog != null) watchdog.stop();
    // A reload already running finishes first (none starts once stopping), so what it deploys is
    // undeployed below rather than left running.
    return reloading.otherwiseEmpty().compose(x -> {
      Future<Void> chain = Future.succeededFuture();
      for (String id : new String[] {watchId, discoveryId, ringId, httpId, grpcId, adminId}) {
        if (id != null) chain = chain.compose(v -> vertx.undeploy(id).recover(e -> Future.succeededFuture()));
      }
      watchId = discoveryId = ringId = httpId = grpcId = adminId = null;
      // The last self-metrics report, the JFR dump and Sentry's flush: after the stages, so they
      // report the stop; the returned future completes only after them, so Main exits after them.
      return chain.compose(v -> telemetry.close());
    });
  }
}
