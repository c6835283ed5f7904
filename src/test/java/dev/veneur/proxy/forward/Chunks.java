package dev.veneur.proxy.forward;

import dev.veneur.proxy.bus.MetricChunk;

/** Chunks of a given size for tests of the forwarder's parts, which never look inside them. */
final class Chunks {
  private Chunks() {}

  static MetricChunk of(int metrics, int rawLength) {
    return new MetricChunk(new byte[16], rawLength, 1, metrics, null);
  }
}
