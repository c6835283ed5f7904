package dev.veneur.proxy.bus;

/**
 * Metric objects bound for one destination, exactly as they arrived: their JSON bytes joined with
 * commas (so a forwarder only wraps chunks in brackets), with where each one starts and the ring
 * hash of its key, so the chunk can be routed again without parsing when a destination leaves.
 * Owned by whoever holds it; never mutated after it is sent.
 */
public final class MetricChunk {
  public final byte[] data;
  public final int length;
  public final int[] starts;
  public final int[] hashes;
  public final int count;
  /** When the chunk was cut from a request (or re-split); for {@code proxy.duration_ns}. */
  public final long createdNanos = System.nanoTime();

  public MetricChunk(byte[] data, int length, int[] starts, int[] hashes, int count) {
    this.data = data;
    this.length = length;
    this.starts = starts;
    this.hashes = hashes;
    this.count = count;
  }

  /** Bytes of the metric objects themselves, without the commas that join them. */
  public long metricBytes() {
    return length - (count - 1L);
  }

  /** End (exclusive) of metric {@code i}'s bytes. */
  public int end(int i) {
    return i + 1 < count ? starts[i + 1] - 1 : length;
  }
}
