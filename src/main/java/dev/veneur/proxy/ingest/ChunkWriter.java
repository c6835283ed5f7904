package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.wire.FastDeflater;
import java.util.Arrays;
import java.util.zip.Adler32;
import java.util.zip.Deflater;

/**
 * Deflates the metrics of one body bound for one destination into a {@link MetricChunk}: metric
 * spans are staged (so the deflater sees large inputs, not one JNI call per metric), joined with
 * commas, and compressed as raw deflate ending in a sync flush, with their Adler-32 alongside.
 *
 * <p>Two deflaters can write the blocks ({@code forward_compressor}): the proxy's own
 * {@link FastDeflater} (the default: several times faster than zlib's level 1 on this JSON, see
 * the README's Performance section), which compresses each staged piece as blocks of their own
 * ending in a sync flush, or the JDK's zlib at {@code forward_compression_level}, one stream per
 * chunk. Level 0 stores the bytes with either. Both end byte-aligned and never final, so chunks
 * join the same way whichever wrote them, and a reload may switch between them from body to body.
 *
 * <p>One per destination slot per event loop, reused from body to body; the scratch it grows for
 * an exceptional body is reserved in the memory budget and given back afterwards. When the
 * Ingester merges queued bodies, their metrics accumulate here ({@link #mark()}, {@link
 * #rollback()}, {@link #cut}) and make one chunk, not one per body.
 */
final class ChunkWriter {
  private static final int STAGE = 64 * 1024;
  private static final int OUT_BASE = 64 * 1024;
  private static final byte[] NONE = new byte[0];

  private final MemoryBudget budget;
  private final Deflater deflater;
  /** The event loop's one fast deflater: each call is self-contained, so every writer of the loop shares it. */
  private final FastDeflater fast;
  /** This chunk's blocks come from {@link #fast}, not {@link #deflater}. */
  private boolean useFast;
  private final Adler32 adler = new Adler32();
  private final byte[] stage = new byte[STAGE];
  private int staged;
  private byte[] out = new byte[OUT_BASE];
  private int outLen;
  private int level;
  private int count;
  private long raw;
  /** Where the bodies merged so far end (see {@link #mark()}): stage length, metrics, raw bytes. */
  private int markStaged;
  private int markCount;
  private long markRaw;

  ChunkWriter(MemoryBudget budget, int level, FastDeflater fast) {
    this.budget = budget;
    this.level = level;
    this.deflater = new Deflater(level, true);
    this.fast = fast;
  }

  /**
   * Starts a chunk at zlib level {@code wantLevel}, its blocks by the fast deflater when
   * {@code wantFast} (then any level but 0 means "compress", and 0 stores).
   */
  void begin(int wantLevel, boolean wantFast) {
    useFast = wantFast && wantLevel > 0;
    deflater.reset();
    if (wantLevel != level) {
      deflater.setLevel(wantLevel);
      level = wantLevel;
    }
    adler.reset();
    staged = 0;
    outLen = 0;
    count = 0;
    raw = 0;
    markStaged = 0;
    markCount = 0;
    markRaw = 0;
  }

  int count() {
    return count;
  }

  /** JSON bytes added since {@link #begin}. */
  long raw() {
    return raw;
  }

  /**
   * Remembers where the bodies added so far end, before another body of the same group is added
   * (Ingester merges queued bodies into one chunk per destination). Until the next {@code mark()}
   * or {@code begin()}, the caller adds nothing that {@link #wouldFeed} says reaches the deflater,
   * so what follows the mark is still in the stage and can be taken back ({@link #rollback}) or
   * moved to a chunk of its own ({@link #cut}).
   */
  void mark() {
    markStaged = staged;
    markCount = count;
    markRaw = raw;
  }

  /** Whether adding a metric of {@code len} bytes would feed the deflater (not stay staged). */
  boolean wouldFeed(int len) {
    return len > STAGE / 2 || staged + len + 1 > STAGE;
  }

  /** Takes back what was added since {@link #mark()} (still staged, never fed). */
  void rollback() {
    staged = markStaged;
    count = markCount;
    raw = markRaw;
  }

  /**
   * Ends a chunk of what was added before {@link #mark()} (null if nothing) and begins the next
   * with what was added after it, as if that had been added to a fresh writer.
   */
  MetricChunk cut(dev.veneur.proxy.bus.RequestTrace trace) {
    int tailCount = count - markCount;
    // add() put a comma before the first metric after the mark when there was one before it.
    int skip = markCount > 0 && tailCount > 0 ? 1 : 0;
    int tailFrom = markStaged + skip;
    int tailLen = staged - tailFrom;
    long tailRaw = raw - markRaw - skip;
    staged = markStaged;
    count = markCount;
    raw = markRaw;
    MetricChunk c = finish(trace);
    begin(level, useFast);
    System.arraycopy(stage, tailFrom, stage, 0, tailLen);
    staged = tailLen;
    count = tailCount;
    raw = tailRaw;
    markStaged = 0;
    markCount = 0;
    markRaw = 0;
    return c;
  }

  /** Adds the metric object {@code b[s, e)}. */
  void add(byte[] b, int s, int e) {
    int len = e - s;
    if (count > 0) {
      if (staged == STAGE) flushStage();
      stage[staged++] = ',';
      raw++;
    }
    if (len > STAGE / 2) {
      flushStage();
      feed(b, s, len);
    } else {
      if (staged + len > STAGE) flushStage();
      System.arraycopy(b, s, stage, staged, len);
      staged += len;
    }
    raw += len;
    count++;
  }

  /** Ends the chunk; null when no metric was added. Its bytes are reserved in the budget. */
  MetricChunk finish(dev.veneur.proxy.bus.RequestTrace trace) {
    return finish(trace, null);
  }

  /** @param spill the spill record of the chunk these metrics were split from, if any */
  MetricChunk finish(dev.veneur.proxy.bus.RequestTrace trace, dev.veneur.proxy.bus.SpillMark spill) {
    if (count == 0) return null;
    flushStage();
    if (!useFast) {
      // The fast deflater ended every piece with its own sync flush; zlib's stream needs one now.
      deflater.setInput(NONE);
      int n;
      do {
        room(512);
        int space = out.length - outLen;
        n = deflater.deflate(out, outLen, space, Deflater.SYNC_FLUSH);
        outLen += n;
        if (n < space) break;
      } while (true);
    }
    byte[] bytes = Arrays.copyOf(out, outLen);
    budget.reserve(bytes.length);
    if (raw > Integer.MAX_VALUE) throw new IllegalStateException("chunk over 2 GiB");
    MetricChunk c = new MetricChunk(bytes, (int) raw, (int) adler.getValue(), count, trace);
    c.spill = spill;
    return c;
  }

  /** Gives back scratch grown past its base size. */
  void trim() {
    if (out.length > OUT_BASE) {
      budget.release(out.length - OUT_BASE);
      out = new byte[OUT_BASE];
    }
  }

  void close() {
    trim();
    deflater.end();
  }

  private void flushStage() {
    if (staged == 0) return;
    feed(stage, 0, staged);
    staged = 0;
  }

  private void feed(byte[] b, int off, int len) {
    adler.update(b, off, len);
    if (useFast) {
      room(FastDeflater.maxCompressedLength(len));
      outLen += fast.deflateSync(b, off, len, out, outLen);
      return;
    }
    deflater.setInput(b, off, len);
    while (!deflater.needsInput()) {
      room(512);
      outLen += deflater.deflate(out, outLen, out.length - outLen, Deflater.NO_FLUSH);
    }
  }

  /** Grows the output (reserving the growth in the budget) until {@code need} bytes fit after what it holds. */
  private void room(int need) {
    if (out.length - outLen >= need) return;
    int bigger = out.length;
    while (bigger - outLen < need) bigger *= 2;
    budget.reserve(bigger - out.length);
    out = Arrays.copyOf(out, bigger);
  }
}
