package dev.veneur.proxy.config;

/**
 * One ring member's address, checked on its own: {@code http(s)://host[:port]} and nothing else.
 * A member is a destination the proxy POSTs to and a string the ring hashes, so it must be a host
 * (a name, an IPv4 address, or an IPv6 address in brackets) with a port from 1 to 65535: no path,
 * query or fragment (they would be glued in front of {@code /import}), no userinfo, no control
 * characters (they would reach the log as they are, and could forge lines there).
 *
 * <p>The static list ({@code forward_address(es)}) is checked here when the config is read (a bad
 * entry is a config error naming the key); every member set the ring is given is checked again,
 * and Consul's instances are read through {@link #consul}, which also accepts the common
 * registration mistake of a port inside {@code Service.Address}.
 *
 * <p>No I/O and no Vert.x: pure checks, tested by {@code MemberAddressTest}.
 */
public final class MemberAddress {
  /** Members longer than this are refused: no real host name comes near it. */
  public static final int MAX_LENGTH = 300;

  /**
   * The outcome of a check: the member as the ring names it ({@code http://host:port}), or why not.
   *
   * @param member the ring member, null when refused
   * @param cause a short tag for the refusal's counter ({@code port}, {@code path}, ...), or null
   * @param reason what is wrong, for the log (never contains the raw value)
   * @param note something odd but usable (a port in the address that Service.Port overrides), or null
   */
  public record Checked(String member, String cause, String reason, String note) {
    public boolean ok() {
      return member != null;
    }

    static Checked refused(String cause, String reason) {
      return new Checked(null, cause, reason, null);
    }
  }

  private MemberAddress() {}

  /**
   * Whether a ring member is a gRPC global: named {@code host:port} with no scheme, as Veneur v14
   * names the members of its gRPC ring (and hashes them, so the name is the placement).
   */
  public static boolean isGrpc(String member) {
    return !member.contains("://");
  }

  /** A gRPC member: {@code host:port} or {@code [v6]:port}, the port required. */
  public static Checked grpc(String value) {
    if (value == null || value.isEmpty()) return Checked.refused("host", "empty address");
    if (value.length() > MAX_LENGTH) {
      return Checked.refused("too_long", "longer than " + MAX_LENGTH + " characters");
    }
    Checked control = controlCharacters(value);
    if (control != null) return control;
    Checked shape = authorityShape(value);
    if (shape != null) return shape;
    HostPort hp = splitHostPort(value, false);
    if (hp.error != null) return hp.error;
    return new Checked(value, null, null, null);
  }

  /**
   * A destination URL as the ring names it: {@code http://} or {@code https://}, a host, an
   * optional port (the scheme's default when absent). Trailing slashes are not accepted here:
   * {@link ProxyConfig} strips them from what an operator wrote before calling this.
   */
  public static Checked url(String value) {
    if (value != null && !value.isEmpty() && isGrpc(value)) return grpc(value);
    if (value == null || value.isEmpty()) return Checked.refused("host", "empty address");
    if (value.length() > MAX_LENGTH) {
      return Checked.refused("too_long", "longer than " + MAX_LENGTH + " characters");
    }
    Checked control = controlCharacters(value);
    if (control != null) return control;
    String rest;
    if (value.startsWith("http://")) rest = value.substring(7);
    else if (value.startsWith("https://")) rest = value.substring(8);
    else return Checked.refused("scheme", "not an http:// or https:// URL");
    Checked shape = authorityShape(rest);
    if (shape != null) return shape;
    HostPort hp = splitHostPort(rest, true);
    if (hp.error != null) return hp.error;
    return new Checked(value, null, null, null);
  }

  /**
   * A Consul instance's member: {@code http://<address>:<port>}.
   *
   * <p>The address is the service's ({@code Service.Address}) unless it is empty or
   * {@code useNode} is set ({@code consul_member_address: node}, the Go proxy v2's choice), then
   * the node's. An address that carries a port ({@code "10.0.0.5:8128"}, {@code "[::1]:8128"}) is
   * read as host and port: Consul itself never looks inside the address, so the host is what Go v2
   * would have used when the node has that address. {@code Service.Port} wins over the port in the
   * address whenever it is set: it is what Consul's DNS (SRV records) and the Go proxy v2 use, so
   * placement stays the Go proxy's; the address's port is used only when {@code Service.Port} is 0.
   * When both are set and differ, the member is kept and {@link Checked#note} says so.
   */
  public static Checked consul(String serviceAddress, String nodeAddress, long servicePort, boolean useNode) {
    String address = useNode ? nodeAddress : serviceAddress;
    String which = useNode ? "Node.Address" : "Service.Address";
    if (address == null || address.isBlank()) {
      address = nodeAddress;
      which = "Node.Address";
    }
    if (address == null || address.isBlank()) return Checked.refused("host", "no address (service or node)");
    if (address.length() > MAX_LENGTH) {
      return Checked.refused("too_long", which + " longer than " + MAX_LENGTH + " characters");
    }
    Checked control = controlCharacters(address);
    if (control != null) return Checked.refused(control.cause(), which + " " + control.reason());
    if (servicePort < 0 || servicePort > 65535) {
      return Checked.refused("port", "Service.Port " + servicePort + " is not from 1 to 65535");
    }
    Checked shape = authorityShape(address);
    if (shape != null) return Checked.refused(shape.cause(), which + " " + shape.reason());
    String host;
    int embedded = -1;
    if (address.startsWith("[")) {
      HostPort hp = splitHostPort(address, true);
      if (hp.error != null) return Checked.refused(hp.error.cause(), which + " " + hp.error.reason());
      host = hp.host;
      embedded = hp.port;
    } else {
      int first = address.indexOf(':');
      if (first >= 0 && first == address.lastIndexOf(':')) {
        // One colon: host:port, the registration mistake this method exists for.
        HostPort hp = splitHostPort(address, true);
        if (hp.error != null) return Checked.refused(hp.error.cause(), which + " " + hp.error.reason());
        host = hp.host;
        embedded = hp.port;
      } else if (first >= 0) {
        // Several colons and no brackets: a bare IPv6 address (Consul registers them so).
        host = "[" + address + "]";
        HostPort hp = splitHostPort(host, true);
        if (hp.error != null) return Checked.refused(hp.error.cause(), which + " " + hp.error.reason());
      } else {
        host = address;
        HostPort hp = splitHostPort(host, true);
        if (hp.error != null) return Checked.refused(hp.error.cause(), which + " " + hp.error.reason());
      }
    }
    long port;
    String note = null;
    if (servicePort > 0) {
      port = servicePort;
      if (embedded > 0 && embedded != servicePort) {
        note = which + " carries port " + embedded + " but Service.Port is " + servicePort
            + "; using Service.Port, as Consul's DNS and the Go proxy v2 do";
      }
    } else if (embedded > 0) {
      port = embedded;
    } else {
      return Checked.refused("port", "no port: Service.Port is 0 and " + which + " carries none");
    }
    return new Checked("http://" + host + ":" + port, null, null, note);
  }

  /**
   * A Consul instance's member in a ring of gRPC globals: {@code <Node.Address>:<Service.Port>}
   * with no scheme, as the Veneur v14.2.0 proxy names (and hashes) it, so a series lands on the
   * global v14 would pick. Checked as {@link #consul} checks an address; the port must be set.
   */
  public static Checked consulGrpc(String nodeAddress, long servicePort) {
    if (servicePort <= 0) return Checked.refused("port", "Service.Port " + servicePort + " is not from 1 to 65535");
    Checked c = consul(nodeAddress, nodeAddress, servicePort, true);
    if (!c.ok()) return c;
    String member = c.member().substring("http://".length());
    return new Checked(member, null, null, c.note());
  }

  /** C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators. */
  private static Checked controlCharacters(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == '\u2028' || c == '\u2029') {
        return Checked.refused("control_character", "contains a control character");
      }
    }
    return null;
  }

  /** What may not appear in {@code host[:port]} whatever the host: a path, query, userinfo, space. */
  private static Checked authorityShape(String authority) {
    for (int i = 0; i < authority.length(); i++) {
      char c = authority.charAt(i);
      if (c == '/' || c == '?' || c == '#' || c == '\\') {
        return Checked.refused("path", "has a path, query or fragment (only host:port is allowed)");
      }
      if (c == '@') return Checked.refused("userinfo", "has userinfo (user@host is not allowed)");
      if (c == ' ') return Checked.refused("host", "contains a space");
    }
    return null;
  }

  private record HostPort(String host, int port, Checked error) {}

  /**
   * {@code host}, {@code host:port}, {@code [v6]} or {@code [v6]:port}, already free of paths and
   * control characters. Port -1 when absent.
   */
  private static HostPort splitHostPort(String s, boolean portOptional) {
    String host;
    String portText = null;
    if (s.startsWith("[")) {
      int close = s.indexOf(']');
      if (close < 0) return bad("host", "has an unclosed '[' (IPv6 addresses go in brackets: [::1]:8128)");
      host = s.substring(0, close + 1);
      String after = s.substring(close + 1);
      if (!after.isEmpty()) {
        if (after.charAt(0) != ':') return bad("host", "has characters after the IPv6 address's ']'");
        portText = after.substring(1);
      }
      String inside = host.substring(1, host.length() - 1);
      if (inside.isEmpty() || inside.indexOf(':') < 0) return bad("host", "has no IPv6 address inside '[]'");
      for (int i = 0; i < inside.length(); i++) {
        char c = inside.charAt(i);
        if (!(isHex(c) || c == ':' || c == '.')) {
          return bad("host", "has a character an IPv6 address cannot contain");
        }
      }
      // A literal with ':' is parsed, never looked up (no DNS): this only checks its form.
      try {
        if (!(java.net.InetAddress.getByName(inside) instanceof java.net.Inet6Address)) {
          return bad("host", "has no IPv6 address inside '[]'");
        }
      } catch (java.net.UnknownHostException e) {
        return bad("host", "has an invalid IPv6 address inside '[]'");
      }
    } else {
      int colon = s.indexOf(':');
      if (colon >= 0 && colon != s.lastIndexOf(':')) {
        return bad("host", "has several ':' (an IPv6 address goes in brackets: [::1]:8128)");
      }
      host = colon < 0 ? s : s.substring(0, colon);
      if (colon >= 0) portText = s.substring(colon + 1);
      if (host.isEmpty()) return bad("host", "has no host");
      if (host.length() > 253) return bad("host", "has a host name longer than 253 characters");
      for (int i = 0; i < host.length(); i++) {
        char c = host.charAt(i);
        boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '.' || c == '-' || c == '_';
        if (!ok) return bad("host", "has a character a host name cannot contain");
      }
    }
    int port = -1;
    if (portText != null) {
      if (portText.isEmpty() || portText.length() > 5) return bad("port", "has a port that is not from 1 to 65535");
      for (int i = 0; i < portText.length(); i++) {
        char c = portText.charAt(i);
        if (c < '0' || c > '9') return bad("port", "has a port that is not a number from 1 to 65535");
      }
      port = Integer.parseInt(portText);
      if (port < 1 || port > 65535) return bad("port", "has port " + port + ", not from 1 to 65535");
    } else if (!portOptional) {
      return bad("port", "has no port");
    }
    return new HostPort(host, port, null);
  }

  private static boolean isHex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  private static HostPort bad(String cause, String reason) {
    return new HostPort(null, -1, Checked.refused(cause, reason));
  }
}
