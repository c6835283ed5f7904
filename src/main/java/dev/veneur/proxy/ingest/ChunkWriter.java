package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import java.util.Arrays;
import java.util.zip.Adler32;
import java.util.zip.Deflater;

/**
 * Deflates the metrics of one body bound for one destination into a {@link MetricChunk}: metric
 * spans are staged (so the deflater sees large inputs, not one JNI call per metric), joined with
 * commas, and compressed as raw deflate ending in a sync flush, with their Adler-32 alongside.
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

  ChunkWriter(MemoryBudget budget, int level) {
    this.budget = budget;
    this.level = level;
    this.deflater = new Deflater(level, true);
  }

  void begin(int wantLevel) {
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
    begin(level);
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
    deflater.setInput(NONE);
    int n;
    do {
      room();
      int space = out.length - outLen;
      n = deflater.deflate(out, outLen, space, Deflater.SYNC_FLUSH);
      outLen += n;
      if (n < space) break;
    } while (true);
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
    deflater.setInput(b, off, len);
    while (!deflater.needsInput()) {
      room();
      outLen += deflater.deflate(out, outLen, out.length - outLen, Deflater.NO_FLUSH);
    }
  }

  private void room() {
    if (out.length - outLen >= 512) return;
    int bigger = out.length * 2;
    budget.reserve(bigger - out.length);
    out = Arrays.copyOf(out, bigger);
  }
}
