package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.core.Descriptors;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code GET /debug/state}: ring members, queues, memory, connections and descriptors, and the
 * counters needed to check the accounting. Served on {@code http_address} and on the admin listener.
 */
public final class StateReport {
  private StateReport() {}

  public static Future<JsonObject> render(Vertx vertx, ProxyContext ctx) {
    return vertx.eventBus().<JsonObject>request(Addresses.RING_STATE, null).transform(ar -> {
      JsonObject state = ar.succeeded() ? ar.result().body().copy() : new JsonObject().put("ring", "unavailable");
      ProxyMetrics m = ctx.metrics();
      JsonObject dropped = new JsonObject();
      m.droppedByCause().forEach(dropped::put);
      JsonObject errors = new JsonObject();
      Map<String, Long> byCause = new TreeMap<>();
      String prefix = ProxyMetrics.IMPORT_ERRORS + "#cause:";
      m.registry().getCounters((name, metric) -> name.startsWith(prefix))
          .forEach((name, c) -> byCause.put(name.substring(prefix.length()), c.getCount()));
      byCause.forEach(errors::put);
      long[] acc = m.accountingSnapshot();
      long received = acc[0];
      long forwarded = acc[1];
      long droppedTotal = acc[2];
      long queued = acc[3];
      JsonObject dests = new JsonObject();
      new TreeMap<>(ctx.destinations()).forEach((d, s) -> dests.put(d, new JsonObject()
          .put("queued_metrics", s.queuedMetrics.get())
          .put("queued_bytes", s.queuedBytes.get())
          .put("in_flight", s.inFlight.get())
          .put("excluded", s.excluded)
          .put("handed_back_metrics", s.handedBackMetrics.get())));
      state.put("destinations", dests);
      state.put("memory", new JsonObject()
          .put("budget_bytes", ctx.budget().limit())
          .put("used_bytes", ctx.budget().used())
          .put("receiving_bytes", ctx.budget().receiving())
          .put("waiting_requests", ctx.budget().waiting()));
      state.put("connections", ctx.connections().get());
      state.put("clients", ctx.clients());
      state.put("descriptors", ctx.descriptors().toJson(Descriptors.openNow(), ctx.perClientCap()));
      state.put("admin_address", ctx.adminAddress());
      dev.veneur.proxy.spill.Spill spill = ctx.spill();
      if (spill != null) {
        state.put("spill", new JsonObject()
            .put("status", spill.healthy() ? "ok" : "failing")
            .put("dir", spill.dir().toString())
            .put("bytes_on_disk", spill.bytesOnDisk())
            .put("segments", spill.segments())
            .put("bytes_written", spill.bytesWritten())
            .put("errors", spill.errors())
            .put("last_error", spill.lastError())
            .put("failing_since_ms", spill.failingSinceMillis())
            .put("metrics_not_kept", spill.metricsNotKept())
            .put("chunks_not_kept", spill.chunksNotKept()));
      }
      state.put("counters", new JsonObject()
          .put("received", received).put("forwarded", forwarded).put("dropped", dropped)
          .put("dropped_total", droppedTotal).put("queued", queued).put("queued_bytes", acc[4])
          .put("request_errors", errors));
      state.put("accounting", new JsonObject()
          .put("received", received)
          .put("forwarded_plus_dropped_plus_queued", forwarded + droppedTotal + queued));
      state.put("stopping", ctx.stopping());
      // Rejected config changes (bad YAML, a broken bound, an invalid value): the running config stays.
      state.put("config", new JsonObject()
          .put("reload_errors", m.registry().counter("config.reload_errors").getCount())
          .put("compat", ctx.config().compat.generation())
          .put("compat_reason", ctx.config().compat.reason())
          .put("globals_by", ctx.config().grpcRing && ctx.config().jsonRing ? "http for json, grpc for grpc"
              : ctx.config().grpcRing ? "grpc" : "http"));
      return Future.succeededFuture(state);
    });
  }
}
