package dev.veneur.proxy.bench;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.LocalCodec;
import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RouteQuery;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.ingest.BodySource;
import dev.veneur.proxy.ingest.FixedLimits;
import dev.veneur.proxy.ingest.Ingester;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.ring.RingVerticle;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.Owners;
import dev.veneur.proxy.tools.SyntheticMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
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

/**
 * The per-body costs of the hot path, on a 1000-metric body from the captured Veneur fixture,
 * through the proxy's own classes. Divide a per-body time by 1000 for the cost per metric. Run with
 * {@code scripts/jmh}; add {@code -prof gc} for bytes allocated per body.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class HotPathBench {
  @Param({"1"})
  public int level;

  /** Destinations the body is split over. */
  @Param({"3"})
  public int ways;

  /** Bodies queued together in {@link #ingestQueuedBodies} (merged into one chunk per destination). */
  @Param({"4"})
  public int queued;

  /** What deflates the chunks: the proxy's default {@code fast}, or {@code zlib}. */
  @Param({"fast"})
  public String compressor;

  private byte[] json;
  private byte[] deflated;
  private BodySource source;
  private final ArrayDeque<Runnable> later = new ArrayDeque<>();
  private MemoryBudget budget;
  private Ingester ingester;
  private HashRing ring;
  private List<MetricChunk> batch;
  private RouteQuery[] queries;
  private Vertx vertx;
  private Ingester.Result last;
  private Ingester merging;
  private MetricChunk[] lastGroup;

  @Setup(Level.Trial)
  public void setup() throws Exception {
    JsonArray sample = new JsonArray(Files.readString(Path.of("src/test/resources/fixtures/captured/large.json")));
    json = SyntheticMetrics.fromSample(sample, 1000, 1);
    deflated = SyntheticMetrics.deflate(json);
    budget = new MemoryBudget(() -> Long.MAX_VALUE);
    // As an Ingester's: libdeflate for whole bodies, unless -Dveneur.proxy.inflater=zlib (-jvmArgsAppend).
    source = new BodySource(budget, true);
    ingester = new Ingester(later::add, budget, new FixedLimits(1 << 20, 4 << 20, level, compressor.equals("fast")));
    merging = new Ingester(later::add, budget, new FixedLimits(1 << 20, 4 << 20, level, compressor.equals("fast")), new Ingester.Groups() {
      @Override
      public void done(List<Ingester.Task> tasks, List<Ingester.Result> results, MetricChunk[] chunks) {
        lastGroup = chunks;
      }

      @Override
      public void abandoned(List<Ingester.Task> tasks, List<Ingester.Result> results) {
        throw new IllegalStateException("abandoned");
      }
    });
    String[] members = new String[ways];
    for (int i = 0; i < ways; i++) members[i] = "http://10.0.0." + (i + 1) + ":8000";
    ring = HashRing.of(List.of(members));
    Ingester.Result one = ingestOnce(json, null, 1);
    batch = List.of(one.chunks[0], one.chunks[0]);
    JsonArray metrics = new JsonArray(new String(json, java.nio.charset.StandardCharsets.UTF_8));
    queries = new RouteQuery[metrics.size()];
    for (int i = 0; i < queries.length; i++) {
      JsonObject m = metrics.getJsonObject(i);
      queries[i] = new RouteQuery(m.getString("name"), m.getString("type"), m.getString("tagstring"));
    }
    vertx = Vertx.vertx();
    LocalCodec.registerAll(vertx);
    dev.veneur.proxy.routing.Dispatch.registerCodecs(vertx);
    ProxyContext ctx = new ProxyContext(ProxyConfig.from(new JsonObject().put("forward_address", "http://127.0.0.1:1")));
    vertx.deployVerticle(new RingVerticle(ctx, member -> new dev.veneur.proxy.forward.ForwarderVerticle(ctx, member))).await();
    vertx.eventBus().request(Addresses.RING_MEMBERS, new Membership("bench", ring.members())).await();
    while (vertx.eventBus().<dev.veneur.proxy.routing.RingSet>request(Addresses.RING_CURRENT, null).await().body()
        .forJson().isEmpty()) {
      Thread.sleep(10);
    }
  }

  @TearDown(Level.Trial)
  public void teardown() {
    vertx.close().await();
  }

  /** Runs one body through the Ingester to completion on this thread. */
  private Ingester.Result ingestOnce(byte[] body, String encoding, int slots) {
    last = null;
    ingester.submit(new Ingester.Task() {
      @Override
      public void open(BodySource s) {
        s.open(encoding, List.of(ByteBuffer.wrap(body)), 64 << 20);
      }

      @Override
      public Owners router() {
        return new Owners() {
          @Override
          public int ways() {
            return slots;
          }

          @Override
          public int slot(int index, int keyHash) {
            return slots == 1 ? 0 : ring.ownerIndex(keyHash);
          }
        };
      }

      @Override
      public dev.veneur.proxy.bus.RequestTrace trace() {
        return null;
      }

      @Override
      public void done(Ingester.Result r) {
        last = r;
      }

      @Override
      public void failed(dev.veneur.proxy.ingest.ImportRefusal r) {
        throw new IllegalStateException(r.reason());
      }
    });
    Runnable r;
    while ((r = later.poll()) != null) r.run();
    // The budget here is unbounded; chunks are left to the garbage collector.
    return last;
  }

  /**
   * {@link #queued} bodies that arrived together, as an HTTP verticle works them: merged into one
   * chunk per destination (issue 21). Divide by {@code queued} for the cost per body; compare with
   * {@link #ingestBody}, one body at a time.
   */
  @Benchmark
  public Object ingestQueuedBodies() {
    Object key = ring;
    for (int q = 0; q < queued; q++) {
      merging.submit(new Ingester.Task() {
        @Override
        public void open(BodySource s) {
          s.open("deflate", List.of(ByteBuffer.wrap(deflated)), 64 << 20);
        }

        @Override
        public Owners router() {
          return new Owners() {
            @Override
            public int ways() {
              return ways;
            }

            @Override
            public int slot(int index, int keyHash) {
              return ring.ownerIndex(keyHash);
            }
          };
        }

        @Override
        public dev.veneur.proxy.bus.RequestTrace trace() {
          return null;
        }

        @Override
        public Object mergeKey() {
          return key;
        }

        @Override
        public boolean scanned(Ingester.Result r) {
          return true;
        }

        @Override
        public void done(Ingester.Result r) {
          throw new IllegalStateException("a merging task is told scanned()");
        }

        @Override
        public void failed(dev.veneur.proxy.ingest.ImportRefusal r) {
          throw new IllegalStateException(r.reason());
        }
      });
    }
    Runnable r;
    while ((r = later.poll()) != null) r.run();
    return lastGroup;
  }

  /**
   * Inflate one 1000-metric body (zlib, as locals send it) through the window: libdeflate, or
   * zlib's streaming inflate with {@code -jvmArgsAppend -Dveneur.proxy.inflater=zlib}.
   */
  @Benchmark
  public long inflate() {
    source.open("deflate", List.of(ByteBuffer.wrap(deflated)), 64 << 20);
    byte[] w = new byte[256 * 1024];
    while (source.read(w, 0, w.length) >= 0) { }
    return source.produced();
  }

  /** The whole ingest of one body: inflate, scan as Go would, route, deflate one chunk per destination. */
  @Benchmark
  public Object ingestBody() {
    return ingestOnce(deflated, "deflate", ways);
  }

  /** The same on an uncompressed body: scanning and deflating without the inflate. */
  @Benchmark
  public Object ingestPlainBody() {
    return ingestOnce(json, null, ways);
  }

  /** Build the zlib body of a 2000-metric forward batch from compressed chunks (no deflate). */
  @Benchmark
  public Object assembleBatch() {
    return dev.veneur.proxy.forward.BatchBodyAccess.of(batch);
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
