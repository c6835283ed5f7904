package dev.veneur.proxy.bench;

import dev.veneur.proxy.tools.SyntheticMetrics;
import dev.veneur.proxy.wire.FastDeflater;
import io.vertx.core.json.JsonArray;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;
import org.openjdk.jmh.annotations.AuxCounters;
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
 * Each compressor the proxy could write chunks with, on the same bytes: one 1000-metric body of
 * real Veneur output (~300 KB of JSON), deflated raw and sync-flushed as {@code ChunkWriter} does
 * (so chunks can be joined into one zlib body), and inflated again as a global does. {@code
 * deflate} is what the proxy pays per body, {@code inflate} what each global pays for it, and the
 * {@code bytes} counter what goes on the wire and waits in the memory budget. The zlib shipped
 * with the JDK ({@code java.util.zip}) is the only deflate on the classpath: levels 1 (what the
 * proxy uses, {@code forward_compression_level}) and 6 (Go's default), Huffman-only (no string
 * matching) and stored (no compression); and {@code fast}, the pure-Java {@link FastDeflater}
 * (one {@code deflateSync} per body, its codes built from the previous body's symbol counts as in
 * steady state, inflated by the same JDK inflater). {@code scripts/jmh CompressorBench}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class CompressorBench {
  @Param({"level1", "level6", "huffman", "stored", "fast"})
  public String compressor;

  /**
   * 0: the body in one call; else the fast deflater gets it in calls of this many bytes at most,
   * as a ChunkWriter stages a destination's metrics (64 KiB).
   */
  @Param({"0"})
  public int piece;

  private byte[] json;
  private byte[] out;
  private int outLen;
  private byte[] back;
  private Deflater deflater;
  private FastDeflater fast;
  private final Inflater inflater = new Inflater(true);

  /** The compressed size of one body, reported beside the time (bytes per 1000 metrics). */
  @State(Scope.Thread)
  @AuxCounters(AuxCounters.Type.EVENTS)
  public static class Size {
    public long compressedBytes;
    public long jsonBytes;
  }

  @Setup(Level.Trial)
  public void setup() throws Exception {
    JsonArray sample = new JsonArray(Files.readString(Path.of("src/test/resources/fixtures/captured/large.json")));
    json = SyntheticMetrics.fromSample(sample, 1000, 1);
    out = new byte[Math.max(json.length + json.length / 10 + 1024, FastDeflater.maxCompressedLength(json.length))];
    back = new byte[json.length];
    deflater = switch (compressor) {
      case "level1" -> new Deflater(1, true);
      case "level6" -> new Deflater(6, true);
      case "huffman" -> {
        Deflater d = new Deflater(1, true);
        d.setStrategy(Deflater.HUFFMAN_ONLY);
        yield d;
      }
      case "stored" -> new Deflater(0, true);
      case "fast" -> null;
      default -> throw new IllegalArgumentException(compressor);
    };
    if (deflater == null) fast = new FastDeflater();
    // Twice: the fast deflater builds its codes from the call before, so its first output (which
    // starts in the fixed codes) is not what inflate would see in steady state.
    compress();
    outLen = compress();
    if (decompress() != json.length) throw new IllegalStateException(compressor + " does not round-trip");
  }

  @TearDown(Level.Trial)
  public void teardown() {
    if (deflater != null) deflater.end();
    inflater.end();
  }

  private int compress() {
    // Ends in a sync flush too: one call, self-contained, byte-aligned, not final.
    if (fast != null) {
      if (piece == 0) return fast.deflateSync(json, 0, json.length, out, 0);
      int n = 0;
      for (int at = 0; at < json.length; at += piece) {
        n += fast.deflateSync(json, at, Math.min(piece, json.length - at), out, n);
      }
      return n;
    }
    deflater.reset();
    deflater.setInput(json);
    int n = 0;
    // One sync flush at the end, as a chunk ends: byte-aligned, not final, so chunks concatenate.
    while (true) {
      n += deflater.deflate(out, n, out.length - n, Deflater.SYNC_FLUSH);
      if (deflater.needsInput()) return n;
    }
  }

  private int decompress() throws DataFormatException {
    inflater.reset();
    inflater.setInput(out, 0, outLen);
    int n = 0;
    while (n < back.length) {
      int k = inflater.inflate(back, n, back.length - n);
      if (k == 0) break;
      n += k;
    }
    return n;
  }

  @Benchmark
  public int deflate(Size size) {
    int n = compress();
    size.compressedBytes += n;
    size.jsonBytes += json.length;
    return n;
  }

  @Benchmark
  public int inflate() throws DataFormatException {
    return decompress();
  }
}
