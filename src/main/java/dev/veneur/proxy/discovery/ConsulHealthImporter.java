package dev.veneur.proxy.discovery;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import dev.veneur.proxy.config.LogText;
import dev.veneur.proxy.config.MemberAddress;
import dev.veneur.proxy.discovery.ConsulHealthClient.Instance;
import io.vertx.servicediscovery.Record;
import io.vertx.servicediscovery.spi.ServiceImporter;
import io.vertx.servicediscovery.spi.ServicePublisher;
import io.vertx.servicediscovery.types.HttpEndpoint;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Imports the healthy instances of one Consul service into Vert.x Service Discovery, one record
 * per {@code http://address:port}.
 *
 * <p>Why not the stock {@code ConsulServiceImporter} of the Consul bridge: it lists the whole
 * catalogue ({@code /v1/catalog/services}) on every poll and then asks for each service, and it
 * keys records by the Consul service ID, which is unique only per node. Fleets commonly register
 * every global under the same ID on every node (ID {@code veneur} on each), so it would keep one
 * instance and lose the rest. This importer asks only for the wanted service, through
 * {@code /v1/health/service/<name>?passing} as blocking queries ({@code index} + {@code wait}), so
 * a change reaches the ring within a round trip instead of a poll period, and keys records by the
 * destination itself.
 *
 * <p>An error from Consul changes nothing: the records stay as they were and the listener hears of
 * it. Zero healthy instances is mirrored faithfully (every record unpublished); keeping the last
 * good ring in that case is the ring's decision, not the importer's.
 *
 * <p>Each instance is checked on its own ({@link MemberAddress#consul}): one that cannot be a
 * member (port 70000, a path or a newline in its address) is left out and reported to the
 * listener, and never takes the others with it; an address carrying its port
 * ({@code "10.0.0.5:8128"}) is read as host and port.
 */
public final class ConsulHealthImporter implements ServiceImporter {
  private static final Logger LOG = LoggerFactory.getLogger(ConsulHealthImporter.class);
  /** Consul may answer a blocking query at once (index 0, or an index reset); don't spin on it. */
  private static final long MIN_QUERY_GAP_MS = 100;
  private static final long MAX_ERROR_BACKOFF_MS = 10_000;

  /** What the importer tells its owner after every answer or failure. */
  public interface Listener {
    /** A Consul answer was applied; {@code healthy} is how many instances it listed. */
    void synced(int healthy, long durationNanos);

    void failed(Throwable cause, long durationNanos);

    /** An instance left out: {@code cause} for the counter, {@code message} (escaped) for the log. */
    void skipped(String cause, String message);

    /** An instance kept, but registered oddly (a port in its address that differs from Service.Port). */
    void odd(String message);
  }

  public static final String META_IMPORTER = "veneur-proxy-importer";

  private final ConsulHealthClient client;
  private final String service;
  private final Duration wait;
  private final String importerId;
  private final Listener listener;
  private final boolean nodeAddress;
  /** Members of a ring of gRPC globals: {@code <Node.Address>:<Service.Port>}, as Veneur v14 names them. */
  private final boolean grpc;
  private final Map<String, String> registrations = new HashMap<>();
  private Vertx vertx;
  private ServicePublisher publisher;
  private long index;
  private long errorBackoffMs;
  private volatile boolean closed;

  /**
   * @param wait how long Consul may hold a blocking query; the answer comes at least this often
   * @param importerId tags this importer's records, so several proxies can share one Vertx
   */
  ConsulHealthImporter(ConsulHealthClient client, String service, Duration wait, String importerId,
      boolean nodeAddress, boolean grpc, Listener listener) {
    this.nodeAddress = nodeAddress;
    this.grpc = grpc;
    this.client = client;
    this.service = service;
    this.wait = wait;
    this.importerId = importerId;
    this.listener = listener;
  }

  @Override
  public void start(Vertx vertx, ServicePublisher publisher, JsonObject configuration,
      Promise<Void> started) {
    this.vertx = vertx;
    this.publisher = publisher;
    started.complete();
    query();
  }

  private void query() {
    if (closed) return;
    long t0 = System.nanoTime();
    client.healthyInstances(service, index, wait.toMillis()).onComplete(ar -> {
      if (closed) return;
      if (ar.failed()) {
        listener.failed(ar.cause(), System.nanoTime() - t0);
        errorBackoffMs = errorBackoffMs == 0 ? 250 : Math.min(errorBackoffMs * 2, MAX_ERROR_BACKOFF_MS);
        vertx.setTimer(errorBackoffMs, t -> query());
        return;
      }
      errorBackoffMs = 0;
      // The update is timed from Consul's answer: the blocking wait before it is not work.
      long answered = System.nanoTime();
      ConsulHealthClient.Answer answer = ar.result();
      long next = answer.index();
      if (next < index) {
        // Consul's docs: an index that goes backwards (a snapshot restore, a new leader) means
        // start over from 0 rather than block on an index that will not come again.
        LOG.info("Consul index for '{}' went backwards ({} -> {}); resetting", service, index, next);
        next = 0;
      }
      index = Math.max(next, 0);
      apply(answer.instances()).onComplete(done -> {
        long took = System.nanoTime() - answered;
        if (done.succeeded()) listener.synced(done.result(), took);
        else listener.failed(done.cause(), took);
        long gap = MIN_QUERY_GAP_MS - (System.nanoTime() - t0) / 1_000_000;
        if (gap > 0) vertx.setTimer(gap, t -> query());
        else query();
      });
    });
  }

  /** Publishes new instances, unpublishes gone ones; completes with the healthy count. */
  private Future<Integer> apply(List<Instance> entries) {
    Map<String, Instance> healthy = new LinkedHashMap<>();
    for (Instance e : entries) {
      if (!e.allPassing()) continue;
      // The service's own address by default (where the global says it listens); the node's
      // with consul_member_address: node, which is what the Go proxy v2 used, so a fleet running
      // both side by side during a swap computes the same ring. Checked on its own: a bad one is
      // left out alone.
      MemberAddress.Checked c = grpc
          ? MemberAddress.consulGrpc(e.nodeAddress(), e.port())
          : MemberAddress.consul(e.serviceAddress(), e.nodeAddress(), e.port(), nodeAddress);
      if (!c.ok()) {
        listener.skipped(c.cause(), "skipping instance " + describe(e) + ": " + c.reason());
        continue;
      }
      if (c.note() != null) listener.odd("instance " + describe(e) + ": " + c.note());
      // Several entries may name the same destination; they collapse into one member.
      healthy.putIfAbsent(c.member(), e);
    }
    List<Future<?>> ops = new ArrayList<>();
    for (String gone : new ArrayList<>(registrations.keySet())) {
      if (!healthy.containsKey(gone)) {
        String reg = registrations.remove(gone);
        ops.add(publisher.unpublish(reg));
      }
    }
    for (Map.Entry<String, Instance> h : healthy.entrySet()) {
      if (registrations.containsKey(h.getKey())) continue;
      Instance e = h.getValue();
      String member = h.getKey();
      int colon = member.lastIndexOf(':');
      String host = member.substring("http://".length(), colon);
      int port = Integer.parseInt(member.substring(colon + 1));
      JsonObject meta = new JsonObject()
          .put(META_IMPORTER, importerId)
          .put("member", member)
          .put("consul-node", e.node() == null ? "" : e.node())
          .put("consul-service-id", e.serviceId() == null ? "" : e.serviceId());
      Record r = HttpEndpoint.createRecord(service, false, host, port, "/", meta);
      ops.add(publisher.publish(r).onSuccess(pub -> registrations.put(member, pub.getRegistration())));
    }
    int count = healthy.size();
    return Future.join(ops).map(v -> count);
  }

  /** An instance for a log line: node, service ID, addresses and port, all escaped. */
  private static String describe(Instance e) {
    return "(node " + LogText.escape(e.node()) + ", service ID " + LogText.escape(e.serviceId())
        + ", Service.Address '" + LogText.escape(e.serviceAddress()) + "', Node.Address '"
        + LogText.escape(e.nodeAddress()) + "', Service.Port " + e.port() + ")";
  }

  @Override
  public void close(Handler<Void> done) {
    closed = true;
    List<Future<?>> ops = new ArrayList<>();
    for (String reg : registrations.values()) ops.add(publisher.unpublish(reg));
    registrations.clear();
    Future.join(ops).onComplete(x -> done.handle(null));
  }
}
