package dev.veneur.proxy.discovery;

import dev.veneur.proxy.config.MemberAddress;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * A Service's EndpointSlices ({@code discovery.k8s.io/v1}) as a list and its watch events leave
 * them, and the ring members they give: every address of every ready endpoint, with the port
 * named {@code portName} in its slice, written as the Consul importer writes members
 * ({@code http://10.0.0.5:8127}, or {@code 10.0.0.5:8128} for gRPC globals) so proxies that find
 * the same globals by Consul, DNS or the Kubernetes API compute the same ring.
 */
final class EndpointSlices {
  /** Told of an endpoint that cannot be a member: its cause and a line saying why. */
  interface Skipped {
    void skipped(String cause, String message);
  }

  private final String portName;
  private final boolean grpcRing;
  private final Map<String, JsonObject> slices = new HashMap<>();

  EndpointSlices(String portName, boolean grpcRing) {
    this.portName = portName;
    this.grpcRing = grpcRing;
  }

  /** A list's items replace everything known. */
  void reset(JsonArray items) {
    slices.clear();
    for (Object o : items) {
      if (o instanceof JsonObject s && name(s) != null) slices.put(name(s), s);
    }
  }

  /** A watch event: ADDED, MODIFIED or DELETED (others change nothing here). */
  void apply(String type, JsonObject slice) {
    String name = name(slice);
    if (name == null) return;
    switch (type) {
      case "ADDED", "MODIFIED" -> slices.put(name, slice);
      case "DELETED" -> slices.remove(name);
      default -> { }
    }
  }

  int size() {
    return slices.size();
  }

  /** The members now, sorted. */
  List<String> members(Skipped skipped) {
    TreeSet<String> out = new TreeSet<>();
    for (JsonObject s : slices.values()) {
      Integer port = null;
      JsonArray ports = s.getJsonArray("ports");
      if (ports != null) {
        for (Object p : ports) {
          if (p instanceof JsonObject po && portName.equals(po.getString("name")) && po.getValue("port") instanceof Number n) {
            port = n.intValue();
          }
        }
      }
      JsonArray endpoints = s.getJsonArray("endpoints");
      if (endpoints == null || endpoints.isEmpty()) continue;
      if (port == null) {
        skipped.skipped("port", "EndpointSlice " + name(s) + " has no port named '" + portName + "'");
        continue;
      }
      for (Object e : endpoints) {
        if (!(e instanceof JsonObject ep)) continue;
        JsonObject cond = ep.getJsonObject("conditions");
        // The API: a ready condition that is not set means ready.
        if (cond != null && Boolean.FALSE.equals(cond.getValue("ready"))) continue;
        JsonArray addrs = ep.getJsonArray("addresses");
        if (addrs == null) continue;
        for (Object a : addrs) {
          if (!(a instanceof String addr)) continue;
          MemberAddress.Checked c = grpcRing ? MemberAddress.consulGrpc(addr, port)
              : MemberAddress.consul(addr, addr, port, false);
          if (c.ok()) out.add(c.member());
          else skipped.skipped(c.cause(), "EndpointSlice " + name(s) + ": " + addr + " port " + port + " " + c.reason());
        }
      }
    }
    return List.copyOf(out);
  }

  static String name(JsonObject slice) {
    JsonObject meta = slice.getJsonObject("metadata");
    return meta == null ? null : meta.getString("name");
  }
}
