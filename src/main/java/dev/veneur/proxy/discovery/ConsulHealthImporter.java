package dev.veneur.proxy.discovery;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.consul.BlockingQueryOptions;
import io.vertx.ext.consul.Check;
import io.vertx.ext.consul.CheckStatus;
import io.vertx.ext.consul.ConsulClient;
import io.vertx.ext.consul.ServiceEntry;
import io.vertx.ext.consul.ServiceEntryList;
import io.vertx.ext.consul.ServiceQueryOptions;
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
  }

  public static final String META_IMPORTER = "veneur-proxy-importer";

  private final ConsulClient client;
  private final String service;
  private final Duration wait;
  private final String importerId;
  private final Listener listener;
  private final boolean nodeAddress;
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
  public ConsulHealthImporter(ConsulClient client, String service, Duration wait, String importerId,
      boolean nodeAddress, Listener listener) {
    this.nodeAddress = nodeAddress;
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
    ServiceQueryOptions opts = new ServiceQueryOptions().setBlockingOptions(
        new BlockingQueryOptions().setIndex(index).setWait(wait.toMillis() + "ms"));
    client.healthServiceNodesWithOptions(service, true, opts).onComplete(ar -> {
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
      ServiceEntryList answer = ar.result();
      long next = answer.getIndex();
      if (next < index) {
        // Consul's docs: an index that goes backwards (a snapshot restore, a new leader) means
        // start over from 0 rather than block on an index that will not come again.
        LOG.info("Consul index for '{}' went backwards ({} -> {}); resetting", service, index, next);
        next = 0;
      }
      index = Math.max(next, 0);
      apply(answer.getList()).onComplete(done -> {
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
  private Future<Integer> apply(List<ServiceEntry> entries) {
    Map<String, ServiceEntry> healthy = new LinkedHashMap<>();
    for (ServiceEntry e : entries == null ? List.<ServiceEntry>of() : entries) {
      if (!allPassing(e) || e.getService() == null || e.getService().getPort() <= 0) continue;
      // The service's own address by default (where the global says it listens); the node's
      // with consul_member_address: node, which is what the Go proxy v2 used, so a fleet running
      // both side by side during a swap computes the same ring.
      String nodeAddr = e.getNode() == null ? null : e.getNode().getAddress();
      String address = nodeAddress ? nodeAddr : e.getService().getAddress();
      if (address == null || address.isBlank()) address = nodeAddr;
      if (address == null || address.isBlank()) continue;
      // Several entries may name the same destination; they collapse into one member.
      healthy.putIfAbsent(member(address, e.getService().getPort()), e);
    }
    List<Future<?>> ops = new ArrayList<>();
    for (String gone : new ArrayList<>(registrations.keySet())) {
      if (!healthy.containsKey(gone)) {
        String reg = registrations.remove(gone);
        ops.add(publisher.unpublish(reg));
      }
    }
    for (Map.Entry<String, ServiceEntry> h : healthy.entrySet()) {
      if (registrations.containsKey(h.getKey())) continue;
      ServiceEntry e = h.getValue();
      String host = h.getKey().substring("http://".length(), h.getKey().lastIndexOf(':'));
      JsonObject meta = new JsonObject()
          .put(META_IMPORTER, importerId)
          .put("member", h.getKey())
          .put("consul-node", e.getNode() == null ? "" : e.getNode().getName())
          .put("consul-service-id", e.getService().getId());
      Record r = HttpEndpoint.createRecord(service, false, host, e.getService().getPort(), "/", meta);
      ops.add(publisher.publish(r).onSuccess(pub -> registrations.put(h.getKey(), pub.getRegistration())));
    }
    int count = healthy.size();
    return Future.join(ops).map(v -> count);
  }

  /** The {@code ?passing} filter already does this in Consul; checking again costs nothing. */
  private static boolean allPassing(ServiceEntry e) {
    if (e.getChecks() == null) return true;
    for (Check c : e.getChecks()) {
      if (c.getStatus() != CheckStatus.PASSING) return false;
    }
    return true;
  }

  /** The ring member for an instance, spelled as the Go proxy spells it. */
  static String member(String address, int port) {
    String host = address.contains(":") && !address.startsWith("[") ? "[" + address + "]" : address;
    return "http://" + host + ":" + port;
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
