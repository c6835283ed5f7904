package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.bus.SpillMark;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.Owners;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * A protobuf chunk routed again (its global left the ring, or a spill replay), as its metrics were
 * routed when they came in by gRPC ({@link GrpcTranslator}): those a gRPC global now owns are
 * spliced, untouched, into new protobuf chunks (so a global-scope histogram keeps its scope
 * however often it is re-routed); those an HTTP global owns are translated to JSON and go through
 * the Ingester, on the same ring snapshot. The parts keep the chunk's request and spill record.
 */
public final class ProtoReroute implements Ingester.Task {
  private final ProxyContext ctx;
  private final MetricChunk chunk;
  private final HashRing routing;
  /** Told the parts once they are all built: each with the ring member it is for. */
  private final BiConsumer<MetricChunk[], String[]> onParts;
  private MetricChunk[] spliced;
  private byte[] json;

  private ProtoReroute(ProxyContext ctx, MetricChunk chunk, HashRing routing, BiConsumer<MetricChunk[], String[]> onParts) {
    this.ctx = ctx;
    this.chunk = chunk;
    this.routing = routing;
    this.onParts = onParts;
  }

  /**
   * Routes {@code chunk} on {@code routing}: the spliced parts at once, the translated ones once the
   * Ingester has scanned them. {@code onParts} gets every part (null entries where none went) and
   * then accounts for the chunk as replaced by them.
   */
  public static void route(ProxyContext ctx, Ingester ingester, MetricChunk chunk, HashRing routing,
      BiConsumer<MetricChunk[], String[]> onParts) {
    ProtoReroute r = new ProtoReroute(ctx, chunk, routing, onParts);
    GrpcTranslator t = new GrpcTranslator(0, routing, ctx.budget());
    if (!t.addList(chunk.payload, 0, chunk.payload.length) || t.droppedTotal() > 0) {
      throw new IllegalStateException("a protobuf chunk of ours no longer reads: " + t.firstProblem());
    }
    if (t.scopeLost() > 0) ctx.metrics().registry().counter("grpc.scope_lost_total").inc(t.scopeLost());
    r.spliced = t.protoChunks(chunk.trace);
    if (r.spliced != null) for (MetricChunk c : r.spliced) if (c != null) c.spill = chunk.spill;
    if (t.valid() == 0) {
      r.complete(null);
      return;
    }
    r.json = t.finish();
    ctx.budget().reserve(r.json.length);
    ingester.submit(r);
  }

  private void complete(MetricChunk[] translated) {
    int ways = routing.size();
    MetricChunk[] parts = new MetricChunk[2 * ways];
    String[] to = new String[2 * ways];
    for (int d = 0; d < ways; d++) {
      if (spliced != null) parts[d] = spliced[d];
      if (translated != null) parts[ways + d] = translated[d];
      to[d] = to[ways + d] = routing.member(d);
    }
    onParts.accept(parts, to);
  }

  @Override
  public void open(BodySource source) {
    source.open(null, List.of(ByteBuffer.wrap(json)), Long.MAX_VALUE);
  }

  @Override
  public Owners router() {
    return Owners.of(routing);
  }

  @Override
  public RequestTrace trace() {
    return chunk.trace;
  }

  @Override
  public SpillMark spill() {
    return chunk.spill;
  }

  @Override
  public boolean trusted() {
    return true;
  }

  @Override
  public void done(Ingester.Result result) {
    ctx.budget().release(json.length);
    complete(result.chunks);
  }

  @Override
  public void failed(ImportRefusal refusal) {
    ctx.budget().release(json.length);
    if (ctx.stopping()) {
      // The stop's grace ran out: nothing of it goes on, and with a spill it stays on disk for the
      // next start (a "shutdown" drop keeps the record), which a split into parts would settle.
      if (spliced != null) for (MetricChunk c : spliced) if (c != null) ctx.budget().release(c.bytes());
      ctx.accounting().dropped(chunk, "shutdown");
      return;
    }
    // The spliced parts go on; what could not be translated is what the parts lack.
    complete(null);
  }
}
