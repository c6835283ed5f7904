package dev.veneur.proxy.bus;

/**
 * A chunk split in two by position (the first half of its metrics, then the rest), so a forwarder
 * can narrow down which metrics a global refuses. Both parts were reserved in the memory budget;
 * the asker settles the original with {@code Accounting.replaced}.
 */
public record Halves(MetricChunk first, MetricChunk second) {}
