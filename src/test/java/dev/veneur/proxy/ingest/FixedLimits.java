package dev.veneur.proxy.ingest;

/** {@link Ingester.Limits} that do not follow a config: for tests and benchmarks driving an Ingester alone. */
public record FixedLimits(int maxStringLength, int maxMetricBytes, int compressionLevel, boolean fastCompressor)
    implements Ingester.Limits {
  /** Chunks deflated by zlib at {@code compressionLevel}. */
  public FixedLimits(int maxStringLength, int maxMetricBytes, int compressionLevel) {
    this(maxStringLength, maxMetricBytes, compressionLevel, false);
  }
}
