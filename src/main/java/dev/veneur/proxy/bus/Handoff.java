package dev.veneur.proxy.bus;

/**
 * A chunk handed to a forwarder, or back to the HTTP verticles to be routed again. Whoever lands
 * it ({@link MetricChunk#land()}) owns it. {@code hops} counts how often it has been sent back, so
 * a chunk can never circle between a stale ring snapshot and a forwarder that is gone.
 */
public record Handoff(MetricChunk chunk, int hops) {}
