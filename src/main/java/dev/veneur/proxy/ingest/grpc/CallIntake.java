package dev.veneur.proxy.ingest.grpc;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.ingest.Admission;
import dev.veneur.proxy.ingest.BodySource;
import dev.veneur.proxy.ingest.GrpcTranslator;
import dev.veneur.proxy.ingest.Handover;
import dev.veneur.proxy.ingest.ImportRefusal;
import dev.veneur.proxy.ingest.Ingester;
import dev.veneur.proxy.ingest.Refusals;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.Owners;
import dev.veneur.proxy.spill.SpillWriter;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServerRequest;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * What becomes of a gRPC call's metrics: each message is checked as a v14 global would and sorted
 * by destination ({@link GrpcTranslator}); what a gRPC global owns is spliced into protobuf chunks
 * and handed on at once, the rest goes as JSON through the verticle's {@link Ingester}, in parts of
 * a stream ({@code STREAM_PART_BYTES}). The call is answered OK once every part is counted and
 * queued, or refused with a gRPC status and a one-line message, counted by cause.
 */
final class CallIntake {
  /** A SendMetricsV2 stream is handed on in parts of about this much JSON, not held whole. */
  static final int STREAM_PART_BYTES = 256 * 1024;

  private final Vertx vertx;
  private final ProxyContext ctx;
  private final ProxyMetrics metrics;
  private final Ingester ingester;
  private final SpillWriter spillWriter;
  private final Refusals refusals;
  private final Supplier<HashRing> ring;
  private final com.codahale.metrics.Timer proxyTimer;

  CallIntake(Vertx vertx, ProxyContext ctx, Ingester ingester, SpillWriter spillWriter, Refusals refusals,
      Supplier<HashRing> ring) {
    this.vertx = vertx;
    this.ctx = ctx;
    this.metrics = ctx.metrics();
    this.ingester = ingester;
    this.spillWriter = spillWriter;
    this.refusals = refusals;
    this.ring = ring;
    this.proxyTimer = metrics.timer(ProxyMetrics.PROXY_DURATION);
  }

  /** One call: its messages become parts (one per unary call; ~256 KiB of JSON each for a stream). */
  final class Call implements Admission.Listener {
    final GrpcServerRequest<Buffer, Buffer> req;
    final GrpcCall bytes;
    final boolean stream;
    final long started = System.nanoTime();
    final RequestTrace trace = new RequestTrace(proxyTimer);
    GrpcTranslator part;
    int partsOut;
    int chunksOut;
    int messages;
    boolean ended;
    boolean answered;

    Call(GrpcServerRequest<Buffer, Buffer> req, GrpcCall bytes, boolean stream) {
      this.req = req;
      this.bytes = bytes;
      this.stream = stream;
    }

    void begin() {
      bytes.begin(this, ctx.config().httpRequestTimeout.toMillis());
      req.handler(this::onMessage);
      req.endHandler(v -> {
        ended = true;
        if (answered) return;
        if (part != null) submit();
        // A unary call must carry its one message; an empty MetricList is a message (answered OK,
        // as a v14 global answers it), no message at all is not.
        else if (!stream && messages == 0) fail(GrpcStatus.INVALID_ARGUMENT, "empty", "SendMetrics without a MetricList");
        maybeAnswer();
      });
      // A message over grpc_max_message_bytes is never buffered: Vert.x skips its bytes and says so
      // here (what arrived of it was counted in the budget and goes back when the call ends).
      req.invalidMessageHandler(e -> {
        if (e instanceof io.vertx.grpc.common.MessageSizeOverflowException) {
          fail(GrpcStatus.RESOURCE_EXHAUSTED, "too_large", "a message exceeds grpc_max_message_bytes ("
              + ctx.config().grpcMaxMessageBytes + " bytes)");
        } else {
          fail(GrpcStatus.INVALID_ARGUMENT, "malformed", "a message could not be read: " + dev.veneur.proxy.config.LogText.escape(String.valueOf(e.getMessage())));
        }
      });
      req.exceptionHandler(e -> {
        if (!answered) {
          // The client reset the stream or the connection went away: nothing was answered; what
          // was handed on already stays accepted (its metrics are counted and queued).
          answered = true;
          refusals.count("reset");
          bytes.finish();
        }
      });
    }

    void onMessage(Buffer msg) {
      if (answered) return;
      messages++;
      // A copy of the message (Buffer.getBytes makes a new array; GrpcIngestTest pins it): with one
      // gRPC global these very bytes become the queued chunk, so they must be no buffer's of Vert.x.
      byte[] b = msg.getBytes();
      if (part == null) part = new GrpcTranslator(stream ? 4096 : b.length, ring.get(), ctx.budget());
      if (stream) {
        part.addMetric(b, 0, b.length);
      } else if (!part.addList(b, 0, b.length)) {
        bytes.consumed(b.length + 5L);
        fail(GrpcStatus.INVALID_ARGUMENT, "malformed", "the MetricList does not parse as protobuf");
        return;
      }
      bytes.consumed(b.length + 5L);
      if (stream && part.size() >= STREAM_PART_BYTES) {
        submit();
        bytes.checkMemory();
      }
    }

    /** Hands the part built so far to the Ingester (it is counted there, answered at the end). */
    void submit() {
      GrpcTranslator t = part;
      part = null;
      for (Map.Entry<String, Integer> d : t.dropped().entrySet()) {
        ctx.accounting().droppedOnArrival(d.getValue(), d.getKey());
      }
      if (t.droppedTotal() > 0) {
        refusals.warn("refused_metric", "dropped " + t.droppedTotal() + " metric(s) from a gRPC call of "
            + req.connection().remoteAddress() + " that a v14 global would refuse (" + t.firstProblem()
            + "); forwarded the other " + (t.valid() + t.spliced()));
      }
      if (t.scopeLost() > 0) metrics.registry().counter("grpc.scope_lost_total").inc(t.scopeLost());
      // Metrics a v14 global would refuse are received too, for v14's proxy.metrics_total.
      if (t.droppedTotal() > 0) {
        metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_METRICS, "protocol:grpc")).inc(t.droppedTotal());
      }
      handSpliced(t);
      if (t.valid() == 0) return;
      byte[] json = t.finish();
      ctx.budget().reserve(json.length);
      partsOut++;
      ingester.submit(new Part(this, json, t.routing()));
    }

    /**
     * Metrics for gRPC globals were spliced into protobuf chunks as they were read: they are
     * handed on here, counted as the Ingester's results are ({@link #partDone}).
     */
    void handSpliced(GrpcTranslator t) {
      MetricChunk[] chunks = t.protoChunks(null);
      if (chunks == null) return;
      if (ctx.stopping()) {
        for (MetricChunk c : chunks) if (c != null) ctx.budget().release(c.bytes());
        ctx.accounting().droppedOnArrival(t.spliced(), "shutdown");
        fail(GrpcStatus.UNAVAILABLE, "shutting_down", "the proxy is shutting down; retry elsewhere");
        return;
      }
      chunksOut += Handover.hand(vertx.eventBus(), ctx, spillWriter, t.routing(), chunks);
      metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_METRICS, "protocol:grpc")).inc(t.spliced());
      metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_METRICS, "protocol:grpc")).inc(t.spliced());
    }

    void partDone(Part p, Ingester.Result r) {
      partsOut--;
      ctx.budget().release(p.json.length);
      if (answered || ctx.stopping()) {
        // Answered already (an error) or stopping: these metrics never reach the queues, and a
        // call not yet answered is told so (a sender that reads OK must find its metrics queued).
        r.release(ctx.budget());
        ctx.accounting().droppedOnArrival(r.valid, answered ? "call_failed" : "shutdown");
        if (!answered) fail(GrpcStatus.UNAVAILABLE, "shutting_down", "the proxy is shutting down; retry elsewhere");
      } else {
        ctx.accounting().droppedOnArrival(r.dropped(), "invalid_metric");
        chunksOut += Handover.hand(vertx.eventBus(), ctx, spillWriter, p.routing, r.chunks);
        metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.IMPORT_METRICS, "protocol:grpc"))
            .inc(r.valid + r.dropped());
        metrics.registry().counter(ProxyMetrics.withTags(ProxyMetrics.V14_METRICS, "protocol:grpc"))
            .inc(r.valid + r.dropped());
      }
      maybeAnswer();
      bytes.checkMemory();
    }

    void partFailed(Part p, ImportRefusal refusal) {
      partsOut--;
      ctx.budget().release(p.json.length);
      fail(statusOf(refusal), refusal.cause, refusal.reason());
    }

    void maybeAnswer() {
      if (answered || !ended || partsOut > 0) return;
      answered = true;
      bytes.finish();
      trace.accepted(0);
      metrics.timer(ProxyMetrics.withTags(ProxyMetrics.IMPORT_DURATION, "part:request", "protocol:grpc"))
          .update(System.nanoTime() - started, TimeUnit.NANOSECONDS);
      // google.protobuf.Empty: a message of no bytes.
      req.response().end(Buffer.buffer());
    }

    void fail(GrpcStatus status, String cause, String message) {
      if (answered) return;
      answered = true;
      refuse(req, bytes, status, cause, message);
    }

    @Override
    public void overloaded() {
      fail(GrpcStatus.RESOURCE_EXHAUSTED, "overloaded", "the proxy's memory budget is full (memory_budget); retry later");
    }

    @Override
    public void tooSlow() {
      fail(GrpcStatus.DEADLINE_EXCEEDED, "slow_call", "the call did not end within http_request_timeout ("
          + ctx.config().httpRequestTimeout.toMillis() + "ms)");
    }
  }

  /** A part of a call's metrics, as JSON, through this verticle's Ingester. */
  private final class Part implements Ingester.Task {
    final Call call;
    final byte[] json;
    final HashRing routing;

    Part(Call call, byte[] json, HashRing routing) {
      this.call = call;
      this.json = json;
      this.routing = routing;
    }

    @Override
    public void open(BodySource source) {
      if (routing.isEmpty()) {
        throw new ImportRefusal(503, "no_destination", "no global Veneur is available yet; retry later");
      }
      source.open(null, List.of(ByteBuffer.wrap(json)), Long.MAX_VALUE);
    }

    @Override
    public Owners router() {
      return Owners.of(routing);
    }

    @Override
    public RequestTrace trace() {
      return null;
    }

    @Override
    public boolean trusted() {
      // Translated from protobuf here: the JSON sizes are ours, not the sender's.
      return true;
    }

    @Override
    public void done(Ingester.Result result) {
      call.partDone(this, result);
    }

    @Override
    public void failed(ImportRefusal refusal) {
      call.partFailed(this, refusal);
    }
  }

  private static GrpcStatus statusOf(ImportRefusal r) {
    return switch (r.status) {
      case 503 -> GrpcStatus.UNAVAILABLE;
      case 413 -> GrpcStatus.RESOURCE_EXHAUSTED;
      case 408 -> GrpcStatus.DEADLINE_EXCEEDED;
      case 500 -> GrpcStatus.INTERNAL;
      default -> GrpcStatus.INVALID_ARGUMENT;
    };
  }

  void refuse(GrpcServerRequest<Buffer, Buffer> req, GrpcCall bytes, GrpcStatus status, String cause,
      String message) {
    if (bytes != null) bytes.finish();
    refusals.refused(cause, "refused a gRPC call from " + req.connection().remoteAddress() + ": " + status.name() + " "
        + message + " (" + cause + ")");
    try {
      req.response().status(status).statusMessage(message).end();
    } catch (IllegalStateException alreadyEnded) {
      // The stream was reset or answered meanwhile: nothing to say.
    }
    if (bytes != null) bytes.endStream();
  }
}
