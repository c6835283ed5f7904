package dev.veneur.proxy.discovery;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.config.ConfigException;
import dev.veneur.proxy.config.LogText;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.core.parsetools.RecordParser;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a ring in step with a Kubernetes Service's ready endpoints: the Service's EndpointSlices
 * ({@code discovery.k8s.io/v1}, label {@code kubernetes.io/service-name}) in one namespace, read with
 * the pod's service account, listed once and then watched (a chunked stream of ADDED, MODIFIED,
 * DELETED and BOOKMARK events from the list's {@code resourceVersion}), with the Vert.x HTTP client:
 * no thread blocks on the stream. The members are worked out by {@link EndpointSlices}.
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
  private static final long BACKOFF_MIN_MS = 250;
  private static final long BACKOFF_MAX_MS = 10_000;

  private final ProxyContext ctx;
  private final String service;
  private final boolean grpcRing;
  private final Map<String, String> env;
  private final LogThrottle memberLogs = new LogThrottle(LOG, 60_000);
  private HttpClient http;
  private URI api;
  private String namespace;
  private String tokenFile;
  private EndpointSlices slices;
  private String resourceVersion;
  private long backoffMs = BACKOFF_MIN_MS;
  private boolean troubled;
  private boolean stopped;
  private long timer = -1;
  private List<String> published = List.of();
  private HttpClientResponse watching;
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
    slices = new EndpointSlices(portName, grpcRing);
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
      list();
      return null;
    });
  }

  private String path(boolean watch) {
    String selector = URLEncoder.encode("kubernetes.io/service-name=" + service, StandardCharsets.UTF_8);
    String base = (api.getPath() == null ? "" : api.getPath().replaceAll("/+$", "")) + "/apis/" + API_GROUP
        + "/v1/namespaces/" + namespace + "/" + RESOURCE + "?labelSelector=" + selector;
    if (!watch) return base;
    return base + "&watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion="
        + URLEncoder.encode(resourceVersion, StandardCharsets.UTF_8);
  }

  /** The token, read now: a rotated one is used at once. */
  private Future<String> token() {
    return vertx.executeBlocking(() -> Files.readString(Path.of(tokenFile)).trim(), false);
  }

  private Future<HttpClientResponse> get(String path) {
    return token().compose(t -> http.request(new RequestOptions().setMethod(HttpMethod.GET).setURI(path)
            .putHeader("Authorization", "Bearer " + t).putHeader("Accept", "application/json")
            .setIdleTimeout(330_000))
        .compose(req -> req.send()));
  }

  private void list() {
    if (stopped) return;
    get(path(false)).compose(resp -> {
      if (resp.statusCode() != 200) {
        resp.end();
        return Future.failedFuture("the API answered " + resp.statusCode() + " to the list");
      }
      return bounded(resp);
    }).onComplete(ar -> {
      if (stopped) return;
      if (ar.failed()) {
        failed("listing EndpointSlices of Service " + namespace + "/" + service + " failed: " + describe(ar.cause()));
        timer = vertx.setTimer(nextBackoff(), t -> list());
        return;
      }
      JsonObject body;
      try {
        body = new JsonObject(ar.result());
      } catch (RuntimeException e) {
        failed("the API's list of EndpointSlices is not JSON: " + describe(e));
        timer = vertx.setTimer(nextBackoff(), t -> list());
        return;
      }
      JsonObject meta = body.getJsonObject("metadata", new JsonObject());
      resourceVersion = meta.getString("resourceVersion", "");
      slices.reset(body.getJsonArray("items", new io.vertx.core.json.JsonArray()));
      // The backoff is reset by a watch that delivers, not by a list: a server that answers every
      // watch 410 must not be listed in a tight loop.
      publish();
      watch();
    });
  }

  private Future<Buffer> bounded(HttpClientResponse resp) {
    long max = ctx.config().consulMaxAnswerBytes;
    io.vertx.core.Promise<Buffer> p = io.vertx.core.Promise.promise();
    Buffer all = Buffer.buffer();
    resp.handler(b -> {
      if (all.length() + b.length() > max) {
        resp.pause();
        resp.request().connection().close();
        p.tryFail("an answer over consul_max_answer_bytes (" + max + " bytes)");
        return;
      }
      all.appendBuffer(b);
    });
    resp.exceptionHandler(p::tryFail);
    resp.endHandler(v -> p.tryComplete(all));
    return p.future();
  }

  private void watch() {
    if (stopped) return;
    get(path(true)).onComplete(ar -> {
      if (stopped) return;
      if (ar.failed()) {
        failed("watching EndpointSlices failed: " + describe(ar.cause()));
        timer = vertx.setTimer(nextBackoff(), t -> watch());
        return;
      }
      HttpClientResponse resp = ar.result();
      if (resp.statusCode() == 410) {
        resp.end();
        LOG.info("the watch's version {} is gone (410); listing again", resourceVersion);
        timer = vertx.setTimer(nextBackoff(), t -> list());
        return;
      }
      if (resp.statusCode() != 200) {
        resp.end();
        failed("the API answered " + resp.statusCode() + " to the watch");
        timer = vertx.setTimer(nextBackoff(), t -> list());
        return;
      }
      watching = resp;
      boolean[] relist = {false};
      RecordParser lines = RecordParser.newDelimited("\n", line -> {
        if (relist[0] || line.length() == 0) return;
        relist[0] = onEvent(line);
        // Given up for a new list: end this stream (the API would keep it open).
        if (relist[0]) resp.request().connection().close();
      });
      lines.maxRecordSize((int) Math.min(Integer.MAX_VALUE, ctx.config().consulMaxAnswerBytes));
      lines.exceptionHandler(e -> {
        relist[0] = true;
        failed("a watch event over consul_max_answer_bytes; listing again");
        resp.request().connection().close();
      });
      resp.handler(lines);
      resp.exceptionHandler(e -> {
        LOG.debug("the watch broke: {}", e.toString());
        after(resp, relist[0]);
      });
      resp.endHandler(v -> after(resp, relist[0]));
    });
  }

  /** The watch ended (the server's timeout, a closed connection): resume it, or list again. */
  private void after(HttpClientResponse resp, boolean relist) {
    if (watching != resp || stopped) return;
    watching = null;
    if (relist) timer = vertx.setTimer(nextBackoff(), t -> list());
    else timer = vertx.setTimer(BACKOFF_MIN_MS, t -> watch());
  }

  /** @return true when the watch must be given up for a new list */
  private boolean onEvent(Buffer line) {
    JsonObject ev;
    try {
      ev = new JsonObject(line);
    } catch (RuntimeException e) {
      failed("a watch event that is not JSON; listing again");
      return true;
    }
    String type = ev.getString("type", "");
    JsonObject obj = ev.getJsonObject("object", new JsonObject());
    if ("ERROR".equals(type)) {
      if (obj.getInteger("code", 0) == 410) {
        LOG.info("the watch's version {} is gone (410); listing again", resourceVersion);
      } else {
        failed("the watch said: " + LogText.escape(obj.encode()));
      }
      return true;
    }
    String rv = obj.getJsonObject("metadata", new JsonObject()).getString("resourceVersion");
    if (rv != null) resourceVersion = rv;
    if (!"BOOKMARK".equals(type)) {
      slices.apply(type, obj);
      publish();
    }
    backoffMs = BACKOFF_MIN_MS;
    return false;
  }

  private void publish() {
    List<String> members = slices.members((cause, message) -> {
      ctx.metrics().registry().counter(ProxyMetrics.withTags("discoverer.invalid_members",
          "source:kubernetes:" + service, "cause:" + cause)).inc();
      memberLogs.warn("skipped/" + cause, message + " (discoverer.invalid_members counts each)");
    });
    destinationNumber.set(members.size());
    if (members.isEmpty()) {
      failed("Service " + namespace + "/" + service + " has no ready endpoint; keeping the last good ring");
      return;
    }
    if (troubled) {
      LOG.info("Service {}/{} has ready endpoints again: {}", namespace, service, members.size());
      troubled = false;
    }
    if (members.equals(published)) return;
    published = members;
    vertx.eventBus().request(Addresses.RING_MEMBERS,
        new Membership("kubernetes:" + namespace + "/" + service, members, grpcRing));
  }

  private long nextBackoff() {
    long b = backoffMs;
    backoffMs = Math.min(BACKOFF_MAX_MS, backoffMs * 2);
    return b;
  }

  private static String describe(Throwable e) {
    return LogText.escape(String.valueOf(e.getMessage() != null ? e.getMessage() : e));
  }

  private void failed(String message) {
    ctx.metrics().counter("discoverer.errors", "service", service).inc();
    if (!troubled) {
      troubled = true;
      LOG.error("{} (logged once until it recovers; discoverer.errors counts each failure)", message);
    } else {
      LOG.debug(message);
    }
  }

  @Override
  public Future<?> stop() {
    stopped = true;
    if (timer >= 0) vertx.cancelTimer(timer);
    return http == null ? Future.succeededFuture() : http.close();
  }
}
