package dev.veneur.proxy.bus;

/** Every event-bus address the proxy uses, in one place. All are local-only. */
public final class Addresses {
  private Addresses() {}

  /** Discovery to ring: a {@link Membership}, the full member set (never a delta). */
  public static final String RING_MEMBERS = "veneur.ring.members";
  /** Ring to importers (publish): each new immutable {@code routing.HashRing}. */
  public static final String RING_SNAPSHOT = "veneur.ring.snapshot";
  /** Request the current {@code routing.HashRing}; used by importers when they start. */
  public static final String RING_CURRENT = "veneur.ring.current";
  /** Request a {@link RouteQuery}; the reply is the destination string, or a failure on an empty ring. */
  public static final String RING_ROUTE = "veneur.ring.route";
  /**
   * A {@code routing.Handoff}: a chunk whose destination is gone or out of the ring. The ring verticle
   * takes it first and attaches its current ring (the truth about which forwarders exist), then
   * passes it to {@link #INGEST_REROUTE}.
   */
  public static final String RING_REROUTE = "veneur.ring.reroute";
  /**
   * A {@code routing.Handoff} with the ring to split it on; any HTTP verticle takes it (point to point),
   * since splitting means inflating, scanning and deflating again, the bytes work they do.
   */
  public static final String INGEST_REROUTE = "veneur.ingest.reroute";
  /** A {@link MetricChunk} to split in two halves by position; the reply is a {@link Halves}. */
  public static final String INGEST_SPLIT = "veneur.ingest.split";
  /**
   * How long an {@link #INGEST_SPLIT} request may take: generous, since a split waits its turn
   * behind the HTTP verticle's other bytes work, and an expired one costs the batch.
   */
  public static final long SPLIT_TIMEOUT_MS = 60_000;

  /** Request the ring's state as JSON (members, ejected members) for {@code /debug/state}. */
  public static final String RING_STATE = "veneur.ring.state";

  /** The config's ring keys changed ({@code ignore_tags}): the ring verticle rebuilds its rings. */
  public static final String RING_REKEY = "veneur.ring.rekey";

  /** Forwarder to ring: a {@link Health} report; the reply is an {@link Exclusion}. */
  public static final String RING_HEALTH = "veneur.ring.health";

  private static final String FORWARD_PREFIX = "veneur.forward.";
  private static final String CONTROL_PREFIX = "veneur.forward.control.";

  /** Ring to one forwarder: {@link Exclusion} updates. */
  public static String forwarderControl(String destination) {
    return CONTROL_PREFIX + destination;
  }

  /** Where the forwarder of one destination takes {@link MetricChunk}s. */
  public static String forwarder(String destination) {
    return FORWARD_PREFIX + destination;
  }
}
