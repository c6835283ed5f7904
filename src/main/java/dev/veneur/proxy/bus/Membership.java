package dev.veneur.proxy.bus;

import java.util.List;

/**
 * The complete set of ring members as a discovery source sees it now. Always the whole set, so a
 * lost or reordered message cannot leave the ring wrong for longer than one refresh.
 *
 * @param source who says so ("static", "consul:&lt;service&gt;")
 * @param members destinations as the Go ring names them, {@code http://host:port} ({@code host:port}
 *     for gRPC globals)
 * @param grpcRing for the ring of gRPC globals (Veneur v14.2.0's second ring), else the HTTP one
 */
public record Membership(String source, List<String> members, boolean grpcRing) {
  /**
   * The source of an empty set saying the config has no such ring (any more): the ring is
   * emptied and its forwarders retired, which an empty set from discovery never does.
   */
  public static final String UNCONFIGURED = "unconfigured";
  /**
   * Prefix of the source of an empty set a discovery source vouches for: the name it watches is
   * gone (DNS: {@code NXDOMAIN}, or no record, twice in a row). The ring is emptied as for
   * {@link #UNCONFIGURED}; any other empty set keeps the last good ring.
   */
  public static final String GONE = "gone:";

  /** {@code source} says its globals are gone: the ring empties. */
  public static Membership gone(String source, boolean grpcRing) {
    return new Membership(GONE + source, List.of(), grpcRing);
  }

  /** Whether this set empties its ring. */
  public boolean empties() {
    return UNCONFIGURED.equals(source) || source.startsWith(GONE);
  }

  public Membership {
    members = List.copyOf(members);
  }

  /** For the ring of HTTP globals. */
  public Membership(String source, List<String> members) {
    this(source, members, false);
  }
}
