package dev.veneur.proxy.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;

/**
 * The ingest hot path's CPU time per 1000-metric body, one body at a time ({@link
 * HotPathBench#ingestBody}) against bodies queued together and merged ({@link
 * HotPathBench#ingestQueuedBodies}), for 3 and 100 destinations. Thread CPU time, not wall time, so
 * a machine shared with other work still gives comparable figures (issue 21). Run:
 * {@code java -cp "$(scripts/tools-classpath)" dev.veneur.proxy.bench.IngestCpu [rounds]}.
 */
public final class IngestCpu {
  private IngestCpu() {}

  public static void main(String[] args) throws Exception {
    ThreadMXBean tm = ManagementFactory.getThreadMXBean();
    int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 9;
    for (int ways : new int[] {3, 100}) {
      HotPathBench b = new HotPathBench();
      b.level = 1;
      b.ways = ways;
      b.queued = 4;
      b.setup();
      for (int w = 0; w < 200; w++) {
        b.ingestBody();
        b.ingestQueuedBodies();
      }
      long[] one = new long[rounds];
      long[] merged = new long[rounds];
      for (int r = 0; r < rounds; r++) {
        long t0 = tm.getCurrentThreadCpuTime();
        for (int i = 0; i < 40; i++) b.ingestBody();
        long t1 = tm.getCurrentThreadCpuTime();
        for (int i = 0; i < 10; i++) b.ingestQueuedBodies();
        long t2 = tm.getCurrentThreadCpuTime();
        one[r] = (t1 - t0) / 40;
        merged[r] = (t2 - t1) / (10L * b.queued);
      }
      Arrays.sort(one);
      Arrays.sort(merged);
      System.out.printf("%d destinations: one body at a time %.0f us CPU per body [%.0f-%.0f]; %d queued"
              + " and merged %.0f us [%.0f-%.0f] (medians of %d rounds [min-max])%n",
          ways, one[rounds / 2] / 1e3, one[0] / 1e3, one[rounds - 1] / 1e3, b.queued,
          merged[rounds / 2] / 1e3, merged[0] / 1e3, merged[rounds - 1] / 1e3, rounds);
      b.teardown();
    }
    System.exit(0);
  }
}
