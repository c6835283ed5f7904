package dev.veneur.proxy.ingest;

import dev.veneur.proxy.wire.Bridge;
import dev.veneur.proxy.wire.MetricPb;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.bus.RequestTrace;
import dev.veneur.proxy.config.MemberAddress;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.routing.V14Key;
import java.io.ByteArrayOutputStream;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Sorts what a v14 local sends by gRPC ({@code MetricList} for {@code SendMetrics}, one
 * {@code Metric} per message for {@code SendMetricsV2}) by destination, the ring snapshot it was
 * made with deciding:
 *
 * <ul>
 *   <li>a metric whose owner is a gRPC global is <b>spliced</b>: its bytes go, untouched, into that
 *       global's protobuf chunk ({@link ProtoChunkWriter}), placed by v14's key ({@link V14Key});
 *   <li>the others are translated to the JSON array {@code /import} carries and take the JSON path
 *       (the Ingester scans them, routes them on the same snapshot by {@code name + type + tagstring},
 *       the same key, and deflates one chunk per HTTP global).
 * </ul>
 *
 * <p>Each metric is checked as a v14 global reads it ({@link MetricPb#scan}); one that a global
 * would refuse or panic on is left out alone and counted by cause, never the whole message. A
 * message whose framing does not parse is refused whole, as a Go gRPC server refuses it.
 */
public final class GrpcTranslator {
  private final MetricPb.Fields fields = new MetricPb.Fields();
  private final ByteArrayOutputStream json;
  private final HashRing routing;
  /** Per ring slot, whether its member is reached by gRPC; null when none is (nothing is spliced). */
  private final boolean[] grpcSlot;
  private final ProtoChunkWriter[] writers;
  /** About one writer's share of the part: the part's bytes split evenly, and a quarter more. */
  private final int writerBytes;
  private final V14Key.Hasher keys = new V14Key.Hasher();
  private final MemoryBudget budget;
  private int spliced;
  private int splicedBytes;
  /**
   * A whole {@code MetricList} that goes to the one member there is, a gRPC global, as it came
   * (see {@link #addList}); null otherwise.
   */
  private byte[] wholeList;
  private int wholeCount;
  private int valid;
  private int scopeLost;
  private final Map<String, Integer> dropped = new LinkedHashMap<>();
  private String firstProblem;

  /** Translates everything to JSON (no ring yet, or tests of the translation). */
  public GrpcTranslator(int initialBytes) {
    this(initialBytes, HashRing.empty(), null);
  }

  /**
   * @param initialBytes about how many protobuf bytes the part will hold (a unary call's message size)
   * @param routing the ring snapshot the part's metrics are placed on
   * @param budget where spliced chunks are reserved (null: nothing is spliced)
   */
  public GrpcTranslator(int initialBytes, HashRing routing, MemoryBudget budget) {
    this.routing = routing;
    this.budget = budget;
    boolean[] grpc = null;
    if (budget != null) {
      for (int d = 0; d < routing.size(); d++) {
        if (MemberAddress.isGrpc(routing.member(d))) {
          if (grpc == null) grpc = new boolean[routing.size()];
          grpc[d] = true;
        }
      }
    }
    grpcSlot = grpc;
    writers = grpc == null ? null : new ProtoChunkWriter[grpc.length];
    writerBytes = grpc == null ? 0 : (int) Math.min(1 << 20, (long) initialBytes * 5 / 4 / grpc.length);
    // When metrics may be spliced, the JSON side is usually small: let it grow if it is not.
    // As JSON (base64 values, quoted keys) a metric takes about twice its protobuf bytes.
    json = new dev.veneur.proxy.wire.FastBytes(grpc == null ? Math.max(64, initialBytes * 2) : 256);
    json.write('[');
  }

  /**
   * Adds the metrics of a {@code MetricList}.
   *
   * @return false if the list's framing does not parse (nothing of it was added)
   */
  public boolean addList(byte[] b, int off, int len) {
    if (grpcSlot != null && grpcSlot.length == 1 && spliced == 0 && valid == 0 && dropped.isEmpty()
        && passThrough(b, off, len)) {
      return true;
    }
    // Framing first: a message that does not parse is refused whole, with nothing half-added.
    MetricPb.ListReader check = new MetricPb.ListReader(b, off, len);
    while (check.next()) {
      // only walking the framing
    }
    if (check.malformed) return false;
    MetricPb.ListReader r = new MetricPb.ListReader(b, off, len);
    while (r.next()) addMetric(b, r.metricOff, r.metricLen);
    return true;
  }

  /**
   * With one member, a gRPC global, every metric goes to it: when every one of them is one a v14
   * global reads, and the list is nothing but its metrics each framed as this proxy frames them
   * (field 1, the shortest length), the list's bytes already are the chunk the member's {@code
   * MetricList} is joined from. They are kept as they came (issue 19: no key hashed, nothing
   * copied a metric at a time). Anything else (a metric to leave out, another field, a longer
   * length varint) takes the metric-by-metric path; a list whose last metric is the bad one is so
   * checked twice, at most twice what the old path cost.
   */
  private boolean passThrough(byte[] b, int off, int len) {
    MetricPb.ListReader r = new MetricPb.ListReader(b, off, len);
    int n = 0;
    long framed = 0;
    while (r.next()) {
      if (!MetricPb.scan(b, r.metricOff, r.metricLen, fields)) return false;
      n++;
      framed += 1 + MetricPb.varintSize(r.metricLen) + r.metricLen;
    }
    if (r.malformed || n == 0 || framed != len) return false;
    wholeList = off == 0 && len == b.length ? b : java.util.Arrays.copyOfRange(b, off, off + len);
    wholeCount = n;
    spliced = n;
    splicedBytes = len;
    return true;
  }

  /** Adds one {@code Metric} (a {@code SendMetricsV2} message). */
  public void addMetric(byte[] b, int off, int len) {
    if (!MetricPb.scan(b, off, len, fields)) {
      dropped.merge(fields.problem.cause, 1, Integer::sum);
      if (firstProblem == null) firstProblem = fields.problem.cause + ": " + fields.detail;
      return;
    }
    if (grpcSlot != null) {
      // One member owns every key: no key to hash.
      int slot = grpcSlot.length == 1 ? 0 : routing.ownerIndex(keys.hash(b, fields, routing.keyIgnore()));
      if (grpcSlot[slot]) {
        ProtoChunkWriter w = writers[slot];
        if (w == null) w = writers[slot] = new ProtoChunkWriter(budget, writerBytes);
        w.add(b, fields.start, fields.end - fields.start);
        spliced++;
        splicedBytes += fields.end - fields.start + 5;
        return;
      }
    }
    if (Bridge.lostScope(fields)) scopeLost++;
    if (valid > 0) json.write(',');
    Bridge.toJson(b, fields, json);
    valid++;
  }

  /** Metrics translated to JSON (not spliced). */
  public int valid() {
    return valid;
  }

  /** Metrics spliced into protobuf chunks. */
  public int spliced() {
    return spliced;
  }

  /** The ring snapshot this part is placed on. */
  public HashRing routing() {
    return routing;
  }

  /**
   * The spliced metrics' chunks, one per slot of {@link #routing()} (null where none went), each
   * reserved in the budget; null when nothing was spliced.
   */
  public MetricChunk[] protoChunks(RequestTrace trace) {
    if (spliced == 0) return null;
    MetricChunk[] out = new MetricChunk[writers.length];
    for (int d = 0; d < writers.length; d++) if (writers[d] != null) out[d] = writers[d].finish(trace);
    if (wholeList != null) {
      budget.reserve(wholeList.length);
      MetricChunk whole = MetricChunk.protobuf(wholeList, wholeCount, trace);
      // A second message in the same part (a unary call that carries two) went metric by metric.
      out[0] = out[0] == null ? whole : MetricChunk.protobuf(join(whole.payload, out[0].payload),
          whole.count + out[0].count, trace);
      wholeList = null;
    }
    return out;
  }

  private static byte[] join(byte[] a, byte[] b) {
    byte[] j = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, j, a.length, b.length);
    return j;
  }

  /** Global-scope histograms and timers that JSON can only carry as mixed (README: the bridge's one loss). */
  public int scopeLost() {
    return scopeLost;
  }

  /** Metrics left out, by cause. */
  public Map<String, Integer> dropped() {
    return dropped;
  }

  public int droppedTotal() {
    int n = 0;
    for (int v : dropped.values()) n += v;
    return n;
  }

  /** The first reason a metric was left out, for a log line and the gRPC status message. */
  public String firstProblem() {
    return firstProblem;
  }

  /** Bytes held so far: JSON (without the closing bracket) and spliced metrics. */
  public int size() {
    return json.size() + splicedBytes;
  }

  /** The JSON array of every metric added. */
  public byte[] finish() {
    json.write(']');
    return json.toByteArray();
  }
}
