package dev.veneur.proxy.bus;

/**
 * Metrics bound for one destination, in one of two forms, each the form its destination's body is
 * joined from without decoding anything again:
 *
 * <ul>
 *   <li><b>JSON</b> (every HTTP global, and any chunk that came in by {@code /import}): the metric
 *       objects, exactly as they arrived and joined with commas, as raw deflate blocks that end on
 *       a byte boundary (a sync flush) without a final block. A forwarder builds a global's body by
 *       concatenating chunks between a zlib header, tiny stored blocks for {@code [}, {@code ,}
 *       and {@code ]}, and an Adler-32 combined from each chunk's, so the bytes are deflated once,
 *       on the event loops, and never again.
 *   <li><b>protobuf</b> ({@link #proto}: metrics that came in by gRPC for a gRPC global): each
 *       {@code metricpb.Metric} exactly as the local sent it, framed as field 1 of a
 *       {@code forwardrpc.MetricList}, so a batch's {@code MetricList} is the chunks' bytes one after
 *       another. Not compressed: gRPC to a global is not compressed either, and these bytes are
 *       never inflated or translated on their way (issue 17: gRPC to gRPC costs no more than JSON
 *       to JSON).
 * </ul>
 *
 * <p>Owned by whoever holds it; never mutated after it is built. Its {@link #bytes()} are reserved
 * in the memory budget from the moment it is built until it is settled or replaced.
 */
public final class MetricChunk {
  /** JSON: raw deflate blocks, the last an empty stored block (sync flush), none final. Protobuf: the framed metrics. */
  public final byte[] payload;
  /** JSON: length of the comma-joined metric JSON the blocks inflate to. Protobuf: {@code payload.length}. */
  public final int rawLength;
  /** JSON: Adler-32 of the inflated bytes. Protobuf: 0. */
  public final int adler;
  /** Metrics in the chunk. */
  public final int count;
  /** The request its metrics came in (kept across re-routing and splits), or null. */
  public final RequestTrace trace;
  /** True for a protobuf chunk (framed {@code metricpb.Metric}s), false for a JSON one. */
  public final boolean proto;

  /** A JSON chunk. */
  public MetricChunk(byte[] deflated, int rawLength, int adler, int count, RequestTrace trace) {
    this(deflated, rawLength, adler, count, trace, false);
  }

  private MetricChunk(byte[] payload, int rawLength, int adler, int count, RequestTrace trace, boolean proto) {
    this.payload = payload;
    this.rawLength = rawLength;
    this.adler = adler;
    this.count = count;
    this.trace = trace;
    this.proto = proto;
  }

  /** A protobuf chunk of {@code count} metrics, each framed as field 1 of a {@code MetricList}. */
  public static MetricChunk protobuf(byte[] framed, int count, RequestTrace trace) {
    return new MetricChunk(framed, framed.length, 0, count, trace, true);
  }

  /**
   * Set while the chunk crosses the event bus. The receiver and the sender (when its send fails
   * or times out) both try to take it back with {@link #land()}; exactly one wins, so a chunk can be
   * neither lost nor counted twice, however a hand-off ends.
   */
  private final java.util.concurrent.atomic.AtomicBoolean inTransit = new java.util.concurrent.atomic.AtomicBoolean();

  /**
   * Where the chunk is kept on disk with {@code spill_dir}, or null. Set once, before the chunk
   * leaves the verticle that made it; parts of a split chunk share their origin's.
   */
  public SpillMark spill;

  /** Marks the chunk as handed off; call just before sending it. */
  public void depart() {
    inTransit.set(true);
  }

  /** Takes ownership of a chunk in transit; false if the other side already did. */
  public boolean land() {
    return inTransit.compareAndSet(true, false);
  }

  /** What the chunk holds in memory, as the budget and {@code metrics.queued_bytes} count it. */
  public long bytes() {
    return payload.length;
  }
}
