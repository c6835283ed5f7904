package dev.veneur.proxy.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.support.VeneurProcess;
import dev.veneur.proxy.support.VeneurProcess.Version;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
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
class GrpcInteropTest {

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
      f.send(t);
      f.awaitFlushed(t);
      List<String> problems = new ArrayList<>(f.check(t));
      problems.addAll(f.checkProxy(t.forwardedByAll()));
      ProxyProcess p = f.proxy;
      System.out.println("interop " + f.name + ":\n  " + String.join("\n  ", f.figures)
          + "\n  Veneur complaints: " + f.complaints());
      assertTrue(problems.isEmpty(), "interop " + f.name + ":\n  " + String.join("\n  ", problems)
          + "\nVeneur complaints: " + f.complaints() + "\nproxy log:\n" + p.log());
      assertTrue(f.complaints().isEmpty(), "Veneur servers complained: " + f.complaints());
      assertEquals(0, p.terminate(Duration.ofSeconds(30)), p.log());
      ProxyProcess.StopSummary stop = p.stopSummary();
      assertTrue(stop != null && stop.received() == t.forwardedByAll() && stop.forwarded() == stop.received()
          && stop.dropped() == 0, "the proxy's last words: " + (stop == null ? p.log() : stop.line()));
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

  /** The bridge: a v14 local's gRPC reaches a v2.0.0 global as the JSON (and gob digests) v2 reads. */
  @Test
  void grpcSingleLocalThroughTheProxyToAV2Global(@TempDir Path dir) throws Exception {
    through(dir, "grpc-single-v2", "grpc-single", Version.V2_0_0);
  }
}
