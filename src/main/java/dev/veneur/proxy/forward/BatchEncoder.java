package dev.veneur.proxy.forward;

import dev.veneur.proxy.bus.MetricChunk;
import java.util.Arrays;
import java.util.List;
import java.util.zip.Deflater;

/**
 * Builds a forward body: the chunks' metric bytes wrapped in one JSON array and zlib-compressed,
 * as a local Veneur sends to a global. Chunks are already comma-joined, so this only adds the
 * brackets and the commas between chunks; metric bytes are never re-encoded.
 *
 * <p>Not thread-safe: one per forwarder.
 */
public final class BatchEncoder {
  private final int level;
  private static final byte[] OPEN = {'['};
  private static final byte[] CLOSE = {']'};
  private static final byte[] COMMA = {','};

  private final Deflater deflater;
  private byte[] out = new byte[64 * 1024];
  private int pos;

  public BatchEncoder(int level) {
    this.level = level;
    deflater = new Deflater(level);
  }

  /** Compresses the chunks; the result is {@link #bytes()}[0, {@link #length()}). */
  public void encode(List<MetricChunk> chunks) {
    deflater.reset();
    pos = 0;
    feed(OPEN, 0, 1);
    boolean first = true;
    for (MetricChunk c : chunks) {
      if (c.count == 0) continue;
      if (!first) feed(COMMA, 0, 1);
      first = false;
      feed(c.data, 0, c.length);
    }
    feed(CLOSE, 0, 1);
    deflater.finish();
    while (!deflater.finished()) drain();
  }

  public int level() {
    return level;
  }

  public byte[] bytes() {
    return out;
  }

  public int length() {
    return pos;
  }

  public void close() {
    deflater.end();
  }

  private void feed(byte[] b, int off, int len) {
    deflater.setInput(b, off, len);
    while (!deflater.needsInput()) drain();
  }

  private void drain() {
    if (pos == out.length) out = Arrays.copyOf(out, out.length * 2);
    pos += deflater.deflate(out, pos, out.length - pos);
  }
}
