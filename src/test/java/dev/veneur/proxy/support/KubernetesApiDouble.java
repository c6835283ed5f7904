package dev.veneur.proxy.support;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The part of the Kubernetes API that endpoint discovery uses, answering as Kubernetes does, on a
 * real port: {@code GET /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices?labelSelector=
 * kubernetes.io/service-name=<svc>} lists with a {@code resourceVersion}; with {@code watch=true}
 * it streams newline-delimited events (ADDED, MODIFIED, DELETED, BOOKMARK) from the version asked,
 * chunked, until the test closes it; a version older than what it keeps is {@code 410 Gone}. It
 * checks the bearer token and can be made unreachable (503).
 */
public final class KubernetesApiDouble implements AutoCloseable {
  private final HttpServer server;
  private final String namespace;
  private final Map<String, JsonObject> slices = new ConcurrentHashMap<>();
  private final List<JsonObject> history = new CopyOnWriteArrayList<>();
  private final List<HttpServerResponse> watches = new CopyOnWriteArrayList<>();
  private final AtomicLong version = new AtomicLong(100);
  /** Versions below this are gone (410). */
  private final AtomicLong compacted = new AtomicLong(0);
  public final AtomicReference<String> token = new AtomicReference<>("token-1");
  public final AtomicBoolean down = new AtomicBoolean();
  public final AtomicInteger lists = new AtomicInteger();
  public final AtomicInteger watchesOpened = new AtomicInteger();
  public final AtomicInteger unauthorized = new AtomicInteger();
  public final AtomicInteger gone = new AtomicInteger();

  private KubernetesApiDouble(Vertx vertx, String namespace) {
    this.namespace = namespace;
    server = vertx.createHttpServer().requestHandler(req -> {
      if (down.get()) {
        req.response().setStatusCode(503).end("{\"kind\":\"Status\",\"code\":503}");
        return;
      }
      if (!("Bearer " + token.get()).equals(req.getHeader("Authorization"))) {
        unauthorized.incrementAndGet();
        req.response().setStatusCode(401).end("{\"kind\":\"Status\",\"code\":401,\"reason\":\"Unauthorized\"}");
        return;
      }
      String prefix = "/apis/discovery.k8s.io/v1/namespaces/" + namespace + "/endpointslices";
      if (!req.path().equals(prefix)) {
        req.response().setStatusCode(404).end("{\"kind\":\"Status\",\"code\":404}");
        return;
      }
      String selector = req.getParam("labelSelector");
      String svc = selector == null ? null : selector.replace("kubernetes.io/service-name=", "");
      if ("true".equals(req.getParam("watch"))) {
        long from = Long.parseLong(req.getParam("resourceVersion", "0"));
        if (from < compacted.get()) {
          gone.incrementAndGet();
          req.response().setStatusCode(410).end("{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}");
          return;
        }
        watchesOpened.incrementAndGet();
        HttpServerResponse resp = req.response().setChunked(true).putHeader("Content-Type", "application/json");
        resp.putHeader("X-Service", svc);
        resp.write("");
        for (JsonObject ev : history) {
          if (version(ev) > from && svc.equals(service(ev))) resp.write(ev.encode() + "\n");
        }
        watches.add(resp);
        resp.closeHandler(v -> watches.remove(resp));
        return;
      }
      lists.incrementAndGet();
      if (padListTo.get() > 0) {
        req.response().putHeader("Content-Type", "application/json")
            .end("{\"kind\":\"EndpointSliceList\",\"padding\":\"" + "y".repeat(padListTo.get()) + "\"}");
        return;
      }
      JsonArray items = new JsonArray();
      for (JsonObject s : slices.values()) if (svc != null && svc.equals(serviceOf(s))) items.add(s);
      req.response().putHeader("Content-Type", "application/json").end(new JsonObject().put("kind", "EndpointSliceList")
          .put("apiVersion", "discovery.k8s.io/v1")
          .put("metadata", new JsonObject().put("resourceVersion", String.valueOf(version.get())))
          .put("items", items).encode());
    });
    server.listen(0, "127.0.0.1").await();
  }

  public static KubernetesApiDouble start(Vertx vertx, String namespace) {
    return new KubernetesApiDouble(vertx, namespace);
  }

  public String url() {
    return "http://127.0.0.1:" + server.actualPort();
  }

  /** An EndpointSlice of {@code service}: one port named {@code portName}, endpoints (address, ready). */
  public static JsonObject slice(String name, String service, String portName, int port, Object... addressReady) {
    JsonArray endpoints = new JsonArray();
    for (int i = 0; i < addressReady.length; i += 2) {
      endpoints.add(new JsonObject().put("addresses", new JsonArray().add(addressReady[i]))
          .put("conditions", new JsonObject().put("ready", addressReady[i + 1])));
    }
    return new JsonObject().put("kind", "EndpointSlice").put("apiVersion", "discovery.k8s.io/v1")
        .put("metadata", new JsonObject().put("name", name)
            .put("labels", new JsonObject().put("kubernetes.io/service-name", service)))
        .put("addressType", "IPv4")
        .put("ports", new JsonArray().add(new JsonObject().put("name", portName).put("port", port).put("protocol", "TCP")))
        .put("endpoints", endpoints);
  }

  /** Changes a slice (ADDED, MODIFIED, DELETED) and tells every open watch. */
  public synchronized void event(String type, JsonObject slice) {
    long v = version.incrementAndGet();
    JsonObject s = slice.copy();
    s.getJsonObject("metadata").put("resourceVersion", String.valueOf(v));
    String name = s.getJsonObject("metadata").getString("name");
    if (type.equals("DELETED")) slices.remove(name);
    else slices.put(name, s);
    JsonObject ev = new JsonObject().put("type", type).put("object", s);
    history.add(ev);
    for (HttpServerResponse w : watches) {
      if (serviceOf(s).equals(w.headers().get("X-Service"))) w.write(ev.encode() + "\n");
    }
  }

  /** A BOOKMARK on every watch: the version moves on, nothing changes. */
  public synchronized void bookmark() {
    long v = version.incrementAndGet();
    JsonObject ev = new JsonObject().put("type", "BOOKMARK").put("object", new JsonObject().put("kind", "EndpointSlice")
        .put("metadata", new JsonObject().put("resourceVersion", String.valueOf(v))));
    for (HttpServerResponse w : watches) w.write(ev.encode() + "\n");
  }

  /** Writes {@code bytes} of one event that never ends (no newline) to every open watch. */
  public void endlessEvent(int bytes) {
    StringBuilder b = new StringBuilder("{\"type\":\"ADDED\",\"object\":{\"padding\":\"");
    while (b.length() < bytes) b.append("x".repeat(1024));
    for (HttpServerResponse w : watches) w.write(b.toString());
  }

  /** When set, every list answer is padded past this many bytes (a hostile or broken API). */
  public final AtomicInteger padListTo = new AtomicInteger();

  /** Ends every open watch, as the API server does when its timeout runs out. */
  public void closeWatches() {
    for (HttpServerResponse w : watches) w.end();
    watches.clear();
  }

  /**
   * The version moves on (changes elsewhere in the cluster) and the history up to now is
   * forgotten, as after etcd's compaction: a watch from an older version gets 410 Gone.
   */
  public synchronized void compact() {
    compacted.set(version.incrementAndGet());
    history.clear();
  }

  public int openWatches() {
    return watches.size();
  }

  private static long version(JsonObject ev) {
    return Long.parseLong(ev.getJsonObject("object").getJsonObject("metadata").getString("resourceVersion"));
  }

  private static String service(JsonObject ev) {
    return serviceOf(ev.getJsonObject("object"));
  }

  private static String serviceOf(JsonObject slice) {
    return slice.getJsonObject("metadata").getJsonObject("labels").getString("kubernetes.io/service-name");
  }

  @Override
  public void close() {
    server.close();
  }
}
