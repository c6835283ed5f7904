package dev.veneur.proxy.core;

import io.vertx.core.json.JsonObject;

/**
 * How the process's file descriptors ({@code ulimit -n}) are shared out. Outbound connections to
 * the globals need up to {@code globals × max_idle_conns_per_host} (each forwarder's pool), the JVM
 * and the proxy's own files and sockets a reserve, and what is left is the most connections
 * {@code /import} may accept: {@code http_max_connections} is lowered to it, so an inbound flood
 * can never take the descriptors a forwarder needs to reach its global (a connection that cannot
 * be opened fails the POST, and enough of them eject a healthy global).
 *
 * <p>Recomputed at start and on every membership change (each global brings its pool) and reload.
 * Immutable; {@link #of} is pure, so the arithmetic is tested without a process.
 */
public record Descriptors(long nofile, int configuredCap, int globals, int perHost, int reserve,
    int inboundCap) {

  /**
   * Descriptors the proxy uses besides connections: measured 70–90 for an idle proxy with 20
   * globals on 2 cores (jar and JDK files, selectors and their wake-up pipes, listeners, the
   * Consul and StatsD clients, JFR, spill segments), plus room for connections accepted past the
   * cap, each of which holds a descriptor until the event loop that received it closes it; a burst
   * of 950 connections against a lowered cap was measured to need it.
   */
  public static final int BASE_RESERVE = 192;
  /** Never fewer than this many inbound connections, even when the limit cannot afford them. */
  public static final int MIN_INBOUND = 16;

  /** The plan for {@code globals} globals under the process's own limit. */
  public static Descriptors plan(int configuredCap, int globals, int perHost, int adminConnections) {
    return of(processLimit(), configuredCap, globals, perHost, BASE_RESERVE + adminConnections);
  }

  /** The plan for a given limit ({@code nofile} ≤ 0: unknown, nothing is lowered). */
  public static Descriptors of(long nofile, int configuredCap, int globals, int perHost, int reserve) {
    if (nofile <= 0) return new Descriptors(nofile, configuredCap, globals, perHost, reserve, configuredCap);
    long room = nofile - (long) globals * perHost - reserve;
    int cap = (int) Math.max(Math.min(MIN_INBOUND, configuredCap), Math.min(configuredCap, room));
    return new Descriptors(nofile, configuredCap, globals, perHost, reserve, cap);
  }

  /** Descriptors outbound connections may take. */
  public long outbound() {
    return (long) globals * perHost;
  }

  /** What the proxy may need at most: inbound cap, outbound pools and the reserve. */
  public long need() {
    return (long) inboundCap + outbound() + reserve;
  }

  /** The inbound cap is below {@code http_max_connections} for want of descriptors. */
  public boolean lowered() {
    return inboundCap < configuredCap;
  }

  /** Even the minimum inbound cap leaves outbound short: {@code ulimit -n} must be raised. */
  public boolean short_() {
    return nofile > 0 && need() > nofile;
  }

  /** The descriptor limit that would give the full configured cap. */
  public long wanted() {
    return (long) configuredCap + outbound() + reserve;
  }

  /** One line with the numbers, for the WARN when the cap is lowered. */
  public String explain() {
    String base = "file-descriptor limit (ulimit -n) " + nofile + " = inbound cap " + inboundCap + " + "
        + globals + " globals x " + perHost + " connections (max_idle_conns_per_host) + " + reserve
        + " reserve";
    if (short_()) {
      return base.replace(" = ", " < ") + ": too low even with the inbound cap at its minimum; connections to"
          + " globals may fail; raise it to at least " + wanted();
    }
    return "http_max_connections " + configuredCap + " lowered to " + inboundCap + " so that connections to"
        + " globals never run out of descriptors: " + base + "; raise the limit to " + wanted()
        + " for the full cap";
  }

  public JsonObject toJson(int openNow, int perClientCap) {
    return new JsonObject()
        .put("nofile", nofile)
        .put("open", openNow)
        .put("http_max_connections", configuredCap)
        .put("inbound_cap", inboundCap)
        .put("per_client_cap", perClientCap)
        .put("globals", globals)
        .put("per_host", perHost)
        .put("outbound", outbound())
        .put("reserve", reserve)
        .put("need", need())
        .put("lowered", lowered());
  }

  /** The process's descriptor limit, or -1 where the JVM cannot tell. */
  public static long processLimit() {
    var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    if (os instanceof com.sun.management.UnixOperatingSystemMXBean) {
      return ((com.sun.management.UnixOperatingSystemMXBean) os).getMaxFileDescriptorCount();
    }
    return -1;
  }

  /**
   * Descriptors kept free at accept, measured rather than planned. The plan counts connections;
   * the process also holds descriptors the counts cannot see at that instant: a connection its
   * client closed that a busy event loop has not closed yet, a pooled connection to a global being
   * replaced while its successor opens, a jar opened by a class loaded late. With two test suites
   * on 2 cores, a burst of 950 locals against the lowered cap reached 1,024 of 1,024 once ("Too
   * many open files" at accept) though the counted plan was 1,024 with a 208 reserve, while a quiet
   * run of the same peaked at 907. So the accept gate also refuses while fewer than this many
   * descriptors are free by count ({@link #acceptsAt}): the connections to the globals keep room.
   */
  public static final int ACCEPT_HEADROOM = 96;

  /** Whether a connection may be accepted with {@code openNow} descriptors open (-1: unknown, yes). */
  public boolean acceptsAt(int openNow) {
    return nofile <= 0 || openNow < 0 || openNow + ACCEPT_HEADROOM < nofile;
  }

  /**
   * Whether the plan is tight enough against the limit that the descriptors actually open must be
   * counted at accept. Not a function of the connections counted now: a connection counted closed
   * can still hold its descriptor (a channel registered with a selector is really closed only at
   * that event loop's next select, which a starved loop delays), and a burst that follows the
   * close of the one before meets exactly those. With a raised {@code ulimit -n} the count is never
   * taken.
   */
  public boolean tight() {
    return nofile > 0 && need() + 2L * ACCEPT_HEADROOM >= nofile;
  }

  private static final java.util.concurrent.atomic.AtomicLong SAMPLED_AT = new java.util.concurrent.atomic.AtomicLong();
  private static volatile int sampled = -1;

  /** Connections accepted since the last count: each holds a descriptor the count did not see. */
  private static final java.util.concurrent.atomic.AtomicInteger ACCEPTED_SINCE = new java.util.concurrent.atomic.AtomicInteger();

  /**
   * An upper bound of the descriptors open now: a count at most 20 ms old ({@link #openNow()} lists
   * {@code /proc/self/fd}, about 100 µs at a thousand descriptors: too dear for every accept of a
   * burst, cheap every 20 ms) plus every connection accepted since, so a burst of connects between
   * two counts is seen at once. -1 if the count cannot be taken.
   */
  public static int openRecently() {
    long now = System.nanoTime();
    long at = SAMPLED_AT.get();
    if (at == 0 || now - at > 20_000_000L) {
      if (SAMPLED_AT.compareAndSet(at, now)) {
        ACCEPTED_SINCE.set(0);
        sampled = openNow();
      }
    }
    int s = sampled;
    return s < 0 ? -1 : s + ACCEPTED_SINCE.get();
  }

  /** A connection was accepted (it holds a descriptor until closed). */
  public static void accepted() {
    ACCEPTED_SINCE.incrementAndGet();
  }

  /** Descriptors open now, or -1 (also when counting them fails: it needs a descriptor itself). */
  public static int openNow() {
    try {
      var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
      if (os instanceof com.sun.management.UnixOperatingSystemMXBean) {
        return (int) ((com.sun.management.UnixOperatingSystemMXBean) os).getOpenFileDescriptorCount();
      }
    } catch (RuntimeException e) {
      // reported as unknown
    }
    return -1;
  }
}
