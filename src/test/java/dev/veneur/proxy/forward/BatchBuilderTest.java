package dev.veneur.proxy.forward;

import dev.veneur.proxy.support.ManualTimers;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.bus.MetricChunk;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BatchBuilderTest {
  private final ManualTimers timers = new ManualTimers();
  private final List<Batch> cut = new ArrayList<>();
  private final BatchBuilder builder = new BatchBuilder(timers, cut::add);
  private static final BatchBuilder.Limits LIMITS = new BatchBuilder.Limits(100, 10_000, 50);

  @Test
  void cutsWhenTheMetricCountIsReached() {
    builder.add(Chunks.of(60, 100), LIMITS);
    assertEquals(0, cut.size());
    builder.add(Chunks.of(40, 100), LIMITS);
    assertEquals(1, cut.size());
    assertEquals(100, cut.get(0).metrics);
    assertEquals(2, cut.get(0).chunks.size());
    assertTrue(builder.isEmpty());
    assertEquals(0, timers.pending(), "the linger timer is cancelled with the cut");
  }

  @Test
  void cutsWhenTheJsonBytesAreReached() {
    builder.add(Chunks.of(1, 6_000), LIMITS);
    builder.add(Chunks.of(1, 4_000), LIMITS);
    assertEquals(1, cut.size());
    assertEquals(2, cut.get(0).metrics);
  }

  @Test
  void aWholeChunkGoesAloneAfterWhatWasPending() {
    MetricChunk a = Chunks.of(3, 100);
    builder.add(a, LIMITS);
    MetricChunk w = MetricChunk.whole(new byte[] {0x78, 1}, 10, 1000, null);
    builder.add(w, LIMITS);
    assertEquals(2, cut.size(), "what waited, then the whole chunk alone");
    assertEquals(List.of(a), cut.get(0).chunks);
    assertEquals(List.of(w), cut.get(1).chunks);
    assertEquals(1000, cut.get(1).metrics);
    assertTrue(builder.isEmpty());
    assertEquals(0, timers.pending(), "nothing lingers");
    builder.add(w, LIMITS);
    assertEquals(3, cut.size(), "alone with nothing pending too");
  }

  @Test
  void cutsWhatLingeredOnceItsFirstChunkWaitedTheLinger() {
    builder.add(Chunks.of(1, 10), LIMITS);
    timers.advance(30);
    builder.add(Chunks.of(1, 10), LIMITS);
    timers.advance(19);
    assertEquals(0, cut.size());
    timers.advance(1);
    assertEquals(1, cut.size(), "50 ms after the first chunk, not after the last");
    assertEquals(2, cut.get(0).metrics);
    // The next chunk starts a new linger.
    builder.add(Chunks.of(3, 10), LIMITS);
    timers.advance(50);
    assertEquals(2, cut.size());
    assertEquals(3, cut.get(1).metrics);
  }

  @Test
  void takeAllEmptiesWithoutCuttingAndStopsTheLinger() {
    MetricChunk a = Chunks.of(1, 10);
    MetricChunk b = Chunks.of(2, 10);
    builder.add(a, LIMITS);
    builder.add(b, LIMITS);
    assertEquals(List.of(a, b), builder.takeAll());
    timers.advance(1_000);
    assertEquals(0, cut.size());
    builder.cut();
    assertEquals(0, cut.size(), "nothing pending: no empty batch");
  }

  @Test
  void eachBatchHasItsOwnSplitBudget() {
    builder.add(Chunks.of(100, 10), LIMITS);
    builder.add(Chunks.of(100, 10), LIMITS);
    assertEquals(2, cut.size());
    cut.get(0).splitBudget[0] = 0;
    assertEquals(Batch.SPLIT_POSTS, cut.get(1).splitBudget[0]);
  }
}
