package dev.veneur.proxy.routing;

/**
 * The rings importers route on, one per ingest protocol, as Veneur v14.2.0 keeps them: JSON
 * ({@code /import}) to the ring of HTTP globals, gRPC to the ring of gRPC globals. When only one
 * ring is configured both fields are that ring, so every metric goes there. Immutable, published
 * by the ring verticle on every change.
 */
public record RingSet(HashRing forJson, HashRing forGrpc) {
  public static final RingSet EMPTY = new RingSet(HashRing.empty(), HashRing.empty());
}
