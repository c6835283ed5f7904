package dev.veneur.proxy.forward;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.wire.Adler;
import io.vertx.core.buffer.Buffer;
import java.util.List;

/**
 * Builds the body a global receives, {@code zlib([m1,m2,...])}, from compressed chunks without
 * inflating or deflating anything: a zlib header, a stored block holding {@code [}, each chunk's
 * deflate blocks (they end byte-aligned, none final) with a stored {@code ,} between chunks, a
 * final stored block holding {@code ]}, and the Adler-32 of the whole JSON combined from the
 * chunks' own. This is how parallel gzip tools join independently compressed pieces; any zlib
 * reader (Go's compress/zlib in the global) reads it as one stream.
 *
 * <p>The body is copied once into one array of its exact size: the socket write copies it into
 * direct memory anyway, and handing Netty a composite of the chunks' arrays instead makes it merge
 * them into a temporary array first (one more copy and allocation per POST, measured with JFR).
 */
final class BatchBody {
  /** CMF 0x78 (deflate, 32K window), FLG 0x01 (fastest level, check bits). */
  private static final byte[] HEADER = {0x78, 0x01};
  /** Stored blocks of one byte: header bits, LEN=1, NLEN=~1, the byte. */
  private static final byte[] OPEN = {0x00, 0x01, 0x00, (byte) 0xFE, (byte) 0xFF, '['};
  private static final byte[] COMMA = {0x00, 0x01, 0x00, (byte) 0xFE, (byte) 0xFF, ','};
  private static final byte[] CLOSE = {0x01, 0x01, 0x00, (byte) 0xFE, (byte) 0xFF, ']'};

  private BatchBody() {}

  /** The body for {@code chunks}, which are JSON ones. */
  static Buffer of(List<MetricChunk> chunks) {
    return of(chunks, lost -> {
      throw new IllegalStateException("a protobuf chunk where only JSON ones were expected");
    });
  }

  /**
   * The body for {@code chunks}; a protobuf chunk among them is sent as its JSON, and
   * {@code scopeLost} is told how many global-scope histograms that made mixed.
   */
  static Buffer of(List<MetricChunk> chunks, java.util.function.IntConsumer scopeLost) {
    if (chunks.size() == 1 && chunks.get(0).whole) {
      // The body as the local sent it (BatchBuilder sends whole chunks alone).
      return Buffer.buffer(chunks.get(0).payload);
    }
    if (anyWhole(chunks)) {
      List<MetricChunk> json = new java.util.ArrayList<>(chunks.size());
      for (MetricChunk c : chunks) json.add(c.asJson());
      chunks = json;
    }
    if (anyProto(chunks)) {
      List<MetricChunk> json = new java.util.ArrayList<>(chunks.size());
      int lost = 0;
      for (MetricChunk c : chunks) {
        if (!c.proto) {
          json.add(c);
          continue;
        }
        dev.veneur.proxy.wire.FastBytes raw = new dev.veneur.proxy.wire.FastBytes(c.payload.length * 2);
        dev.veneur.proxy.wire.Bridge.Translated t = dev.veneur.proxy.wire.Bridge.framedToJson(c.payload, 0, c.payload.length, raw);
        if (t.metrics() != c.count) throw new IllegalStateException("a protobuf chunk of " + c.count + " metrics held " + t.metrics());
        lost += t.scopeLost();
        // A protobuf chunk is only made for a gRPC global, so this runs only if one reaches an HTTP
        // global some other way; it costs a translation and a deflate.
        byte[] bytes = raw.toByteArray();
        json.add(MetricChunk.deflated(bytes, 0, bytes.length, c.count, c.trace));
      }
      if (lost > 0) scopeLost.accept(lost);
      chunks = json;
    }
    byte[][] parts = new byte[chunks.size() * 2 + 3][];
    int k = 0;
    parts[k++] = HEADER;
    parts[k++] = OPEN;
    int adler = Adler.ofByte('[');
    boolean first = true;
    for (MetricChunk c : chunks) {
      if (!first) {
        parts[k++] = COMMA;
        adler = Adler.combine(adler, Adler.ofByte(','), 1);
      }
      first = false;
      parts[k++] = c.payload;
      adler = Adler.combine(adler, c.adler, c.rawLength);
    }
    parts[k++] = CLOSE;
    adler = Adler.combine(adler, Adler.ofByte(']'), 1);
    parts[k++] = new byte[] {(byte) (adler >>> 24), (byte) (adler >>> 16), (byte) (adler >>> 8), (byte) adler};
    long total = 0;
    for (int p = 0; p < k; p++) total += parts[p].length;
    if (total > Integer.MAX_VALUE - 16) throw new IllegalStateException("batch body over 2 GiB");
    // Buffer.buffer(byte[]) would copy the array again; append into one of the exact size.
    Buffer body = Buffer.buffer((int) total);
    for (int p = 0; p < k; p++) body.appendBytes(parts[p]);
    return body;
  }

  /** Bytes {@link #of} produces for {@code chunks} (a lone whole chunk: its own; else, JSON ones). */
  static long length(List<MetricChunk> chunks) {
    if (chunks.size() == 1 && chunks.get(0).whole) return chunks.get(0).payload.length;
    long n = HEADER.length + OPEN.length + CLOSE.length + 4;
    for (MetricChunk c : chunks) n += c.payload.length;
    return n + (long) Math.max(0, chunks.size() - 1) * COMMA.length;
  }

  private static boolean anyWhole(List<MetricChunk> chunks) {
    for (MetricChunk c : chunks) if (c.whole) return true;
    return false;
  }

  private static boolean anyProto(List<MetricChunk> chunks) {
    for (MetricChunk c : chunks) if (c.proto) return true;
    return false;
  }
}
