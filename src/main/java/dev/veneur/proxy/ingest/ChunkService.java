package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Halves;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.routing.Handoff;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.Owners;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The work forwarders hand back to the ingest side, since it is the same bytes work as a body's:
 * a chunk whose global left or was ejected is routed again on the current ring ({@link
 * Addresses#INGEST_REROUTE}), and a chunk a global refused is cut in two halves so the refused
 * metrics can be isolated ({@link Addresses#INGEST_SPLIT}). JSON chunks go through the verticle's
 * {@link Ingester}, after the bodies queued before them; protobuf chunks are cut or re-routed as
 * bytes ({@link ProtoSplit}, {@link ProtoReroute}).
 */
public final class ChunkService {
  private static final Logger LOG = LoggerFactory.getLogger(ChunkService.class);

  private final Vertx vertx;
  private final ProxyContext ctx;
  private final Ingester ingester;
  private final Supplier<HashRing> ring;
  private MessageConsumer<Handoff> rerouteConsumer;
  private MessageConsumer<MetricChunk> splitConsumer;

  /** @param ring the latest ring snapshot, for a hand-back that names none */
  public ChunkService(Vertx vertx, ProxyContext ctx, Ingester ingester, Supplier<HashRing> ring) {
    this.vertx = vertx;
    this.ctx = ctx;
    this.ingester = ingester;
    this.ring = ring;
  }

  public void start() {
    rerouteConsumer = vertx.eventBus().<Handoff>consumer(Addresses.INGEST_REROUTE, this::onHandoff);
    splitConsumer = vertx.eventBus().<MetricChunk>consumer(Addresses.INGEST_SPLIT, this::onSplit);
  }

  /** No new work comes here; what was taken is finished by the Ingester. */
  public Future<Void> stop() {
    return Future.all(
        rerouteConsumer == null ? Future.succeededFuture() : rerouteConsumer.unregister(),
        splitConsumer == null ? Future.succeededFuture() : splitConsumer.unregister()).mapEmpty();
  }

  /** A chunk handed back by a forwarder: split it by the current ring and send the parts on. */
  void onHandoff(Message<Handoff> m) {
    Handoff rr = m.body();
    MetricChunk chunk = rr.chunk();
    m.reply(null);
    if (!chunk.land()) return;
    HashRing routing = rr.ring() != null ? rr.ring() : ring.get();
    if (routing.isEmpty()) {
      ctx.accounting().dropped(chunk, ctx.stopping() ? "shutdown" : "no_destination");
      return;
    }
    if (chunk.proto) {
      try {
        ProtoReroute.route(ctx, ingester, chunk, routing, (parts, to) -> {
          ctx.accounting().replaced(chunk, parts, "no_destination");
          for (int d = 0; d < parts.length; d++) {
            if (parts[d] != null) Dispatch.toForwarder(vertx.eventBus(), ctx, to[d], parts[d], rr.hops());
          }
        });
      } catch (RuntimeException e) {
        // Landed, so ours: a bug must cost this chunk, counted, never its budget or its books.
        LOG.error("could not re-route a protobuf chunk of {} metrics: {}", chunk.count, e.toString());
        ctx.accounting().dropped(chunk, "internal");
      }
      return;
    }
    ingester.submit(new ChunkTask(chunk) {
      @Override
      public Owners router() {
        return Owners.of(routing);
      }

      @Override
      public void done(Ingester.Result r) {
        ctx.accounting().replaced(chunk, r.chunks, "no_destination");
        for (int d = 0; d < r.chunks.length; d++) {
          if (r.chunks[d] != null) {
            Dispatch.toForwarder(vertx.eventBus(), ctx, routing.member(d), r.chunks[d], rr.hops());
          }
        }
      }

      @Override
      public void failed(ImportRefusal refusal) {
        LOG.error("could not re-route {} metrics: {}", chunk.count, refusal.reason());
        ctx.accounting().dropped(chunk, ctx.stopping() ? "shutdown" : "no_destination");
      }
    });
  }

  /** A forwarder asks for a chunk in two halves; it keeps owning the original. */
  void onSplit(Message<MetricChunk> m) {
    MetricChunk chunk = m.body();
    int half = chunk.count / 2;
    if (chunk.proto) {
      MetricChunk[] halves;
      try {
        halves = ProtoSplit.halves(chunk, half, ctx.budget());
      } catch (RuntimeException e) {
        m.fail(500, "could not split a protobuf chunk: " + e);
        return;
      }
      replyHalves(m, halves);
      return;
    }
    ingester.submit(new ChunkTask(chunk) {
      @Override
      public Owners router() {
        return Owners.halves(half);
      }

      @Override
      public void done(Ingester.Result r) {
        replyHalves(m, r.chunks);
      }

      @Override
      public void failed(ImportRefusal refusal) {
        m.fail(500, refusal.reason());
      }
    });
  }

  private void replyHalves(Message<MetricChunk> m, MetricChunk[] halves) {
    MetricChunk first = halves[0];
    MetricChunk second = halves[1];
    // The halves are in transit until the forwarder lands them. If it gave up waiting (its
    // request timed out), nobody will: take them back later and give their bytes back.
    if (first != null) first.depart();
    if (second != null) second.depart();
    m.reply(new Halves(first, second));
    vertx.setTimer(2 * Addresses.SPLIT_TIMEOUT_MS, t -> {
      if (first != null && first.land()) ctx.budget().release(first.bytes());
      if (second != null && second.land()) ctx.budget().release(second.bytes());
    });
  }

  /** Decodes a queued JSON chunk again (already accepted once, so trusted). */
  private abstract static class ChunkTask implements Ingester.Task {
    final MetricChunk chunk;

    ChunkTask(MetricChunk chunk) {
      this.chunk = chunk;
    }

    @Override
    public void open(BodySource source) {
      if (chunk.whole) {
        // A body as its local sent it: read as a request body is (it was one).
        source.open("deflate", java.util.List.of(java.nio.ByteBuffer.wrap(chunk.payload)), Long.MAX_VALUE);
      } else {
        source.openChunk(chunk.payload, chunk.payload.length);
      }
    }

    @Override
    public RequestTrace trace() {
      return chunk.trace;
    }

    @Override
    public dev.veneur.proxy.bus.SpillMark spill() {
      return chunk.spill;
    }

    @Override
    public boolean trusted() {
      return true;
    }
  }
}
