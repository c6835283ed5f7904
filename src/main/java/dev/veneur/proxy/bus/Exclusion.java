package dev.veneur.proxy.bus;

/**
 * Ring to forwarder: whether its destination is out of the routing ring (ejected while other
 * members are healthy). An excluded forwarder hands its queued batches back to the ring and probes
 * its global until it answers.
 */
public record Exclusion(boolean excluded) {}
