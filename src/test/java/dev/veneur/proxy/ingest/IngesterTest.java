package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.routing.Owners;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The Ingester on its own, with an executor the test drains, so its slices can be counted. */
class IngesterTest {
  private final ArrayDeque<Runnable> later = new ArrayDeque<>();
  private final MemoryBudget budget = new MemoryBudget(() -> 1L << 30);
  private final Ingester ingester = new Ingester(later::add, budget, new FixedLimits(8 << 20, 8 << 20, 1));

  private Ingester.Result result;
  private ImportRefusal refusal;

  /** Submits a body arriving in network-sized pieces; returns how many slices it took. */
  private int run(byte[] body, int piece) {
    List<ByteBuffer> parts = new ArrayList<>();
    for (int i = 0; i < body.length; i += piece) parts.add(ByteBuffer.wrap(body, i, Math.min(piece, body.length - i)).slice());
    ingester.submit(new Ingester.Task() {
      @Override
      public void open(BodySource source) {
        source.open(null, parts, 64 << 20);
      }

      @Override
      public Owners router() {
        return new Owners() {
          @Override
          public int ways() {
            return 1;
          }

          @Override
          public int slot(int index, int keyHash) {
            return 0;
          }
        };
      }

      @Override
      public dev.veneur.proxy.bus.RequestTrace trace() {
        return null;
      }

      @Override
      public void done(Ingester.Result r) {
        result = r;
      }

      @Override
      public void failed(ImportRefusal r) {
        refusal = r;
      }
    });
    int slices = 0;
    Runnable r;
    while ((r = later.poll()) != null) {
      r.run();
      slices++;
    }
    return slices;
  }

  @Test
  void oneHugeMetricInSmallPiecesCostsItsSizeNotItsSizeSquaredAndYields() {
    // One 4 MB metric (an unknown field with a long array) sent as 8 KB network reads.
    StringBuilder sb = new StringBuilder("[{\"name\":\"huge\",\"type\":\"counter\",\"value\":\"BQAAAAAAAAA=\",\"x\":[1");
    while (sb.length() < 4 << 20) sb.append(",1");
    sb.append("]}]");
    byte[] body = sb.toString().getBytes(StandardCharsets.US_ASCII);
    int slices = run(body, 8192);
    assertNotNull(result, "decoded: " + refusal);
    assertEquals(1, result.valid);
    // Scanned again from its start only as the window doubles (256 KB .. 8 MB): ~16 MB in all,
    // in slices of 512 KB. Refilled 8 KB at a time, it would be hundreds of slices and 1 GB.
    assertTrue(slices > 4 && slices < 64, "slices: " + slices);
    MetricChunk c = result.chunks[0];
    assertEquals(body.length - 2, c.rawLength);
    budget.release(c.bytes());
    assertEquals(0, budget.used(), "window and scratch given back");
  }

  @Test
  void aBodyIsWorkedInSlicesSoOtherEventsInterleave() {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < 20_000; i++) {
      if (i > 0) sb.append(',');
      sb.append("{\"name\":\"m").append(i).append("\",\"type\":\"counter\",\"tagstring\":\"a:b\",\"value\":\"BQAAAAAAAAA=\"}");
    }
    byte[] body = sb.append(']').toString().getBytes(StandardCharsets.US_ASCII);
    int slices = run(body, 65536);
    assertEquals(20_000, result.valid);
    assertTrue(slices >= body.length / (512 * 1024), "yielded between slices: " + slices);
    budget.release(result.chunks[0].bytes());
    assertEquals(0, budget.used());
  }

  @Test
  void aMetricWithATypeButNoNameIsForwardedAndOneWithoutATypeDropped() {
    byte[] body = ("[{\"name\":\"\",\"type\":\"counter\",\"value\":\"AQAAAAAAAAA=\"},"
        + "{\"type\":\"gauge\",\"value\":\"AAAAAAAA8D8=\"},"
        + "{\"name\":\"n\",\"value\":\"AQAAAAAAAAA=\"}]").getBytes(StandardCharsets.US_ASCII);
    run(body, 8192);
    assertNotNull(result, "decoded: " + refusal);
    assertEquals(2, result.valid, "the nameless metrics are kept");
    assertEquals(1, result.incomplete, "the typeless one is not");
    MetricChunk c = result.chunks[0];
    assertEquals(2, c.count);
    budget.release(c.bytes());
  }
}
