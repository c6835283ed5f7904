package dev.veneur.proxy.ring;

import dev.veneur.proxy.bus.Membership;
import dev.veneur.proxy.config.IgnoreTags;
import dev.veneur.proxy.config.ProxyConfig;
import dev.veneur.proxy.routing.HashRing;
import java.util.List;
import java.util.TreeSet;

/** One ring's state: members, ejections, the routing ring, and the member sets still to apply. */
final class RingState {
  final String name;
  final boolean ofGrpc;
  /** Who discovery says exists. */
  List<String> members = List.of();
  /** Members taken out of routing for failing; never more than all of them. */
  final TreeSet<String> ejected = new TreeSet<>();
  /** What importers route on. */
  HashRing ring = HashRing.empty();
  /** Member sets arrive faster than deployments finish; apply them one at a time, latest wins. */
  Membership pending;
  boolean applying;
  /**
   * A member set none of whose forwarders could start: not applied (the last good ring stays),
   * applied as soon as a retry starts one of them, unless a newer set came first.
   */
  Membership waiting;
  /**
   * What the ring hashes for a member: itself, except for HTTP globals from Consul under a v14
   * file, which Veneur v14.2.0 names {@code <Node.Address>:<Service.Port>} with no scheme.
   */
  java.util.function.UnaryOperator<String> hashName = m -> m;

  RingState(String name, boolean ofGrpc) {
    this.name = name;
    this.ofGrpc = ofGrpc;
  }

  /** Tags this ring's keys leave out: v14's ignore_tags apply to the ring of gRPC globals. */
  IgnoreTags keyIgnore(ProxyConfig cfg) {
    return ofGrpc ? cfg.ignoreTags : IgnoreTags.NONE;
  }

  String label() {
    return ofGrpc ? "the gRPC ring" : "the ring";
  }
}
