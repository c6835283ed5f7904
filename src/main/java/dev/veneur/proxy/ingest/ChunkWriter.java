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
 * an exceptional body is reserved in the memory budget and given back afterwards.
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
  }

  int count() {
    return count;
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
