package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Halves;
import dev.veneur.proxy.bus.LocalCodec;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.routing.Handoff;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.wire.MetricPb;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VerticleBase;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.zip.Adler32;
import java.util.zip.Inflater;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * What forwarders ask of the ingest side, over the real event bus with a real Ingester on a Vert.x
 * context: a chunk handed back is routed again, each metric to the owner the ring names, with the
 * accounting and the memory budget balanced; a chunk to be cut comes back as two halves that hold
 * exactly its metrics, in order. The "forwarders" here are consumers on the forwarders' addresses
 * that take (land) what they are sent, so what was re-routed can be read back.
 */
@ExtendWith(VertxExtension.class)
class ChunkServiceTest {
  private static final String A = "http://a:1";
  private static final String B = "http://b:1";
  private static final String C = "http://c:1";
  private static final Duration WAIT = Duration.ofSeconds(5);

  private final ProxyContext ctx =
      new ProxyContext(ProxyConfig.from(new JsonObject().put("forward_address", "http://127.0.0.1:1")));
  /** The ring a handoff that names none is routed on (the HTTP verticle's latest snapshot). */
  private volatile HashRing current = HashRing.empty();
  /** What each stand-in forwarder landed, by destination. */
  private final Map<String, List<Handoff>> landed = new ConcurrentHashMap<>();
  private Vertx vertx;

  @BeforeEach
  void start(Vertx vertx) {
    this.vertx = vertx;
    LocalCodec.registerAll(vertx);
    Dispatch.registerCodecs(vertx);
    // As ImportVerticle wires it: the Ingester's slices and the service's consumers on one context.
    vertx.deployVerticle(new VerticleBase() {
      @Override
      public Future<?> start() {
        Ingester ingester = new Ingester(r -> context.runOnContext(v -> r.run()), ctx.budget(),
            Ingester.Limits.of(ctx::config), null);
        new ChunkService(vertx, ctx, ingester, () -> current).start();
        return Future.succeededFuture();
      }
    }).await();
    for (String d : List.of(A, B, C, "127.0.0.1:9001", "http://127.0.0.1:9002")) {
      landed.put(d, new CopyOnWriteArrayList<>());
      vertx.eventBus().<Handoff>consumer(Addresses.forwarder(d), m -> {
        // As a forwarder does: whoever lands a chunk owns it.
        if (m.body().chunk().land()) landed.get(d).add(m.body());
        m.reply(null);
      }).completion().await();
    }
  }

  // ------------------------------------------------------------------ building and reading chunks

  /** {@code n} metric objects as a local sends them, of mixed types and tags so the ring spreads them. */
  private static List<JsonObject> metrics(String prefix, int n) {
    List<JsonObject> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(new JsonObject().put("name", prefix + i).put("type", i % 3 == 0 ? "gauge" : "counter")
          .put("tagstring", "host:h" + (i % 7)).put("tags", new JsonArray().add("host:h" + (i % 7)))
          .put("value", "AQAAAAAAAAA="));
    }
    return out;
  }

  /** A JSON chunk as the ingest side builds it, its bytes reserved, its metrics accepted (queued). */
  private MetricChunk accepted(List<JsonObject> metrics, RequestTrace trace) {
    ChunkWriter w = new ChunkWriter(ctx.budget(), 1, new dev.veneur.proxy.wire.FastDeflater());
    w.begin(1, true);
    for (JsonObject m : metrics) {
      byte[] b = m.encode().getBytes(StandardCharsets.UTF_8);
      w.add(b, 0, b.length);
    }
    MetricChunk c = w.finish(trace);
    w.close();
    ctx.accounting().accepted(c);
    return c;
  }

  private static String joined(List<JsonObject> metrics) {
    return String.join(",", metrics.stream().map(JsonObject::encode).toList());
  }

  /** The comma-joined metric objects a JSON chunk inflates to; checks its length and Adler-32 too. */
  private static String inflate(MetricChunk c) throws Exception {
    assertFalse(c.proto);
    Inflater inf = new Inflater(true);
    inf.setInput(c.payload);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[65536];
    while (true) {
      int n = inf.inflate(buf);
      if (n == 0 && (inf.needsInput() || inf.finished())) break;
      out.write(buf, 0, n);
    }
    inf.end();
    byte[] raw = out.toByteArray();
    // A forwarder joins chunks without inflating them: these two must be the truth.
    assertEquals(raw.length, c.rawLength, "rawLength");
    Adler32 a = new Adler32();
    a.update(raw);
    assertEquals((int) a.getValue(), c.adler, "adler");
    return new String(raw, StandardCharsets.UTF_8);
  }

  private static List<JsonObject> decode(MetricChunk c) throws Exception {
    JsonArray a = new JsonArray("[" + inflate(c) + "]");
    List<JsonObject> out = new ArrayList<>();
    for (int i = 0; i < a.size(); i++) out.add(a.getJsonObject(i));
    assertEquals(out.size(), c.count, "count");
    return out;
  }

  private static List<String> names(JsonArray metrics) {
    return metrics.stream().map(o -> ((JsonObject) o).getString("name")).toList();
  }

  private static String owner(HashRing ring, JsonObject m) {
    return ring.route(m.getString("name"), m.getString("type"), m.getString("tagstring"));
  }

  private int landedMetrics() {
    return landed.values().stream().flatMap(List::stream).mapToInt(h -> h.chunk().count).sum();
  }

  private List<MetricChunk> landedChunks() {
    return landed.values().stream().flatMap(List::stream).map(Handoff::chunk).toList();
  }

  /** received, forwarded, dropped, queued, queued bytes: at one instant. */
  private long[] books() {
    return ctx.metrics().accountingSnapshot();
  }

  /** The stand-in forwarders deliver what they hold: the books must close and the budget empty. */
  private void deliverAllAndCheckTheBooksClose(int metrics) {
    ctx.accounting().forwarded(landedChunks());
    assertArrayEquals(new long[] {metrics, metrics, 0, 0, 0}, books(),
        "received, forwarded, dropped, queued, queued bytes");
    assertEquals(0, ctx.budget().used(), "every byte reserved was given back");
  }

  // ------------------------------------------------------------------ re-route

  @Test
  void aHandedBackChunkIsRoutedAgainOnItsRingEachMetricToItsOwnerInOrder() throws Exception {
    HashRing ring = HashRing.of(List.of(A, B));
    current = HashRing.of(List.of(C)); // the handoff names its ring: this one must not be used
    List<JsonObject> sent = metrics("m", 300);
    MetricChunk chunk = accepted(sent, null);

    Dispatch.split(vertx.eventBus(), ctx, chunk, 3, ring); // as the ring verticle hands it over
    Await.until("all 300 metrics landed", WAIT, () -> landedMetrics() == 300);

    for (String d : List.of(A, B)) {
      List<String> got = new ArrayList<>();
      for (Handoff h : landed.get(d)) {
        assertEquals(3, h.hops(), "the hop count goes on with the chunk");
        decode(h.chunk()); // checks count, length and checksum
        got.add(inflate(h.chunk()));
      }
      List<JsonObject> owned = sent.stream().filter(m -> owner(ring, m).equals(d)).toList();
      assertFalse(owned.isEmpty(), "the test's metrics spread over both members");
      // Names first, for a readable failure; then the bytes.
      List<String> gotNames = new ArrayList<>();
      for (String part : got) gotNames.addAll(names(new JsonArray("[" + part + "]")));
      assertEquals(names(new JsonArray(owned)), gotNames, d + " got the metrics the ring gives it, in their order");
      assertEquals(joined(owned), String.join(",", got),
          d + " got exactly the metrics the ring gives it, in their order, byte for byte");
    }
    assertEquals(List.of(), landed.get(C), "the current snapshot is not used when the handoff names a ring");

    // Nothing counted twice or lost: the chunk is replaced by its parts, still queued.
    long partBytes = landedChunks().stream().mapToLong(MetricChunk::bytes).sum();
    assertArrayEquals(new long[] {300, 0, 0, 300, partBytes}, books(),
        "received, forwarded, dropped, queued, queued bytes");
    assertEquals(partBytes, ctx.budget().used(), "the original's bytes given back, the parts' reserved");
    deliverAllAndCheckTheBooksClose(300);
  }

  @Test
  void aWholeChunkHandedBackIsReadAsItsBodyAndRoutedAgain() throws Exception {
    // A body that went as it came to the one global there was; the global is ejected and two
    // others take its keys: each gets exactly its metrics, as JSON chunks.
    HashRing ring = HashRing.of(List.of(A, B));
    List<JsonObject> sent = metrics("w", 200);
    byte[] json = ("[" + joined(sent) + "]").getBytes(StandardCharsets.UTF_8);
    MetricChunk whole = MetricChunk.whole(dev.veneur.proxy.support.Bodies.deflate(json), json.length, 200, null);
    ctx.budget().reserve(whole.bytes());
    ctx.accounting().accepted(whole);

    Dispatch.split(vertx.eventBus(), ctx, whole, 1, ring);
    Await.until("all 200 metrics landed", WAIT, () -> landedMetrics() == 200);
    for (String dest : List.of(A, B)) {
      List<String> got = new ArrayList<>();
      for (Handoff h : landed.get(dest)) {
        assertFalse(h.chunk().whole, "re-routed as JSON chunks");
        decode(h.chunk());
        got.add(inflate(h.chunk()));
      }
      List<JsonObject> owned = sent.stream().filter(m -> owner(ring, m).equals(dest)).toList();
      assertFalse(owned.isEmpty());
      assertEquals(joined(owned), String.join(",", got), dest + " got exactly its metrics, in order");
    }
    deliverAllAndCheckTheBooksClose(200);
  }

  @Test
  void aHandoffThatNamesNoRingIsRoutedOnTheCurrentSnapshot() throws Exception {
    current = HashRing.of(List.of(C));
    List<JsonObject> sent = metrics("n", 40);
    MetricChunk chunk = accepted(sent, null);
    chunk.depart();
    vertx.eventBus().request(Addresses.INGEST_REROUTE, new Handoff(chunk, 0)).await();

    Await.until("the metrics landed", WAIT, () -> landedMetrics() == 40);
    assertEquals(1, landed.get(C).size());
    assertEquals(sent, decode(landed.get(C).get(0).chunk()));
    deliverAllAndCheckTheBooksClose(40);
  }

  @Test
  void onAnEmptyRingTheChunkIsDroppedAsNoDestination() {
    MetricChunk chunk = accepted(metrics("e", 25), null);
    Dispatch.split(vertx.eventBus(), ctx, chunk, 0, HashRing.empty());

    Await.until("the chunk settled", WAIT, () -> books()[3] == 0);
    assertArrayEquals(new long[] {25, 0, 25, 0, 0}, books(), "received, forwarded, dropped, queued, queued bytes");
    assertEquals(Map.of("no_destination", 25L), ctx.metrics().droppedByCause());
    assertEquals(0, ctx.budget().used(), "its bytes given back");
    assertEquals(0, landedMetrics());
  }

  /**
   * A hand-off whose sender took the chunk back (its request timed out, so it re-routed or dropped
   * the chunk itself) must be left alone: re-routing it too would deliver and count it twice.
   */
  @Test
  void aChunkItsSenderAlreadyTookBackIsLeftAlone() throws Exception {
    HashRing ring = HashRing.of(List.of(A, B));
    MetricChunk takenBack = accepted(metrics("gone", 30), null);
    // Not departed (or landed by its sender): this side loses the race for it.
    vertx.eventBus().request(Addresses.INGEST_REROUTE, new Handoff(takenBack, 0, ring)).await();
    // A chunk handed over after it goes through the same Ingester queue, so once it has landed
    // the first would have, had it been taken.
    List<JsonObject> next = metrics("next", 20);
    Dispatch.split(vertx.eventBus(), ctx, accepted(next, null), 0, ring);
    Await.until("the next chunk landed", WAIT, () -> landedMetrics() >= 20);

    List<JsonObject> got = new ArrayList<>();
    for (MetricChunk c : landedChunks()) got.addAll(decode(c));
    got.sort((x, y) -> x.getString("name").compareTo(y.getString("name")));
    List<JsonObject> want = new ArrayList<>(next);
    want.sort((x, y) -> x.getString("name").compareTo(y.getString("name")));
    assertEquals(want, got, "only the second chunk's metrics went on");
    long partBytes = landedChunks().stream().mapToLong(MetricChunk::bytes).sum();
    assertArrayEquals(new long[] {50, 0, 0, 50, takenBack.bytes() + partBytes}, books(),
        "the first is still queued, its sender's to settle");
    assertEquals(takenBack.bytes() + partBytes, ctx.budget().used(), "its bytes are still its sender's");
  }

  /**
   * A protobuf chunk (it came in by gRPC) routed again on a ring of one gRPC and one HTTP global:
   * what the gRPC global owns goes on as protobuf bytes, untouched; what the HTTP one owns is
   * translated to JSON. Each metric once, at its owner.
   */
  @Test
  void aProtobufChunkIsSplicedForGrpcGlobalsAndTranslatedForHttpOnes() throws Exception {
    String grpcGlobal = "127.0.0.1:9001";
    String httpGlobal = "http://127.0.0.1:9002";
    HashRing ring = HashRing.of(List.of(grpcGlobal, httpGlobal));
    ByteArrayOutputStream framed = new ByteArrayOutputStream();
    Map<String, String> ownerOf = new ConcurrentHashMap<>();
    Map<String, byte[]> bytesOf = new ConcurrentHashMap<>();
    for (int i = 0; i < 60; i++) {
      String name = "p" + i;
      List<String> tags = List.of("host:h" + (i % 5));
      byte[] m = MetricPb.metric(name, tags, MetricPb.GAUGE, MetricPb.GLOBAL, MetricPb.F_GAUGE, MetricPb.gaugeValue(i));
      MetricPb.listEntry(framed, m, 0, m.length);
      // The v14 key: name, type, and the tags joined.
      ownerOf.put(name, ring.route(name, "gauge", String.join(",", tags)));
      bytesOf.put(name, m);
    }
    byte[] all = framed.toByteArray();
    ctx.budget().reserve(all.length); // as ProtoChunkWriter reserves a chunk it builds
    MetricChunk chunk = MetricChunk.protobuf(all, 60, null);
    ctx.accounting().accepted(chunk);

    Dispatch.split(vertx.eventBus(), ctx, chunk, 1, ring);
    Await.until("all 60 landed", WAIT, () -> landedMetrics() == 60);

    List<String> seen = new ArrayList<>();
    for (Handoff h : landed.get(grpcGlobal)) {
      assertTrue(h.chunk().proto, "a gRPC global gets protobuf");
      MetricPb.ListReader r = new MetricPb.ListReader(h.chunk().payload, 0, h.chunk().payload.length);
      MetricPb.Fields f = new MetricPb.Fields();
      while (r.next()) {
        assertTrue(MetricPb.scan(h.chunk().payload, r.metricOff, r.metricLen, f));
        String name = f.name(h.chunk().payload);
        assertEquals(grpcGlobal, ownerOf.get(name), name);
        assertArrayEquals(bytesOf.get(name),
            Arrays.copyOfRange(h.chunk().payload, r.metricOff, r.metricOff + r.metricLen), "untouched: " + name);
        seen.add(name);
      }
    }
    for (Handoff h : landed.get(httpGlobal)) {
      for (JsonObject m : decode(h.chunk())) {
        assertEquals(httpGlobal, ownerOf.get(m.getString("name")), m.encode());
        assertEquals("gauge", m.getString("type"));
        seen.add(m.getString("name"));
      }
    }
    assertFalse(landed.get(grpcGlobal).isEmpty() || landed.get(httpGlobal).isEmpty(), "both globals own some");
    seen.sort(null);
    List<String> want = new ArrayList<>(ownerOf.keySet());
    want.sort(null);
    assertEquals(want, seen, "every metric once");
    deliverAllAndCheckTheBooksClose(60);
  }

  // ------------------------------------------------------------------ split

  @Test
  void aSplitGivesTwoHalvesThatHoldExactlyTheChunksMetricsInOrder() throws Exception {
    RequestTrace trace = new RequestTrace(new com.codahale.metrics.Timer());
    List<JsonObject> sent = metrics("s", 201);
    MetricChunk chunk = accepted(sent, trace);
    long before = ctx.budget().used();

    Halves h = vertx.eventBus().<Halves>request(Addresses.INGEST_SPLIT, chunk).await().body();
    assertTrue(h.first().land() && h.second().land(), "the halves come in transit, for the asker to land");
    assertEquals(100, h.first().count, "the first half is count / 2");
    assertEquals(101, h.second().count);
    assertEquals(sent.subList(0, 100), decode(h.first()));
    assertEquals(sent.subList(100, 201), decode(h.second()));
    assertEquals(inflate(h.first()) + "," + inflate(h.second()), joined(sent), "the two, joined, are the original");
    assertSame(trace, h.first().trace, "the halves keep the request they came in");
    assertSame(trace, h.second().trace);
    assertEquals(before + h.first().bytes() + h.second().bytes(), ctx.budget().used(),
        "the halves are reserved; the original stays its holder's");

    // The asker replaces the original by its halves, then they are delivered.
    ctx.accounting().replaced(chunk, new MetricChunk[] {h.first(), h.second()}, "split");
    ctx.accounting().forwarded(List.of(h.first(), h.second()));
    assertArrayEquals(new long[] {201, 201, 0, 0, 0}, books(), "received, forwarded, dropped, queued, queued bytes");
    assertEquals(0, ctx.budget().used());
  }

  @Test
  void aProtobufSplitCutsItsBytesInTwoRanges() {
    ByteArrayOutputStream framed = new ByteArrayOutputStream();
    for (int i = 0; i < 5; i++) {
      byte[] m = MetricPb.metric("q" + i, List.of(), MetricPb.GAUGE, MetricPb.GLOBAL, MetricPb.F_GAUGE, MetricPb.gaugeValue(i));
      MetricPb.listEntry(framed, m, 0, m.length);
    }
    byte[] all = framed.toByteArray();
    ctx.budget().reserve(all.length);
    MetricChunk chunk = MetricChunk.protobuf(all, 5, null);
    ctx.accounting().accepted(chunk);

    Halves h = vertx.eventBus().<Halves>request(Addresses.INGEST_SPLIT, chunk).await().body();
    assertTrue(h.first().land() && h.second().land());
    assertTrue(h.first().proto && h.second().proto);
    assertEquals(List.of("q0", "q1"), names(h.first()));
    assertEquals(List.of("q2", "q3", "q4"), names(h.second()));
    byte[] joined = new byte[h.first().payload.length + h.second().payload.length];
    System.arraycopy(h.first().payload, 0, joined, 0, h.first().payload.length);
    System.arraycopy(h.second().payload, 0, joined, h.first().payload.length, h.second().payload.length);
    assertArrayEquals(all, joined, "two ranges of the original's bytes");
    assertEquals(2L * all.length, ctx.budget().used());

    ctx.accounting().replaced(chunk, new MetricChunk[] {h.first(), h.second()}, "split");
    ctx.accounting().forwarded(List.of(h.first(), h.second()));
    assertArrayEquals(new long[] {5, 5, 0, 0, 0}, books());
    assertEquals(0, ctx.budget().used());
  }

  @Test
  void aOneMetricChunkSplitsIntoNothingAndItself() throws Exception {
    List<JsonObject> sent = metrics("one", 1);
    MetricChunk chunk = accepted(sent, null);
    Halves h = vertx.eventBus().<Halves>request(Addresses.INGEST_SPLIT, chunk).await().body();
    assertNull(h.first(), "no metric, no chunk");
    assertNotNull(h.second());
    assertTrue(h.second().land());
    assertEquals(sent, decode(h.second()));
    ctx.budget().release(h.second().bytes());
    ctx.budget().release(chunk.bytes());
    assertEquals(0, ctx.budget().used(), "nothing else was reserved for it");
  }

  private static List<String> names(MetricChunk c) {
    List<String> out = new ArrayList<>();
    MetricPb.ListReader r = new MetricPb.ListReader(c.payload, 0, c.payload.length);
    MetricPb.Fields f = new MetricPb.Fields();
    while (r.next()) {
      assertTrue(MetricPb.scan(c.payload, r.metricOff, r.metricLen, f));
      out.add(f.name(c.payload));
    }
    return out;
  }
}
