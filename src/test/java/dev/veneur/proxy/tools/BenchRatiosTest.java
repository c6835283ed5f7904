package dev.veneur.proxy.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The bench's run-by-run ratios: each Go run against the same-numbered run of the other proxy. */
class BenchRatiosTest {
  private static final Bench.Cell GO = new Bench.Cell(false, 3, 8, "go", false, false);
  private static final Bench.Cell JAR = new Bench.Cell(false, 3, 8, "jar", false, false);
  private static final Bench.Cell OTHER = new Bench.Cell(false, 1, 8, "jar", false, false);

  private static Bench.Result run(Bench.Cell cell, int run, double cpuPerM, String error) {
    return new Bench.Result(cell, run, error, 1, 1, cpuPerM, cpuPerM, 1, 1, 1, 0, 0, 1, false, 1, 1, 1, 1, 1, 1,
        Double.NaN, "", Double.NaN, Double.NaN, 0, Double.NaN, Double.NaN);
  }

  @Test
  void pairsRunsByTheirNumberNotByTheirOrder() {
    List<Bench.Result> results = List.of(
        run(JAR, 2, 2.0, null), run(GO, 1, 15.0, null), run(JAR, 1, 1.5, null), run(OTHER, 2, 0.5, null),
        run(GO, 2, 14.0, null), run(GO, 3, 12.0, null), run(JAR, 3, 1.25, null));
    assertEquals("; run by run 10.0x, 7.0x, 9.6x", Bench.pairedRatios(results, GO, JAR));
  }

  @Test
  void leavesOutFailedRunsAndRunsWithoutAPartner() {
    List<Bench.Result> results = List.of(
        run(GO, 1, 15.0, null), run(JAR, 1, 1.5, null),
        run(GO, 2, 14.0, null), run(JAR, 2, 2.0, "proxy did not start"),
        run(GO, 3, 12.0, null),
        run(GO, 4, 13.0, null), run(JAR, 4, 1.3, null));
    assertEquals("; run by run 10.0x, 10.0x", Bench.pairedRatios(results, GO, JAR));
  }

  @Test
  void saysNothingWithFewerThanTwoPairs() {
    assertEquals("", Bench.pairedRatios(List.of(run(GO, 1, 15.0, null), run(JAR, 1, 1.5, null)), GO, JAR));
    assertEquals("", Bench.pairedRatios(List.of(run(GO, 1, 15.0, null), run(OTHER, 1, 1.5, null)), GO, JAR));
  }
}
