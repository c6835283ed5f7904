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
 * <p>A third form, {@link #whole}, is a JSON body kept as it came (see there).
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
  /**
   * True for a <b>whole</b> chunk: an {@code /import} body exactly as a local sent it, a zlib
   * stream of a JSON array ({@code payload}; {@code rawLength} is what it inflates to, {@code adler}
   * is 0). The proxy makes one when every metric of a body goes to the one HTTP global there is and
   * none was dropped (issue 19): that body needs no re-batching, so it is forwarded as it came and
   * never deflated again. A forwarder sends it as a batch of its own; anything else that needs the
   * JSON form (joining other chunks, the spill, the gRPC bridge) asks for {@link #asJson()}.
   */
  public final boolean whole;

  /** A JSON chunk. */
  public MetricChunk(byte[] deflated, int rawLength, int adler, int count, RequestTrace trace) {
    this(deflated, rawLength, adler, count, trace, false);
  }

  private MetricChunk(byte[] payload, int rawLength, int adler, int count, RequestTrace trace, boolean proto) {
    this(payload, rawLength, adler, count, trace, proto, false);
  }

  private MetricChunk(byte[] payload, int rawLength, int adler, int count, RequestTrace trace, boolean proto, boolean whole) {
    this.payload = payload;
    this.rawLength = rawLength;
    this.adler = adler;
    this.count = count;
    this.trace = trace;
    this.proto = proto;
    this.whole = whole;
  }

  /**
   * A whole chunk: {@code zlibBody}, a complete zlib stream of a JSON array of {@code count}
   * metrics and nothing else but whitespace, {@code inflatedLength} bytes once inflated.
   */
  public static MetricChunk whole(byte[] zlibBody, int inflatedLength, int count, RequestTrace trace) {
    return new MetricChunk(zlibBody, inflatedLength, 0, count, trace, false, true);
  }

  /**
   * This chunk in the JSON form (itself if it is one already): a whole chunk's array is inflated,
   * its brackets left out, and its elements deflated again as raw blocks ending in a sync flush,
   * with their Adler-32. What lies between the brackets is kept byte for byte, whitespace and all,
   * which the array the forwarder wraps around chunks reads the same. Costs an inflate and a
   * deflate, so it is for the rare paths (a whole chunk re-routed onto a gRPC global, spilled, or
   * joined with others), not the common one. The result is not reserved in the memory budget:
   * the caller accounts for it (its size differs from this chunk's).
   *
   * @throws IllegalStateException if a whole chunk's payload is not what {@link #whole} promises
   */
  public MetricChunk asJson() {
    if (!whole) return this;
    byte[] json = new byte[rawLength];
    // Raw, past the 2-byte zlib header, as the body was read on arrival: its Adler-32 trailer is
    // not checked (a global's Go decoder stops at the end of the array and never reads it).
    java.util.zip.Inflater inf = new java.util.zip.Inflater(true);
    try {
      if (payload.length < 2) throw new IllegalStateException("a whole chunk of " + payload.length + " bytes");
      inf.setInput(payload, 2, payload.length - 2);
      int n = 0;
      while (n < json.length) {
        int k = inf.inflate(json, n, json.length - n);
        if (k == 0 && (inf.finished() || inf.needsInput() || inf.needsDictionary())) break;
        n += k;
      }
      if (n != json.length) throw new IllegalStateException("a whole chunk inflated to " + n + " bytes, not " + rawLength);
    } catch (java.util.zip.DataFormatException e) {
      throw new IllegalStateException("a whole chunk does not inflate: " + e.getMessage(), e);
    } finally {
      inf.end();
    }
    int open = 0;
    while (open < json.length && json[open] != '[') open++;
    int close = json.length - 1;
    while (close > open && json[close] != ']') close--;
    if (close <= open) throw new IllegalStateException("a whole chunk is not a JSON array");
    MetricChunk c = deflated(json, open + 1, close - open - 1, count, trace);
    c.spill = spill;
    return c;
  }

  /**
   * A JSON chunk of the comma-joined metrics {@code raw[off, off + len)}: deflated at zlib level 1
   * ending in a sync flush, with their Adler-32. For chunks made off the hot path (the JSON form
   * of a whole or a protobuf chunk); not reserved in the budget.
   */
  public static MetricChunk deflated(byte[] raw, int off, int len, int count, RequestTrace trace) {
    java.util.zip.Adler32 a = new java.util.zip.Adler32();
    a.update(raw, off, len);
    java.util.zip.Deflater d = new java.util.zip.Deflater(1, true);
    try {
      d.setInput(raw, off, len);
      java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(len / 2 + 64);
      byte[] buf = new byte[64 * 1024];
      while (true) {
        int k = d.deflate(buf, 0, buf.length, java.util.zip.Deflater.SYNC_FLUSH);
        out.write(buf, 0, k);
        if (k < buf.length && d.needsInput()) break;
      }
      return new MetricChunk(out.toByteArray(), len, (int) a.getValue(), count, trace);
    } finally {
      d.end();
    }
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
