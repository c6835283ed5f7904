package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.MetricChunk;
import java.util.Arrays;

/** Copies metric spans bound for one destination into one contiguous, comma-joined array. */
public final class ChunkBuilder {
  private byte[] data;
  private int length;
  private int[] starts;
  private int[] hashes;
  private int count;

  public ChunkBuilder(int expectedBytes, int expectedMetrics) {
    data = new byte[Math.max(64, expectedBytes)];
    starts = new int[Math.max(4, expectedMetrics)];
    hashes = new int[starts.length];
  }

  public void append(byte[] src, int start, int end, int hash) {
    int n = end - start;
    int need = length + n + 1;
    if (need > data.length) data = Arrays.copyOf(data, Math.max(need, data.length + (data.length >> 1)));
    if (count == starts.length) {
      starts = Arrays.copyOf(starts, count * 2);
      hashes = Arrays.copyOf(hashes, count * 2);
    }
    if (count > 0) data[length++] = ',';
    starts[count] = length;
    hashes[count] = hash;
    count++;
    System.arraycopy(src, start, data, length, n);
    length += n;
  }

  public int count() {
    return count;
  }

  /** Bytes of the metrics alone, as the queue budget counts them. */
  public long metricBytes() {
    return count == 0 ? 0 : length - (count - 1L);
  }

  public MetricChunk build() {
    return new MetricChunk(data, length, starts, hashes, count);
  }

  /** Splits an existing chunk's metrics by a new owner, for re-routing without parsing. */
  public static ChunkBuilder forSplit(MetricChunk from, int ways) {
    return new ChunkBuilder(from.length / Math.max(1, ways) + 64, from.count / Math.max(1, ways) + 4);
  }
}
