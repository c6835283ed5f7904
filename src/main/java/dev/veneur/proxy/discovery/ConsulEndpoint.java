package dev.veneur.proxy.discovery;

import dev.veneur.proxy.config.ConfigException;
import dev.veneur.proxy.config.ProxyConfig;
import java.net.URI;
import java.util.Map;

/**
 * Where the Consul agent is and how to authenticate, found the way the Go Consul client (and so
 * the Go proxy) finds it: {@code CONSUL_HTTP_ADDR} ({@code host:port}, or a URL whose
 * {@code https://} scheme turns TLS on) and {@code CONSUL_HTTP_TOKEN}, defaulting to the local
 * agent on 127.0.0.1:8500. The config keys {@code consul_address} and {@code consul_token}
 * override the environment, so one file can describe a whole deployment.
 */
public record ConsulEndpoint(String host, int port, boolean ssl, String token) {

  public static ConsulEndpoint resolve(ProxyConfig cfg, Map<String, String> env) {
    String addrKey = "consul_address";
    String addr = cfg.consulAddress;
    if (addr.isEmpty()) {
      addrKey = "CONSUL_HTTP_ADDR (environment)";
      addr = env.getOrDefault("CONSUL_HTTP_ADDR", "").trim();
    }
    if (addr.isEmpty()) {
      addr = "127.0.0.1:8500";
    }
    String token = !cfg.consulToken.isEmpty() ? cfg.consulToken
        : env.getOrDefault("CONSUL_HTTP_TOKEN", "").trim();
    boolean ssl = false;
    String hostPort = addr;
    if (addr.contains("://")) {
      URI u;
      try {
        u = new URI(addr);
      } catch (java.net.URISyntaxException e) {
        throw new ConfigException(addrKey, addr, "host:port or http(s)://host:port");
      }
      if (!"http".equals(u.getScheme()) && !"https".equals(u.getScheme()) || u.getHost() == null) {
        throw new ConfigException(addrKey, addr, "host:port or http(s)://host:port");
      }
      ssl = "https".equals(u.getScheme());
      int port = u.getPort() > 0 ? u.getPort() : (ssl ? 443 : 80);
      return new ConsulEndpoint(u.getHost(), port, ssl, token);
    }
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0) {
      throw new ConfigException(addrKey, addr, "host:port or http(s)://host:port");
    }
    try {
      int port = Integer.parseInt(hostPort.substring(colon + 1));
      if (port <= 0 || port > 65535) throw new NumberFormatException();
      String host = hostPort.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
      return new ConsulEndpoint(host, port, false, token);
    } catch (NumberFormatException e) {
      throw new ConfigException(addrKey, addr, "host:port with a port from 1 to 65535");
    }
  }

  @Override
  public String toString() {
    // Never print the token.
    return (ssl ? "https://" : "http://") + host + ":" + port;
  }
}
