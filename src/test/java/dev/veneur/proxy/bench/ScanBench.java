package dev.veneur.proxy.bench;

import dev.veneur.proxy.ingest.GoJsonScanner;
import dev.veneur.proxy.tools.SyntheticMetrics;
import io.vertx.core.json.JsonArray;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The scanner alone: one inflated 1000-metric body (real Veneur output, as {@link HotPathBench}
 * uses) read from '[' to ']' with Go's rules, every metric's span, verdict and key hash found, no
 * routing or deflate. What the ingest hot path spends on JSON before any byte is compressed (issue
 * 19: "scanning ~20%"). {@code scripts/jmh ScanBench}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class ScanBench {
  private byte[] json;
  private final GoJsonScanner scanner = new GoJsonScanner(1 << 20);

  @Setup
  public void setup() throws Exception {
    JsonArray sample = new JsonArray(Files.readString(Path.of("src/test/resources/fixtures/captured/large.json")));
    json = SyntheticMetrics.fromSample(sample, 1000, 1);
    if (scanBody() != 1000) throw new IllegalStateException("the sample body does not scan to 1000 valid metrics");
  }

  /** Valid metrics in the body (1000): returned so the work cannot be optimised away. */
  @Benchmark
  public int scanBody() {
    scanner.reset();
    int pos = 0;
    int valid = 0;
    int hashes = 0;
    while (true) {
      int step = scanner.next(json, pos, json.length, true);
      if (step != GoJsonScanner.METRIC) break;
      if (scanner.verdict == GoJsonScanner.VALID) valid++;
      hashes ^= scanner.keyHash;
      pos = scanner.end;
    }
    return valid + (hashes & 0);
  }
}
