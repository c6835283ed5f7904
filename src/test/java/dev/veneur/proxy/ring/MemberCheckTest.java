package dev.veneur.proxy.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** A member set's bad members are left out alone, counted by source and cause. */
class MemberCheckTest {
  final ProxyMetrics metrics = new ProxyMetrics();
  final MemberCheck check = new MemberCheck(metrics, new LogThrottle(LoggerFactory.getLogger(MemberCheckTest.class), 60_000));

  long invalid(String source, String cause) {
    return metrics.registry().counter(ProxyMetrics.withTags(MemberCheck.INVALID_MEMBERS, "source:" + source,
        "cause:" + cause)).getCount();
  }

  @Test
  void aBadMemberCostsOnlyItself() {
    List<String> ok = check.usable(new Membership("consul", List.of("http://10.0.0.1:8127", "ftp://x:1",
        "http://10.0.0.2:8127", "10.0.0.3:8128", "http://\u0000evil:1")));
    assertEquals(List.of("http://10.0.0.1:8127", "http://10.0.0.2:8127"), ok);
    assertEquals(2, invalid("consul", "scheme"), "ftp://, and host:port, which is for the ring of gRPC globals");
    long all = metrics.registry().getCounters().entrySet().stream()
        .filter(e -> e.getKey().startsWith(MemberCheck.INVALID_MEMBERS + "#source:consul,"))
        .mapToLong(e -> e.getValue().getCount()).sum();
    assertEquals(3, all, "the control character counted under a cause of its own: " + metrics.registry().getCounters().keySet());
  }

  @Test
  void theGrpcRingTakesHostPortOnly() {
    List<String> ok = check.usable(new Membership("static", List.of("10.0.0.3:8128", "http://10.0.0.1:8127"), true));
    assertEquals(List.of("10.0.0.3:8128"), ok);
    assertEquals(1, invalid("static", "scheme"));
  }
}
