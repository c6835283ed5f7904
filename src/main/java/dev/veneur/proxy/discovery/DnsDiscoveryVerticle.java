package dev.veneur.proxy.discovery;

import dev.veneur.proxy.bus.Addresses;
import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.config.LogText;
import dev.veneur.proxy.config.MemberAddress;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.telemetry.LogThrottle;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.dns.DnsClient;
import io.vertx.core.dns.DnsClientOptions;
import io.vertx.core.dns.DnsException;
import io.vertx.core.dns.DnsResponseCode;
import io.vertx.core.dns.SrvRecord;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a ring in step with a DNS name, for a Kubernetes headless Service or any name that lists
 * the globals: a name starting with {@code _} is an SRV query ({@code _http._tcp.veneur-global...}),
 * each target resolved to its addresses and given the record's port; any other name is an A and
 * AAAA query, each address given {@code dns_forward_port}. Members are written as the Consul
 * importer writes them ({@code http://addr:port}, or {@code addr:port} for gRPC globals), so
 * proxies that discover the same globals by either compute the same ring.
 *
 * <p>Re-resolved every {@code dns_refresh_interval}, sooner when an SRV answer's TTL runs out
 * first (never more often than once a second). Queries go to {@code dns_servers} in order (the
 * next is asked when one fails or does not answer), else to the system's resolver, with the Vert.x
 * DNS client: nothing blocks an event loop.
 *
 * <p>Bad days: a {@code SERVFAIL}, a timeout or any other failure keeps the last good ring and
 * counts {@code discoverer.errors}. {@code NXDOMAIN} (or an answer with no usable record) is the
 * name saying its globals are gone: kept for one more interval, in case it is a moment's gap (a
 * Service being replaced), then the ring is emptied. Logged once per episode.
 */
public final class DnsDiscoveryVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(DnsDiscoveryVerticle.class);
  private static final long MIN_DELAY_MS = 1_000;

  private final ProxyContext ctx;
  private final String name;
  private final boolean grpcRing;
  private final boolean srv;
  private final int port;
  private final Duration refresh;
  private final List<String> servers;
  private final List<DnsClient> clients = new ArrayList<>();
  private final LogThrottle memberLogs = new LogThrottle(LOG, 60_000);
  private dev.veneur.proxy.telemetry.EventGauge destinationNumber;
  private long timer = -1;
  private boolean stopped;
  private final TroubleEpisode trouble =
      new TroubleEpisode(LOG, this::discovererErrors, "DNS recovers");
  /** Consecutive answers that said the name has no globals (NXDOMAIN, or no usable record). */
  private int goneAnswers;
  private List<String> published = List.of();

  /**
   * @param name the DNS name; SRV when it starts with {@code _}
   * @param grpcRing for the ring of gRPC globals: members {@code addr:port}
   */
  public DnsDiscoveryVerticle(ProxyContext ctx, String name, boolean grpcRing) {
    this.ctx = ctx;
    this.name = name;
    this.grpcRing = grpcRing;
    this.srv = name.startsWith("_");
    this.port = ctx.config().dnsForwardPort;
    this.refresh = ctx.config().dnsRefreshInterval;
    this.servers = ctx.config().dnsServers;
  }

  @Override
  public Future<?> start() {
    long timeout = Math.max(500, Math.min(5_000, refresh.toMillis() / 2));
    if (servers.isEmpty()) {
      clients.add(vertx.createDnsClient(new DnsClientOptions().setQueryTimeout(timeout)));
    } else {
      for (String s : servers) {
        int colon = s.lastIndexOf(':');
        String host = s.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
        clients.add(vertx.createDnsClient(new DnsClientOptions().setHost(host)
            .setPort(Integer.parseInt(s.substring(colon + 1))).setQueryTimeout(timeout)));
      }
    }
    destinationNumber = ctx.metrics().eventGauge(ProxyMetrics.tagged(ProxyMetrics.DISCOVERER_DESTINATIONS, "service", name));
    LOG.info("discovering {} from DNS {} '{}'{} every {} ({})", grpcRing ? "gRPC globals" : "globals",
        srv ? "SRV" : "A/AAAA", name, srv ? "" : " port " + port, dev.veneur.proxy.config.GoDuration.format(refresh),
        servers.isEmpty() ? "the system's resolver" : "servers " + servers);
    resolve();
    return Future.succeededFuture();
  }

  /** What one resolution found: members (empty when the name has none) and how long they hold. */
  private record Answer(List<String> members, long ttlSeconds, boolean nxdomain, int skipped) {}

  private void resolve() {
    long t0 = System.nanoTime();
    Future<Answer> answer = srv ? resolveSrv() : resolveAddresses();
    answer.onComplete(ar -> {
      if (stopped) return;
      ctx.metrics().registry().timer(ProxyMetrics.tagged("discoverer.update_duration_ns", "service", name))
          .update(System.nanoTime() - t0, TimeUnit.NANOSECONDS);
      long next = refresh.toMillis();
      if (ar.failed()) {
        trouble.failed("DNS query for '" + name + "' failed: " + describe(ar.cause()) + "; keeping the last good ring");
      } else {
        Answer a = ar.result();
        if (a.ttlSeconds() > 0) next = Math.max(MIN_DELAY_MS, Math.min(next, TimeUnit.SECONDS.toMillis(a.ttlSeconds())));
        apply(a);
      }
      timer = vertx.setTimer(next, t -> resolve());
    });
  }

  private void apply(Answer a) {
    if (a.members().isEmpty()) {
      goneAnswers++;
      String why = a.nxdomain() ? "NXDOMAIN" : a.skipped() > 0 ? "no usable record (" + a.skipped()
          + " left out: discoverer.invalid_members)" : "no record";
      if (goneAnswers == 1) {
        trouble.failed("DNS name '" + name + "' answered " + why + "; keeping the last good ring for one more interval");
      } else {
        trouble.failed("DNS name '" + name + "' answered " + why + " again; its globals are gone and the ring empties");
        if (!published.isEmpty()) {
          published = List.of();
          destinationNumber.set(0);
          vertx.eventBus().request(Addresses.RING_MEMBERS, Membership.gone("dns:" + name, grpcRing));
        }
      }
      return;
    }
    goneAnswers = 0;
    if (trouble.recovered()) LOG.info("DNS name '{}' answers again: {} global(s)", name, a.members().size());
    destinationNumber.set(a.members().size());
    if (a.members().equals(published)) return;
    published = a.members();
    vertx.eventBus().request(Addresses.RING_MEMBERS, new Membership("dns:" + name, a.members(), grpcRing));
  }

  // ---------------------------------------------------------------- queries

  /** A and AAAA of {@code name}, each address with {@code dns_forward_port}. */
  private Future<Answer> resolveAddresses() {
    return addresses(name).map(found -> {
      if (found == null) return new Answer(List.of(), 0, true, 0);
      TreeSet<String> members = new TreeSet<>();
      int[] skipped = {0};
      for (String addr : found) member(addr, port, members, skipped);
      return new Answer(List.copyOf(members), 0, false, skipped[0]);
    });
  }

  /** SRV of {@code name}, each target's addresses with the record's port. */
  private Future<Answer> resolveSrv() {
    return ask(c -> c.resolveSRV(name), 0).compose(records -> {
      if (records == null) return Future.succeededFuture(new Answer(List.of(), 0, true, 0));
      long ttl = Long.MAX_VALUE;
      List<Future<List<String>>> targets = new ArrayList<>();
      for (SrvRecord r : records) {
        ttl = Math.min(ttl, r.ttl());
        targets.add(addresses(trimDot(r.target())).recover(e -> Future.succeededFuture(List.of())));
      }
      long ttlSeconds = ttl == Long.MAX_VALUE ? 0 : ttl;
      return Future.join(targets).map(done -> {
        TreeSet<String> members = new TreeSet<>();
        int[] skipped = {0};
        for (int i = 0; i < records.size(); i++) {
          SrvRecord r = records.get(i);
          List<String> addrs = targets.get(i).result();
          if (addrs == null || addrs.isEmpty()) {
            skip("unresolvable", "SRV target '" + LogText.escape(r.target()) + "' of '" + name + "' has no address", skipped);
            continue;
          }
          for (String addr : addrs) member(addr, r.port(), members, skipped);
        }
        return new Answer(List.copyOf(members), ttlSeconds, false, skipped[0]);
      });
    });
  }

  /** A then AAAA records of {@code host}; null when neither exists (NXDOMAIN on both). */
  private Future<List<String>> addresses(String host) {
    Future<List<String>> v4 = ask(c -> c.resolveA(host), 0);
    Future<List<String>> v6 = ask(c -> c.resolveAAAA(host), 0);
    return Future.all(v4, v6).map(x -> {
      if (v4.result() == null && v6.result() == null) return null;
      List<String> all = new ArrayList<>();
      if (v4.result() != null) all.addAll(v4.result());
      if (v6.result() != null) all.addAll(v6.result());
      return all;
    });
  }

  /**
   * Asks the servers in order until one answers: null for NXDOMAIN (an answer: the next server is
   * not asked), a failure when every server failed.
   */
  private <T> Future<T> ask(java.util.function.Function<DnsClient, Future<T>> query, int server) {
    return query.apply(clients.get(server)).recover(e -> {
      if (e instanceof DnsException d && d.code() == DnsResponseCode.NXDOMAIN) return Future.succeededFuture(null);
      if (server + 1 < clients.size()) {
        LOG.debug("DNS server {} failed for '{}': {}; asking the next", servers.get(server), name, describe(e));
        return ask(query, server + 1);
      }
      return Future.failedFuture(e);
    });
  }

  private void member(String address, int p, TreeSet<String> members, int[] skipped) {
    MemberAddress.Checked c = grpcRing ? MemberAddress.consulGrpc(address, p)
        : MemberAddress.consul(address, address, p, false);
    if (c.ok()) {
      members.add(c.member());
    } else {
      skip(c.cause(), "DNS answer for '" + name + "': " + LogText.escape(address) + " port " + p + " " + c.reason(), skipped);
    }
  }

  private void skip(String cause, String message, int[] skipped) {
    skipped[0]++;
    ctx.metrics().registry().counter(ProxyMetrics.withTags("discoverer.invalid_members", "source:dns:" + name,
        "cause:" + cause)).inc();
    memberLogs.warn("skipped/" + cause, message + " (discoverer.invalid_members counts each)");
  }

  private static String trimDot(String host) {
    return host.endsWith(".") ? host.substring(0, host.length() - 1) : host;
  }

  private static String describe(Throwable e) {
    if (e instanceof DnsException d) return d.code().name();
    return LogText.escape(String.valueOf(e.getMessage() != null ? e.getMessage() : e));
  }

  private com.codahale.metrics.Counter discovererErrors() {
    return ctx.metrics().counter("discoverer.errors", "service", name);
  }

  @Override
  public Future<?> stop() {
    stopped = true;
    if (timer >= 0) vertx.cancelTimer(timer);
    List<Future<Void>> closing = new ArrayList<>();
    for (DnsClient c : clients) closing.add(c.close());
    return Future.join(closing);
  }
}
