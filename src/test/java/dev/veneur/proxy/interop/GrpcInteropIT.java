package dev.veneur.proxy.interop;


import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.support.VeneurProcess;
import dev.veneur.proxy.support.VeneurProcess.Version;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real Veneur v14.2.0 locals forwarding by gRPC ({@code grpc-single}: one {@code SendMetrics} per
 * flush; {@code grpc-stream}: one {@code SendMetricsV2} stream per flush) to this proxy's
 * {@code grpc_address}, which forwards by JSON {@code /import} to real globals (v14.2.0 and
 * v2.0.0); what the globals flush to a Datadog stand-in must be exactly what the statsd traffic
 * implies, and the proxy must account for every metric. Skipped, with the reason, where the
 * binaries are absent.
 */
class GrpcInteropIT {

  private static void through(Path dir, String name, String protocol, Version globalVersion) throws Exception {
    through(dir, name, protocol, globalVersion, false, 1);
  }

  /**
   * A v14.2.0 local forwarding by {@code protocol} ({@code json}, {@code grpc-single},
   * {@code grpc-stream}) through the proxy to {@code globals} globals of {@code globalVersion},
   * reached by gRPC when {@code grpcOut} (v14 only), else by JSON {@code /import}.
   */
  private static void through(Path dir, String name, String protocol, Version globalVersion, boolean grpcOut,
      int globals) throws Exception {
    VeneurProcess.assumeAvailable(Version.V14_2_0, globalVersion);
    try (Fleet f = Fleet.start(name, dir)) {
      for (int i = 0; i < globals; i++) f.global(globalVersion, "global-" + i);
      f.grpcEgress = grpcOut;
      int grpcPort = TestProxy.freePort();
      f.proxy("grpc_address: \"127.0.0.1:" + grpcPort + "\"");
      f.local(Version.V14_2_0, "local-v14", protocol,
          protocol.equals("json") ? "http://127.0.0.1:" + f.proxyPort : "127.0.0.1:" + grpcPort);
      Traffic t = new Traffic();
      t.standard("local-v14", "g");
      // Protobuf end to end (spliced): a global-scope histogram and timer keep their scope.
      if (grpcOut && !protocol.equals("json")) {
        t.globalHistogram("local-v14", "g.global_latency", Traffic.Kind.HISTOGRAM, Traffic.doubles(1, 100, 1));
        t.globalHistogram("local-v14", "g.global_db", Traffic.Kind.TIMER, Traffic.doubles(5, 500, 5));
      }
      f.run(t);
    }
  }

  @Test
  void grpcSingleLocalThroughTheProxyToAV14Global(@TempDir Path dir) throws Exception {
    through(dir, "grpc-single-v14", "grpc-single", Version.V14_2_0);
  }

  @Test
  void grpcStreamLocalThroughTheProxyToAV14Global(@TempDir Path dir) throws Exception {
    through(dir, "grpc-stream-v14", "grpc-stream", Version.V14_2_0);
  }

  /**
   * gRPC in, gRPC out to one v14.2.0 global: the proxy forwards each of the local's MetricLists as
   * it came (issue 19), and the global must read every series, scope included, as the local sent it.
   */
  @Test
  void grpcSingleLocalThroughTheProxyToOneV14GlobalByGrpc(@TempDir Path dir) throws Exception {
    through(dir, "grpc-single-grpc-one-v14", "grpc-single", Version.V14_2_0, true, 1);
  }

  /** gRPC in, gRPC out: two v14.2.0 globals reached by SendMetrics, each series on its v14 owner. */
  @Test
  void grpcSingleLocalThroughTheProxyToV14GlobalsByGrpc(@TempDir Path dir) throws Exception {
    through(dir, "grpc-single-grpc-v14", "grpc-single", Version.V14_2_0, true, 2);
  }

  @Test
  void grpcStreamLocalThroughTheProxyToV14GlobalsByGrpc(@TempDir Path dir) throws Exception {
    through(dir, "grpc-stream-grpc-v14", "grpc-stream", Version.V14_2_0, true, 2);
  }

  /** The bridge the other way: a v14 local's JSON reaches v14.2.0 globals by gRPC. */
  @Test
  void jsonLocalThroughTheProxyToV14GlobalsByGrpc(@TempDir Path dir) throws Exception {
    through(dir, "json-grpc-v14", "json", Version.V14_2_0, true, 2);
  }

  /**
   * The whole bridge at once: a v2.0.0 local (JSON), and v14.2.0 locals by {@code json},
   * {@code grpc-single} and {@code grpc-stream}, through one proxy to two v14.2.0 globals reached by
   * gRPC. Each local's own series land where v14 places them, and series all four send to share a
   * counter (sums add), a set (members unite) and a histogram (digests merge); the two gRPC locals
   * share a global-scope histogram, whose min, max and count the global flushes over both.
   */
  @Test
  void everyLocalInEveryProtocolToV14GlobalsByGrpc(@TempDir Path dir) throws Exception {
    VeneurProcess.assumeAvailable(Version.V2_0_0, Version.V14_2_0);
    try (Fleet f = Fleet.start("bridge-all", dir)) {
      f.global(Version.V14_2_0, "global-0");
      f.global(Version.V14_2_0, "global-1");
      f.grpcEgress = true;
      int grpcPort = TestProxy.freePort();
      f.proxy("grpc_address: \"127.0.0.1:" + grpcPort + "\"");
      f.local(Version.V2_0_0, "local-v2", null);
      f.local(Version.V14_2_0, "local-json", "json");
      f.local(Version.V14_2_0, "local-single", "grpc-single", "127.0.0.1:" + grpcPort);
      f.local(Version.V14_2_0, "local-stream", "grpc-stream", "127.0.0.1:" + grpcPort);
      List<String> locals = List.of("local-v2", "local-json", "local-single", "local-stream");
      Traffic t = new Traffic();
      for (String l : locals) t.standard(l, l.replace("local-", ""));
      for (String l : locals) {
        t.counter(l, "all.requests", List.of("shard:a"), Traffic.range(1, 20));
        t.histogram(l, "all.latency", Traffic.Kind.HISTOGRAM, Traffic.doubles(1, 200, 1));
      }
      // A global-scope histogram from both gRPC locals: one digest at its global, min/max/count over both.
      t.globalHistogram("local-single", "all.global_latency", Traffic.Kind.HISTOGRAM, Traffic.doubles(1, 100, 1));
      t.globalHistogram("local-stream", "all.global_latency", Traffic.Kind.HISTOGRAM, Traffic.doubles(101, 300, 1));
      t.set("local-v2", "all.users", Traffic.members("u", 0, 100), 1);
      t.set("local-json", "all.users", Traffic.members("u", 50, 150), 1);
      t.set("local-single", "all.users", Traffic.members("u", 100, 200), 1);
      t.set("local-stream", "all.users", Traffic.members("u", 150, 250), 1);
      f.run(t);
    }
  }

  /** The bridge: a v14 local's gRPC reaches a v2.0.0 global as the JSON (and gob digests) v2 reads. */
  @Test
  void grpcSingleLocalThroughTheProxyToAV2Global(@TempDir Path dir) throws Exception {
    through(dir, "grpc-single-v2", "grpc-single", Version.V2_0_0);
  }
}
