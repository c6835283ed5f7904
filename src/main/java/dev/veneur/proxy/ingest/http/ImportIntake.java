package dev.veneur.proxy.ingest.http;

import com.codahale.metrics.Counter;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.ingest.BodySource;
import dev.veneur.proxy.ingest.Handover;
import dev.veneur.proxy.ingest.ImportRefusal;
import dev.veneur.proxy.ingest.Ingester;
import dev.veneur.proxy.ingest.Refusals;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.Owners;
import dev.veneur.proxy.spill.SpillWriter;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * What becomes of a received {@code /import} body: decoded by the verticle's {@link Ingester} on the
 * ring snapshot of its arrival, judged (empty, nothing a global would take, the sender gone, the
 * proxy stopping), and, when it holds metrics, counted and handed to the forwarders before its
 * 202, so a sender that reads its 202 finds its metrics counted. Also keeps the Go proxy's per
 * request metrics: the request timer by encoding and the metrics per sender.
 */
final class ImportIntake {
  private static final int MAX_SENDERS = 10_000;

  private final Vertx vertx;
  private final ProxyContext ctx;
  private final ProxyMetrics metrics;
  private final HttpAnswers answers;
  private final Refusals refusals;
  private final Supplier<HashRing> ring;
  private final SpillWriter spillWriter;
  private final com.codahale.metrics.Timer proxyTimer;
  /** Per encoding and per sender, looked up once rather than by name on every request. */
  private final Map<String, com.codahale.metrics.Timer> importTimers = new HashMap<>();
  private final Map<String, Counter> metricsBySender = new HashMap<>();
  /** Veneur v14's proxy.metrics_total, protocol:http. */
  private final Counter v14Metrics;
  private Ingester ingester;

  ImportIntake(Vertx vertx, ProxyContext ctx, HttpAnswers answers, Refusals refusals, Supplier<HashRing> ring,
      SpillWriter spillWriter) {
    this.vertx = vertx;
    this.ctx = ctx;
    this.metrics = ctx.metrics();
    this.answers = answers;
    this.refusals = refusals;
    this.ring = ring;
    this.spillWriter = spillWriter;
    this.proxyTimer = metrics.timer(ProxyMetrics.PROXY_DURATION);
    this.v14Metrics = metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_METRICS, "protocol:http"));
  }

  /** The Ingester is built with {@link #groups}, so it is given afterwards. */
  void ingester(Ingester ingester) {
    this.ingester = ingester;
  }

  final ImportRequest.Sink sink = new ImportRequest.Sink() {
    @Override
    public void received(ImportRequest request) {
      ingester.submit(new ImportTask(request, ring.get()));
    }

    @Override
    public void refused(HttpServerRequest req, ImportRefusal refusal, boolean close) {
      answers.refuse(req, refusal, close);
    }
  };

  /**
   * The chunks of one or more bodies the Ingester merged (bodies that were queued together, routed
   * on the same ring): kept on disk (spill_dir), counted, handed to the forwarders, and only then
   * each body answered 202, so a sender that reads its 202 finds its metrics counted.
   */
  final Ingester.Groups groups = new Ingester.Groups() {
    @Override
    public void done(java.util.List<Ingester.Task> tasks, java.util.List<Ingester.Result> results, MetricChunk[] chunks) {
      if (ctx.stopping()) {
        // Forwarders are draining for the stop: nothing new may enter the queues.
        for (MetricChunk c : chunks) if (c != null) ctx.budget().release(c.bytes());
        for (Ingester.Task t : tasks) {
          ImportTask it = (ImportTask) t;
          answers.refuse(it.request.req, new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"), false);
        }
        return;
      }
      HashRing routing = ((ImportTask) tasks.get(0)).routing;
      RequestTrace trace = null;
      for (MetricChunk c : chunks) if (c != null) trace = c.trace;
      // Counted before handed on: a chunk's trace settles when its forwarder settles it.
      int n = 0;
      for (MetricChunk c : chunks) if (c != null) n++;
      if (trace != null) trace.accepted(n);
      else for (Ingester.Task t : tasks) if (t.trace() != null) t.trace().accepted(0);
      Handover.hand(vertx.eventBus(), ctx, spillWriter, routing, chunks);
      for (int i = 0; i < tasks.size(); i++) ((ImportTask) tasks.get(i)).accepted(results.get(i));
    }

    @Override
    public void abandoned(java.util.List<Ingester.Task> tasks, java.util.List<Ingester.Result> results) {
      for (Ingester.Task t : tasks) {
        ImportTask it = (ImportTask) t;
        answers.refuse(it.request.req, new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"), false);
      }
    }
  };

  /** The largest body that may go on as it came, compressed: a batch_max_bytes of the default. */
  static final long MAX_WHOLE_BYTES = 1L << 20;

  /** A received body: decode it, then answer and hand its chunks on. */
  private final class ImportTask implements Ingester.Task {
    final ImportRequest request;
    final HashRing routing;
    /** Built when the task starts; counts its chunks once they exist. */
    final RequestTrace trace;

    /** Whether its body may go on as it came (see {@link #mayPassThrough}); decided on arrival. */
    final boolean passThrough;

    ImportTask(ImportRequest request, HashRing routing) {
      this.request = request;
      this.routing = routing;
      this.trace = new RequestTrace(proxyTimer);
      this.passThrough = passesThrough(request, routing);
    }

    /**
     * With one global, reached by HTTP, a zlib body whose metrics are all valid needs no
     * re-batching: it goes on as it came, with no deflate (issue 19). Bodies of another encoding,
     * or a body past MAX_WHOLE_BYTES (a batch of its own that large would be a large POST), are
     * re-batched as usual.
     */
    private static boolean passesThrough(ImportRequest request, HashRing routing) {
      if (routing.size() != 1 || dev.veneur.proxy.config.MemberAddress.isGrpc(routing.member(0))) return false;
      String enc = request.req.getHeader("Content-Encoding");
      if (enc == null || !enc.trim().equalsIgnoreCase("deflate")) return false;
      return request.bodyBytes() <= MAX_WHOLE_BYTES && request.startsAsZlib();
    }

    @Override
    public boolean mayPassThrough() {
      return passThrough;
    }

    @Override
    public byte[] passThroughBody(int metrics, long decodedBytes) {
      // A body is a batch of its own: one over the operator's batch limits is re-batched instead.
      dev.veneur.proxy.config.ProxyConfig cfg = ctx.config();
      if (metrics > cfg.batchMaxMetrics || decodedBytes > cfg.batchMaxBytes) return null;
      return request.bodyCopy();
    }

    @Override
    public void open(BodySource source) {
      if (routing.isEmpty()) {
        throw new ImportRefusal(503, "no_destination", "no global Veneur is available yet; retry later");
      }
      source.open(request.req.getHeader("Content-Encoding"), request.body(), ctx.config().maxInflatedBytes);
    }

    @Override
    public Owners router() {
      return Owners.of(routing);
    }

    @Override
    public RequestTrace trace() {
      return trace;
    }

    @Override
    public Object mergeKey() {
      // A body that may go as it came is not merged with others (if it cannot, it goes alone).
      return passThrough ? null : routing;
    }

    @Override
    public void done(Ingester.Result r) {
      if (scanned(r)) groups.done(java.util.List.of(this), java.util.List.of(r), r.chunks);
      else r.release(ctx.budget());
    }

    /** Its body is scanned: answered now if nothing in it is kept; else kept for the 202. */
    @Override
    public boolean scanned(Ingester.Result r) {
      request.release();
      HttpServerRequest req = request.req;
      HttpServerResponse resp = req.response();
      if (r.valid + r.dropped() == 0) {
        answers.refuse(req, new ImportRefusal(400, "empty", "Received empty /import request"), false);
        return false;
      }
      if (r.valid + r.refused + r.incomplete == 0) {
        answers.refuse(req, new ImportRefusal(400, "empty_metrics", "Received empty or improperly-formed metrics"), false);
        return false;
      }
      if (r.valid == 0 && r.refused > 0) {
        // Nothing a global would take: say why, as the Go proxy does for a body it cannot decode.
        answers.refuse(req, new ImportRefusal(400, "json", "no metric a global would accept: " + r.refusal), false);
        return false;
      }
      if (resp.closed()) {
        // The sender is gone and never saw a 202: it will send again; keep nothing.
        return false;
      }
      if (ctx.stopping()) {
        // Forwarders are draining for the stop: nothing new may enter the queues.
        answers.refuse(req, new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"), false);
        return false;
      }
      return true;
    }

    /** Answered 202, once its metrics are counted (its chunks are on their way). */
    void accepted(Ingester.Result r) {
      HttpServerRequest req = request.req;
      HttpServerResponse resp = req.response();
      ctx.accounting().droppedOnArrival(r.dropped(), "invalid_metric");
      // Answered once every metric is counted, so a sender that reads the 202 and then the
      // proxy's counters sees its metrics there. A sender that left while the bodies queued
      // behind its own were merged gets its metrics forwarded all the same (it may send them
      // again, as after a 202 lost on the way).
      if (!resp.closed() && !resp.ended()) resp.setStatusCode(202).end();
      // As the Go proxy: timed for accepted requests only, tagged with the body's encoding.
      importTimers.computeIfAbsent(encodingTag(req.getHeader("Content-Encoding")),
              e -> metrics.timer(ProxyMetrics.withTags(ProxyMetrics.IMPORT_DURATION, "part:request", "encoding:" + e)))
          .update(System.nanoTime() - request.startedNanos, TimeUnit.NANOSECONDS);
      String addr = req.remoteAddress() == null ? "unknown" : req.remoteAddress().hostAddress();
      // One series per sender, as the Go proxy; past MAX_SENDERS distinct senders (a fleet whose
      // hosts come and go for weeks) the rest are counted under one tag rather than grow forever.
      if (!metricsBySender.containsKey(addr) && metricsBySender.size() >= MAX_SENDERS) addr = "other";
      metricsBySender.computeIfAbsent(addr, a -> metrics.registry().counter(ProxyMetrics.withTags(
          ProxyMetrics.IMPORT_METRICS, "remote_addr:" + a, "veneurglobalonly"))).inc(r.valid + r.dropped());
      v14Metrics.inc(r.valid + r.dropped());
      if (r.refused > 0) {
        refusals.warn("refused_metric", "dropped " + r.refused + " metric(s) from " + req.remoteAddress()
            + " that a global would refuse (" + r.refusal + "); forwarded the other " + r.valid);
      }
    }

    @Override
    public void failed(ImportRefusal refusal) {
      request.release();
      answers.refuse(request.req, refusal, false);
    }
  }

  private static String encodingTag(String contentEncoding) {
    if (contentEncoding == null || contentEncoding.isBlank()) return "identity";
    return contentEncoding.trim().toLowerCase(java.util.Locale.ROOT);
  }
}
