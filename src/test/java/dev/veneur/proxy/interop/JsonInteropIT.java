package dev.veneur.proxy.interop;


import dev.veneur.proxy.routing.HashRing;
import dev.veneur.proxy.support.VeneurProcess;
import dev.veneur.proxy.support.VeneurProcess.Version;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Stripe's own Veneur binaries ({@code ../shared/veneur/}) around this proxy, over the protocol it
 * speaks today, JSON {@code POST /import}: real locals fed known statsd traffic over UDP forward
 * to a real proxy process, which forwards to real globals; what the globals flush to a Datadog
 * stand-in must be exactly what the traffic implies (counter sums, gauges, set cardinality,
 * histogram and timer percentiles), each series on the global the proxy's ring places it, and the
 * proxy must have received and forwarded every metric the locals sent, dropping none.
 *
 * <p>Skipped, with the reason, where the binaries are absent.
 */
class JsonInteropIT {

  @Test
  void v2LocalThroughTheProxyToAV2Global(@TempDir Path dir) throws Exception {
    VeneurProcess.assumeAvailable(Version.V2_0_0);
    try (Fleet f = Fleet.start("v2-v2", dir)) {
      f.global(Version.V2_0_0, "global-v2");
      f.proxy();
      f.local(Version.V2_0_0, "local-v2", null);
      Traffic t = new Traffic();
      t.standard("local-v2", "v2");
      f.run(t);
    }
  }

  @Test
  void v14JsonLocalThroughTheProxyToAV14Global(@TempDir Path dir) throws Exception {
    VeneurProcess.assumeAvailable(Version.V14_2_0);
    try (Fleet f = Fleet.start("v14-v14", dir)) {
      f.global(Version.V14_2_0, "global-v14");
      f.proxy();
      f.local(Version.V14_2_0, "local-v14", "json");
      Traffic t = new Traffic();
      t.standard("local-v14", "v14");
      f.run(t);
    }
  }

  /**
   * A v2.0.0 local and a v14.2.0 local (json) through one proxy to a ring of a v2.0.0 and a
   * v14.2.0 global. Each local's usual load is sent twice, once under names the ring places on
   * each global, so every generation of local reaches every generation of global whatever ports
   * the run was given; and three series come from both locals and merge at their global: a
   * counter (sums add), a set (overlapping members unite) and a histogram (digests merge).
   */
  @Test
  void mixedLocalsThroughTheProxyToARingOfAV2AndAV14Global(@TempDir Path dir) throws Exception {
    VeneurProcess.assumeAvailable(Version.V2_0_0, Version.V14_2_0);
    try (Fleet f = Fleet.start("mixed", dir)) {
      VeneurProcess g2 = f.global(Version.V2_0_0, "global-v2");
      VeneurProcess g14 = f.global(Version.V14_2_0, "global-v14");
      f.proxy();
      f.local(Version.V2_0_0, "local-v2", null);
      f.local(Version.V14_2_0, "local-v14", "json");
      HashRing ring = f.ring();
      Traffic t = new Traffic();
      for (VeneurProcess g : List.of(g2, g14)) {
        t.placeOn(ring, g.httpUrl());
        t.standard("local-v2", "v2to" + g.hostname);
        t.standard("local-v14", "v14to" + g.hostname);
      }
      t.placeAnywhere();
      for (String local : List.of("local-v2", "local-v14")) {
        t.counter(local, "both.requests", List.of("shard:a"), Traffic.range(1, 20));
        t.histogram(local, "both.latency", Traffic.Kind.HISTOGRAM, Traffic.doubles(1, 200, 1));
      }
      t.set("local-v2", "both.users", Traffic.members("u", 0, 150), 1);
      t.set("local-v14", "both.users", Traffic.members("u", 50, 200), 1);
      f.run(t);
    }
  }
}
