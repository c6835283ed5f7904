package dev.veneur.proxy.discovery;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.config.ConfigException;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.servicediscovery.ServiceDiscovery;
import io.vertx.servicediscovery.ServiceDiscoveryOptions;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a ring in step with a Kubernetes Service's ready endpoints, as {@link
 * ConsulDiscoveryVerticle} does with a Consul service: a {@link KubernetesEndpointsImporter} mirrors
 * them into Vert.x Service Discovery (the same SPI as the Consul importer), and after every change
 * this verticle reads the imported records and sends the whole member set to the ring. The API is
 * found from the pod (KUBERNETES_SERVICE_HOST/_PORT, the service account's token, CA and namespace)
 * unless the config says otherwise.
 *
 * <p>Bad days, with Consul's promises: an error, an unreachable API or an answer with no ready
 * endpoint keeps the last good ring ({@code discoverer.errors}, one {@code ERROR} per episode). A
 * watch the server closes is resumed from the last version seen; a {@code 410 Gone} (the version is
 * too old) lists again; failures back off from 250 ms to 10 s. The token file is read for every
 * request, so a rotated token is used as soon as it is on disk. Answers and events are read up to
 * {@code consul_max_answer_bytes} each, never whole beyond that.
 */
public final class KubernetesDiscoveryVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(KubernetesDiscoveryVerticle.class);
  /** What discovery asks of the API; the Role in conf/kubernetes must allow exactly this. */
  public static final String API_GROUP = "discovery.k8s.io";
  public static final String RESOURCE = "endpointslices";
  public static final List<String> VERBS = List.of("list", "watch");
  static final String SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

  private final ProxyContext ctx;
  private final String service;
  private final boolean grpcRing;
  private final Map<String, String> env;
  private final LogThrottle memberLogs = new LogThrottle(LOG, 60_000);
  private HttpClient http;
  private URI api;
  private String namespace;
  private String tokenFile;
  private ServiceDiscovery discovery;
  private final String importerId = java.util.UUID.randomUUID().toString();
  private final TroubleEpisode trouble =
      new TroubleEpisode(LOG, this::discovererErrors, "it recovers");
  private List<String> published = List.of();
  private dev.veneur.proxy.telemetry.EventGauge destinationNumber;

  public KubernetesDiscoveryVerticle(ProxyContext ctx, String service, boolean grpcRing, Map<String, String> env) {
    this.ctx = ctx;
    this.service = service;
    this.grpcRing = grpcRing;
    this.env = env;
  }

  @Override
  public Future<?> start() {
    ProxyConfig cfg = ctx.config();
    String apiUrl = cfg.kubernetesApiUrl;
    if (apiUrl.isEmpty()) {
      String host = env.getOrDefault("KUBERNETES_SERVICE_HOST", "");
      String port = env.getOrDefault("KUBERNETES_SERVICE_PORT", "443");
      if (host.isEmpty()) {
        return Future.failedFuture(new ConfigException("kubernetes_api_url", "",
            "the API's URL: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)"));
      }
      apiUrl = "https://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
    api = URI.create(apiUrl);
    tokenFile = cfg.kubernetesTokenFile.isEmpty() ? SA_DIR + "/token" : cfg.kubernetesTokenFile;
    String caFile = cfg.kubernetesCaFile.isEmpty() ? SA_DIR + "/ca.crt" : cfg.kubernetesCaFile;
    String portName = !cfg.kubernetesPortName.isEmpty() ? cfg.kubernetesPortName : grpcRing ? "grpc" : "http";
    destinationNumber = ctx.metrics().eventGauge(ProxyMetrics.tagged(ProxyMetrics.DISCOVERER_DESTINATIONS, "service", service));
    boolean https = "https".equals(api.getScheme());
    return vertx.executeBlocking(() -> {
      String ns = cfg.kubernetesNamespace;
      if (ns.isEmpty()) {
        Path f = Path.of(SA_DIR, "namespace");
        if (!Files.isReadable(f)) {
          throw new ConfigException("kubernetes_namespace", "", "the globals' namespace: " + f + " cannot be read (not in a pod?)");
        }
        ns = Files.readString(f).trim();
      }
      if (https && !Files.isReadable(Path.of(caFile))) {
        throw new ConfigException("kubernetes_ca_file", caFile, "a readable PEM file with the API server's CA");
      }
      return ns;
    }, false).map(ns -> {
      namespace = ns;
      HttpClientOptions o = new HttpClientOptions().setKeepAlive(true).setConnectTimeout(5_000)
          .setDefaultHost(api.getHost()).setDefaultPort(api.getPort() > 0 ? api.getPort() : https ? 443 : 80);
      if (https) o.setSsl(true).setVerifyHost(true).setTrustOptions(new PemTrustOptions().addCertPath(caFile));
      http = vertx.createHttpClient(o);
      LOG.info("discovering {} from Kubernetes: ready endpoints of Service {}/{} (port '{}'), API {}",
          grpcRing ? "gRPC globals" : "globals", namespace, service, portName, api);
      // A private announce address: several proxies in one Vertx (tests) must not hear each other.
      discovery = ServiceDiscovery.create(vertx, new ServiceDiscoveryOptions()
          .setAnnounceAddress("veneur.discovery.announce." + importerId)
          .setUsageAddress("veneur.discovery.usage." + importerId));
      return new KubernetesEndpointsImporter(http, api, namespace, service, tokenFile, cfg.consulMaxAnswerBytes,
          new EndpointSlices(portName, grpcRing), importerId, new KubernetesEndpointsImporter.Listener() {
            @Override
            public void synced(int ready) {
              membersFromRecords();
            }

            @Override
            public void failed(String message) {
              trouble.failed(message);
            }

            @Override
            public void skipped(String cause, String message) {
              ctx.metrics().registry().counter(ProxyMetrics.withTags("discoverer.invalid_members",
                  "source:kubernetes:" + service, "cause:" + cause)).inc();
              memberLogs.warn("skipped/" + cause, message + " (discoverer.invalid_members counts each)");
            }
          });
    }).compose(importer -> discovery.registerServiceImporter(importer, new JsonObject()));
  }

  /** The members the importer's records say, after each sync: to the ring, or kept when none. */
  private void membersFromRecords() {
    discovery.getRecords(r -> importerId.equals(r.getMetadata().getString(ConsulHealthImporter.META_IMPORTER)))
        .onSuccess(records -> {
          List<String> members = new java.util.ArrayList<>();
          for (io.vertx.servicediscovery.Record r : records) members.add(r.getMetadata().getString("member"));
          members.sort(null);
          destinationNumber.set(members.size());
          if (members.isEmpty()) {
            trouble.failed("Service " + namespace + "/" + service + " has no ready endpoint; keeping the last good ring");
            return;
          }
          if (trouble.recovered()) {
            LOG.info("Service {}/{} has ready endpoints again: {}", namespace, service, members.size());
          }
          if (members.equals(published)) return;
          published = members;
          vertx.eventBus().request(Addresses.RING_MEMBERS,
              new Membership("kubernetes:" + namespace + "/" + service, members, grpcRing));
        })
        .onFailure(e -> trouble.failed("could not read imported records: " + e.getMessage()));
  }

  private com.codahale.metrics.Counter discovererErrors() {
    return ctx.metrics().counter("discoverer.errors", "service", service);
  }

  @Override
  public Future<?> stop() {
    if (discovery != null) discovery.close();
    return http == null ? Future.succeededFuture() : http.close();
  }
}
