package dev.veneur.proxy.bus;

/**
 * Forwarder to ring: a destination crossed its failure threshold ({@code healthy=false}) or
 * answered again ({@code healthy=true}). The ring replies with an {@link Exclusion}: whether the
 * destination is now out of the routing ring.
 */
public record Health(String destination, boolean healthy) {}
