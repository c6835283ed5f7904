package dev.veneur.proxy.bus;

/**
 * Metric objects bound for one destination, kept compressed: their JSON bytes, exactly as they
 * arrived and joined with commas, as raw deflate blocks that end on a byte boundary (a sync
 * flush) without a final block. A forwarder builds a global's body by concatenating chunks between
 * a zlib header, tiny stored blocks for {@code [}, {@code ,} and {@code ]}, and an Adler-32 combined
 * from each chunk's, so the bytes are deflated once, on the HTTP event loops, and never again.
 *
 * <p>Owned by whoever holds it; never mutated after it is built. Its {@link #bytes()} are reserved
 * in the memory budget from the moment it is built until it is settled or replaced.
 */
public final class MetricChunk {
  /** Raw deflate blocks; the last is an empty stored block (sync flush), none is final. */
  public final byte[] deflated;
  /** Length of the comma-joined metric JSON the blocks inflate to. */
  public final int rawLength;
  /** Adler-32 of those bytes. */
  public final int adler;
  /** Metric objects in the chunk. */
  public final int count;
  /** The request its metrics came in (kept across re-routing and splits), or null. */
  public final RequestTrace trace;

  public MetricChunk(byte[] deflated, int rawLength, int adler, int count, RequestTrace trace) {
    this.deflated = deflated;
    this.rawLength = rawLength;
    this.adler = adler;
    this.count = count;
    this.trace = trace;
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
    return deflated.length;
  }
}
