package dev.veneur.proxy.ring;

import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.config.LogText;
import dev.veneur.proxy.config.MemberAddress;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import java.util.ArrayList;
import java.util.List;

/**
 * Every member of a set checked on its own ({@link MemberAddress}), whatever its source: one that
 * cannot be a destination (or is of the other ring's kind: a URL on the gRPC ring, {@code host:port}
 * on the HTTP ring) is left out, counted ({@code discoverer.invalid_members{source,cause}}) and
 * logged (escaped, once a minute per source and cause), and never takes the others with it.
 */
final class MemberCheck {
  static final String INVALID_MEMBERS = "discoverer.invalid_members";

  private final ProxyMetrics metrics;
  private final LogThrottle logs;

  MemberCheck(ProxyMetrics metrics, LogThrottle logs) {
    this.metrics = metrics;
    this.logs = logs;
  }

  /** The members of {@code m} that can be destinations of its ring, in its order. */
  List<String> usable(Membership m) {
    List<String> ok = new ArrayList<>(m.members().size());
    for (String member : m.members()) {
      MemberAddress.Checked c = MemberAddress.url(member);
      if (c.ok() && MemberAddress.isGrpc(member) != m.grpcRing()) {
        c = new MemberAddress.Checked(null, "scheme", m.grpcRing()
            ? "is not host:port (the ring of gRPC globals)" : "is not an http:// or https:// URL", null);
      }
      if (c.ok()) {
        ok.add(member);
        continue;
      }
      metrics.registry().counter(ProxyMetrics.withTags(INVALID_MEMBERS, "source:" + m.source(), "cause:" + c.cause()))
          .inc();
      logs.warn(m.source() + "/" + c.cause(), "skipping member " + LogText.escape(member) + " from "
          + LogText.escape(m.source()) + ": it " + c.reason());
    }
    return ok;
  }
}
