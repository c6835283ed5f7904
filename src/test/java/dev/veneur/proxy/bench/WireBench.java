package dev.veneur.proxy.bench;

import dev.veneur.proxy.config.IgnoreTags;
import dev.veneur.proxy.routing.V14Key;
import dev.veneur.proxy.wire.Bridge;
import dev.veneur.proxy.wire.MetricPb;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;
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
 * The per-list costs of reading v14's protobuf as bytes, on a real v14.2.0 grpc-single MetricList
 * (the 1,650-metric one from {@code ../shared}, else the 55-metric copy in test resources):
 * finding and checking every metric ({@code scan}), that plus its ring key ({@code scanAndKey}),
 * and translating every metric to v2's JSON ({@code toJson}, the gRPC-to-JSON bridge). Divide by
 * {@link #metrics} for the cost per metric, beside {@link HotPathBench}'s JSON figures. Run with
 * {@code scripts/jmh WireBench}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class WireBench {
  private byte[] list;
  public int metrics;
  private final MetricPb.Fields fields = new MetricPb.Fields();
  private final dev.veneur.proxy.routing.V14Key.Hasher hasher = new dev.veneur.proxy.routing.V14Key.Hasher();
  private final ByteArrayOutputStream out = new ByteArrayOutputStream(1 << 20);
  private final IgnoreTags ignore = IgnoreTags.of(List.of(new IgnoreTags.Rule("prefix", "host:")));

  @Setup
  public void load() throws Exception {
    Path large = Path.of("../shared/fixtures/veneur-v14.2.0/grpc-single-large.pb");
    list = Files.readAllBytes(Files.exists(large) ? large
        : Path.of("src/test/resources/fixtures/veneur-v14.2.0/grpc-single-small.pb"));
    MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
    while (r.next()) metrics++;
    System.out.println("WireBench: " + metrics + " metrics, " + list.length + " bytes a list");
  }

  @Benchmark
  public int scan() {
    MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
    int ok = 0;
    while (r.next()) if (MetricPb.scan(list, r.metricOff, r.metricLen, fields)) ok++;
    return ok;
  }

  @Benchmark
  public int scanAndKey() {
    MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
    int h = 0;
    while (r.next()) {
      if (MetricPb.scan(list, r.metricOff, r.metricLen, fields)) h ^= hasher.hash(list, fields, IgnoreTags.NONE);
    }
    return h;
  }

  @Benchmark
  public int scanAndKeyIgnoringHostTags() {
    MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
    int h = 0;
    while (r.next()) {
      if (MetricPb.scan(list, r.metricOff, r.metricLen, fields)) h ^= hasher.hash(list, fields, ignore);
    }
    return h;
  }

  @Benchmark
  public int toJson() {
    out.reset();
    MetricPb.ListReader r = new MetricPb.ListReader(list, 0, list.length);
    while (r.next()) {
      if (MetricPb.scan(list, r.metricOff, r.metricLen, fields)) Bridge.toJson(list, fields, out);
    }
    return out.size();
  }
}
