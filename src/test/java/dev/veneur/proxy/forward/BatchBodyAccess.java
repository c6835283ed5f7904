package dev.veneur.proxy.forward;

import dev.veneur.proxy.bus.MetricChunk;
import io.vertx.core.buffer.Buffer;
import java.util.List;

/** Lets the benchmarks outside this package build a batch body. */
public final class BatchBodyAccess {
  private BatchBodyAccess() {}

  public static Buffer of(List<MetricChunk> chunks) {
    return BatchBody.of(chunks);
  }
}
