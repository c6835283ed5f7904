package dev.veneur.proxy.discovery;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.json.JsonObject;
import dev.veneur.proxy.config.LogText;
import dev.veneur.proxy.telemetry.LogThrottle;
import io.vertx.servicediscovery.Record;
import io.vertx.servicediscovery.ServiceDiscovery;
import io.vertx.servicediscovery.ServiceDiscoveryOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the ring in step with Consul's healthy instances of {@code consul_forward_service_name}:
 * a {@link ConsulHealthImporter} mirrors them into Vert.x Service Discovery, and after every
 * Consul answer this verticle reads the imported records and sends the whole member set to the
 * ring.
 *
 * <p>Bad days: a Consul error or an answer with no healthy instance leaves the ring as it was,
 * counts {@code discoverer.errors}, and is logged at error level once per episode (not on every
 * retry), with a note when Consul is good again.
 */
public final class ConsulDiscoveryVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ConsulDiscoveryVerticle.class);

  private final ProxyContext ctx;
  private final String service;
  /** Members for the ring of gRPC globals (v14 names), else for the HTTP one. */
  private final boolean grpcRing;
  private final Duration refresh;
  private final ConsulEndpoint endpoint;
  private final String importerId = UUID.randomUUID().toString();
  private ServiceDiscovery discovery;
  private ConsulHealthClient client;
  /** Skipped and oddly registered instances: once a minute per cause, not once per answer. */
  private final LogThrottle memberLogs = new LogThrottle(LOG, 60_000);
  private final TroubleEpisode trouble =
      new TroubleEpisode(LOG, this::discovererErrors, "Consul recovers");
  /** Instances of the answer being applied that were left out as unusable. */
  private int skippedInAnswer;
  private dev.veneur.proxy.telemetry.EventGauge destinationNumber;

  /**
   * @param service the Consul service whose healthy instances are the ring's members
   * @param grpcRing for the ring of gRPC globals: members {@code <Node.Address>:<Service.Port>}
   */
  public ConsulDiscoveryVerticle(ProxyContext ctx, ConsulEndpoint endpoint, String service, boolean grpcRing) {
    this.ctx = ctx;
    this.grpcRing = grpcRing;
    this.service = service;
    this.refresh = ctx.config().consulRefreshInterval;
    this.endpoint = endpoint;
  }

  @Override
  public Future<?> start() {
    // Consul holds a blocking query up to `wait` plus up to wait/16 of jitter; the HTTP timeout
    // must outlast that or every quiet period would look like an error.
    long waitMs = Math.min(refresh.toMillis(), TimeUnit.MINUTES.toMillis(10));
    client = new ConsulHealthClient(vertx, endpoint, ctx.config().consulMaxAnswerBytes, waitMs + waitMs / 16 + 5_000);
    ProxyMetrics m = ctx.metrics();
    destinationNumber = m.eventGauge(ProxyMetrics.tagged(ProxyMetrics.DISCOVERER_DESTINATIONS, "service", service));
    // A private announce address: several proxies in one Vertx (tests) must not hear each other.
    discovery = ServiceDiscovery.create(vertx, new ServiceDiscoveryOptions()
        .setAnnounceAddress("veneur.discovery.announce." + importerId)
        .setUsageAddress("veneur.discovery.usage." + importerId));
    ConsulHealthImporter importer = new ConsulHealthImporter(client, service, Duration.ofMillis(waitMs),
        importerId, ctx.config().consulNodeAddress, grpcRing, new ConsulHealthImporter.Listener() {
          @Override
          public void synced(int healthy, long nanos) {
            m.registry().timer(ProxyMetrics.tagged("discoverer.update_duration_ns", "service", service))
                .update(nanos, TimeUnit.NANOSECONDS);
            destinationNumber.set(healthy);
            int skipped = skippedInAnswer;
            skippedInAnswer = 0;
            publishMembers(skipped);
          }

          @Override
          public void failed(Throwable cause, long nanos) {
            skippedInAnswer = 0;
            trouble.failed("Consul query for service '" + service + "' at " + endpoint + " failed: "
                + LogText.escape(String.valueOf(cause.getMessage())));
          }

          @Override
          public void skipped(String cause, String message) {
            skippedInAnswer++;
            m.registry().counter(ProxyMetrics.withTags("discoverer.invalid_members",
                "source:consul:" + service, "cause:" + cause)).inc();
            memberLogs.warn("skipped/" + cause, message + " (discoverer.invalid_members counts each)");
          }

          @Override
          public void odd(String message) {
            memberLogs.warn("odd", message);
          }
        });
    LOG.info("discovering {} from Consul service '{}' at {} (blocking queries, wait {})",
        grpcRing ? "gRPC globals (members <Node.Address>:<Service.Port>, as Veneur v14 names them)"
            : "globals", service, endpoint, Duration.ofMillis(waitMs));
    return discovery.registerServiceImporter(importer, new JsonObject());
  }

  private void publishMembers(int skipped) {
    discovery.getRecords(r -> importerId.equals(r.getMetadata().getString(ConsulHealthImporter.META_IMPORTER)))
        .onSuccess(records -> {
          List<String> members = new ArrayList<>();
          for (Record r : records) members.add(r.getMetadata().getString("member"));
          members.sort(null);
          if (members.isEmpty()) {
            trouble.failed("Consul lists no " + (skipped > 0 ? "usable " : "") + "healthy instance of service '"
                + service + "'" + (skipped > 0 ? " (" + skipped + " left out as unusable: discoverer.invalid_members)" : "")
                + "; keeping the last good ring");
            return;
          }
          if (trouble.recovered()) LOG.info("Consul service '{}' is healthy again: {} instance(s)", service, members.size());
          vertx.eventBus().request(Addresses.RING_MEMBERS, new Membership("consul:" + service, members, grpcRing));
        })
        .onFailure(e -> trouble.failed("could not read imported records: " + e.getMessage()));
  }

  private com.codahale.metrics.Counter discovererErrors() {
    return ctx.metrics().counter("discoverer.errors", "service", service);
  }

  @Override
  public Future<?> stop() {
    if (discovery != null) discovery.close();
    if (client != null) client.close();
    return Future.succeededFuture();
  }
}
