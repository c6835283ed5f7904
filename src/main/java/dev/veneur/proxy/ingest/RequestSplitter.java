package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.MetricChunk;
import java.util.Arrays;

/**
 * Splits one request's metric spans by destination into exactly-sized chunks. The scan records
 * every span and its owner first (in arrays reused from request to request), so each chunk is
 * allocated once at its final size: no growing and re-copying, no slack kept in the queue. JFR
 * showed the growing builders were over half of the proxy's allocation.
 */
public final class RequestSplitter {
  private int[] starts = new int[1024];
  private int[] ends = new int[1024];
  private int[] hashes = new int[1024];
  private int[] owners = new int[1024];
  private int n;
  private int ways;
  private long[] bytes = new long[8];
  private int[] counts = new int[8];

  /** Starts a request routed over {@code ways} destinations. */
  public void reset(int ways) {
    this.ways = ways;
    n = 0;
    if (bytes.length < ways) {
      bytes = new long[ways];
      counts = new int[ways];
    } else {
      Arrays.fill(bytes, 0, ways, 0);
      Arrays.fill(counts, 0, ways, 0);
    }
  }

  public void add(int start, int end, int hash, int owner) {
    if (n == starts.length) {
      int cap = n * 2;
      starts = Arrays.copyOf(starts, cap);
      ends = Arrays.copyOf(ends, cap);
      hashes = Arrays.copyOf(hashes, cap);
      owners = Arrays.copyOf(owners, cap);
    }
    starts[n] = start;
    ends[n] = end;
    hashes[n] = hash;
    owners[n] = owner;
    n++;
    bytes[owner] += end - start;
    counts[owner]++;
  }

  public int count(int owner) {
    return counts[owner];
  }

  /** Bytes of metric JSON bound for {@code owner}, as the queue budget counts them. */
  public long metricBytes(int owner) {
    return bytes[owner];
  }

  /** One chunk per destination (null where none), copied out of {@code src}. */
  public MetricChunk[] build(byte[] src) {
    MetricChunk[] out = new MetricChunk[ways];
    byte[][] data = new byte[ways][];
    int[][] cStarts = new int[ways][];
    int[][] cHashes = new int[ways][];
    int[] fill = new int[ways];
    int[] k = new int[ways];
    for (int d = 0; d < ways; d++) {
      if (counts[d] == 0) continue;
      data[d] = new byte[(int) bytes[d] + counts[d] - 1];
      cStarts[d] = new int[counts[d]];
      cHashes[d] = new int[counts[d]];
    }
    for (int i = 0; i < n; i++) {
      int d = owners[i];
      int len = ends[i] - starts[i];
      if (k[d] > 0) data[d][fill[d]++] = ',';
      cStarts[d][k[d]] = fill[d];
      cHashes[d][k[d]] = hashes[i];
      k[d]++;
      System.arraycopy(src, starts[i], data[d], fill[d], len);
      fill[d] += len;
    }
    for (int d = 0; d < ways; d++) {
      if (counts[d] > 0) out[d] = new MetricChunk(data[d], fill[d], cStarts[d], cHashes[d], counts[d]);
    }
    return out;
  }
}
