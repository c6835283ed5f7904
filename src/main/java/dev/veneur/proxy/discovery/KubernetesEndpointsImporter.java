package dev.veneur.proxy.discovery;

import dev.veneur.proxy.config.LogText;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.parsetools.RecordParser;
import io.vertx.servicediscovery.Record;
import io.vertx.servicediscovery.spi.ServiceImporter;
import io.vertx.servicediscovery.spi.ServicePublisher;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Imports a Kubernetes Service's ready endpoints into Vert.x Service Discovery, one record per
 * member, as {@link ConsulHealthImporter} does for a Consul service: its EndpointSlices
 * ({@code discovery.k8s.io/v1}, label {@code kubernetes.io/service-name}) in one namespace, listed
 * once and then watched (a chunked stream of ADDED, MODIFIED, DELETED and BOOKMARK events from the
 * list's {@code resourceVersion}) with the Vert.x HTTP client; the members are worked out by
 * {@link EndpointSlices}.
 *
 * <p>A watch the server closes is resumed from the last version seen; a {@code 410 Gone} (the
 * version was compacted away) lists again; failures back off from 250 ms to 10 s and change no
 * record. The token file is read for every request, so a rotated token is used as soon as it is on
 * disk. Answers and events are read up to a bound each, never whole beyond it. Zero ready endpoints
 * is mirrored faithfully (every record unpublished); keeping the last good ring then is the
 * discovery verticle's decision, as for Consul.
 */
final class KubernetesEndpointsImporter implements ServiceImporter {
  private static final Logger LOG = LoggerFactory.getLogger(KubernetesEndpointsImporter.class);
  private static final long BACKOFF_MIN_MS = 250;
  private static final long BACKOFF_MAX_MS = 10_000;

  /** What the importer tells its owner after every change or failure. */
  interface Listener {
    /** The records now match the Service's ready endpoints: {@code ready} of them. */
    void synced(int ready);

    void failed(String message);

    /** An endpoint left out: {@code cause} for the counter, {@code message} for the log. */
    void skipped(String cause, String message);
  }

  private final HttpClient http;
  private final URI api;
  private final String namespace;
  private final String service;
  private final String tokenFile;
  private final long maxBytes;
  private final EndpointSlices slices;
  private final String importerId;
  private final Listener listener;
  private final Map<String, String> registrations = new HashMap<>();
  private Vertx vertx;
  private ServicePublisher publisher;
  private String resourceVersion;
  private long backoffMs = BACKOFF_MIN_MS;
  private volatile boolean stopped;
  private long timer = -1;
  private HttpClientResponse watching;

  KubernetesEndpointsImporter(HttpClient http, URI api, String namespace, String service, String tokenFile,
      long maxBytes, EndpointSlices slices, String importerId, Listener listener) {
    this.http = http;
    this.api = api;
    this.namespace = namespace;
    this.service = service;
    this.tokenFile = tokenFile;
    this.maxBytes = maxBytes;
    this.slices = slices;
    this.importerId = importerId;
    this.listener = listener;
  }

  @Override
  public void start(Vertx vertx, ServicePublisher publisher, JsonObject configuration, Promise<Void> started) {
    this.vertx = vertx;
    this.publisher = publisher;
    started.complete();
    list();
  }

  private String path(boolean watch) {
    String selector = URLEncoder.encode("kubernetes.io/service-name=" + service, StandardCharsets.UTF_8);
    String base = (api.getPath() == null ? "" : api.getPath().replaceAll("/+$", "")) + "/apis/" + KubernetesDiscoveryVerticle.API_GROUP
        + "/v1/namespaces/" + namespace + "/" + KubernetesDiscoveryVerticle.RESOURCE + "?labelSelector=" + selector;
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
    long max = maxBytes;
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
      lines.maxRecordSize((int) Math.min(Integer.MAX_VALUE, maxBytes));
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

  /** Publishes records of new members, unpublishes gone ones, then tells the listener. */
  private void publish() {
    List<String> members = slices.members(listener::skipped);
    List<Future<?>> ops = new ArrayList<>();
    for (String gone : new ArrayList<>(registrations.keySet())) {
      if (!members.contains(gone)) ops.add(publisher.unpublish(registrations.remove(gone)));
    }
    for (String m : members) {
      if (registrations.containsKey(m)) continue;
      registrations.put(m, "");
      Record r = new Record().setName(service).setType("http-endpoint")
          .setMetadata(new JsonObject().put(ConsulHealthImporter.META_IMPORTER, importerId).put("member", m)
              .put("kubernetes-namespace", namespace));
      ops.add(publisher.publish(r).onSuccess(pub -> registrations.put(m, pub.getRegistration())));
    }
    int ready = members.size();
    Future.join(ops).onComplete(x -> {
      if (!stopped) listener.synced(ready);
    });
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
    listener.failed(message);
  }

  @Override
  public void close(Handler<Void> done) {
    stopped = true;
    if (timer >= 0 && vertx != null) vertx.cancelTimer(timer);
    List<Future<?>> ops = new ArrayList<>();
    for (String reg : registrations.values()) if (!reg.isEmpty()) ops.add(publisher.unpublish(reg));
    registrations.clear();
    Future.join(ops).onComplete(x -> done.handle(null));
  }
}
