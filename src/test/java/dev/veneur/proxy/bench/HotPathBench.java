package dev.veneur.proxy.bench;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.LocalCodec;
import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RouteQuery;
import dev.veneur.proxy.ProxyContext;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.forward.BatchEncoder;
import dev.veneur.proxy.ingest.BodyDecoder;
import dev.veneur.proxy.ingest.ImportScanner;
import dev.veneur.proxy.ingest.RequestSplitter;
import dev.veneur.proxy.ring.HashRing;
import dev.veneur.proxy.ring.RingVerticle;
import dev.veneur.proxy.tools.SyntheticMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The per-body costs of the hot path, on a 1000-metric body from the captured Veneur fixture.
 * Divide a per-body time by 1000 for the cost per metric. Run with {@code scripts/jmh}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class HotPathBench {
  @Param({"1"})
  public int forwardLevel;

  private byte[] json;
  private byte[] deflated;
  private BodyDecoder decoder;
  private ImportScanner scanner;
  private final RequestSplitter splitter = new RequestSplitter();
  private HashRing ring;
  private List<MetricChunk> batch;
  private BatchEncoder encoder;
  private RouteQuery[] queries;
  private Vertx vertx;

  @Setup(Level.Trial)
  public void setup() throws Exception {
    JsonArray sample = new JsonArray(Files.readString(Path.of("src/test/resources/fixtures/captured/large.json")));
    json = SyntheticMetrics.fromSample(sample, 1000, 1);
    deflated = SyntheticMetrics.deflate(json);
    decoder = new BodyDecoder(64 << 20);
    scanner = new ImportScanner();
    ring = HashRing.of(List.of("http://10.0.0.1:8000", "http://10.0.0.2:8000", "http://10.0.0.3:8000"));
    splitter.reset(1);
    scanner.scan(json, json.length, (s, e, h) -> splitter.add(s, e, h, 0));
    MetricChunk whole = splitter.build(json)[0];
    batch = new ArrayList<>(List.of(whole, whole));
    encoder = new BatchEncoder(forwardLevel);
    JsonArray metrics = new JsonArray(new String(json, java.nio.charset.StandardCharsets.UTF_8));
    queries = new RouteQuery[metrics.size()];
    for (int i = 0; i < queries.length; i++) {
      JsonObject m = metrics.getJsonObject(i);
      queries[i] = new RouteQuery(m.getString("name"), m.getString("type"), m.getString("tagstring"));
    }
    vertx = Vertx.vertx();
    LocalCodec.registerAll(vertx);
    ProxyContext ctx = new ProxyContext(ProxyConfig.from(new JsonObject().put("forward_address", "http://127.0.0.1:1")));
    vertx.deployVerticle(new RingVerticle(ctx)).await();
    vertx.eventBus().request(Addresses.RING_MEMBERS, new Membership("bench", ring.members())).await();
    // Members are applied after the reply (forwarders deploy first); wait for the snapshot.
    while (vertx.eventBus().<HashRing>request(Addresses.RING_CURRENT, null).await().body().isEmpty()) {
      Thread.sleep(10);
    }
  }

  @TearDown(Level.Trial)
  public void teardown() {
    vertx.close().await();
  }

  /** Inflate one 1000-metric body (zlib, as locals send it). */
  @Benchmark
  public int inflate() {
    decoder.decode("deflate", deflated, deflated.length);
    return decoder.length();
  }

  /** Scan one body: spans, key hashes, type checks. */
  @Benchmark
  public int scan() {
    return scanner.scan(json, json.length, (s, e, h) -> {}).metrics;
  }

  /** The whole ingest of one body: inflate, scan, route against the snapshot, split into chunks. */
  @Benchmark
  public void ingestBody(Blackhole bh) {
    decoder.decode("deflate", deflated, deflated.length);
    byte[] src = decoder.bytes();
    splitter.reset(ring.size());
    scanner.scan(src, decoder.length(), (s, e, h) -> splitter.add(s, e, h, ring.ownerIndex(h)));
    bh.consume(splitter.build(src));
  }

  /** Deflate a 2000-metric forward batch. */
  @Benchmark
  public int encodeBatch() {
    encoder.encode(batch);
    return encoder.length();
  }

  /** Route 1000 keys against an immutable snapshot (what importers do). */
  @Benchmark
  public int routeSnapshot() {
    int acc = 0;
    for (RouteQuery q : queries) acc += ring.ownerIndex(HashRing.hashKey(q.key()));
    return acc;
  }

  /** Route 1000 keys by asking the ring verticle over the event bus (the alternative design). */
  @Benchmark
  public int routeEventBus() {
    int acc = 0;
    for (RouteQuery q : queries) {
      acc += vertx.eventBus().<String>request(Addresses.RING_ROUTE, q).await().body().length();
    }
    return acc;
  }
}
