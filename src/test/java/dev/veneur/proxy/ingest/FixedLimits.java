package dev.veneur.proxy.ingest;

/** {@link Ingester.Limits} that do not follow a config: for tests and benchmarks driving an Ingester alone. */
public record FixedLimits(int maxStringLength, int maxMetricBytes, int compressionLevel) implements Ingester.Limits {}
