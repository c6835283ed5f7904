package dev.veneur.proxy.config;

import io.vertx.core.http.ClientAuth;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.ClientSSLOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.core.net.ServerSSLOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * A TLS block of the YAML, as PEM files: {@code tls} (v14's: the proxy's own certificate for its
 * listeners, and with {@code ca_file} the CA its clients' certificates must chain to) and
 * {@code forward_tls} (the CA the globals' certificates must chain to, and the certificate the
 * proxy presents to them). Paths are read when a listener or client is built and again when
 * {@link #stamp()} says a file changed (cert-manager rewrites them in place), never cached here.
 *
 * @param caFile PEM CA bundle, or "" (listeners: no client verification; clients: the JVM's CAs)
 * @param certFile PEM certificate chain, or ""
 * @param keyFile PEM private key (PKCS#8 or PKCS#1), or ""
 * @param serverName listeners: unused (v14 reads it); clients: the name the global's certificate
 *     must carry, when it is not the host dialled
 * @param clientAuth listeners: require, request or none
 */
public record TlsFiles(String caFile, String certFile, String keyFile, String serverName, String clientAuth) {
  public static final TlsFiles NONE = new TlsFiles("", "", "", "", "none");

  public boolean isSet() {
    return !certFile.isEmpty() || !caFile.isEmpty();
  }

  /**
   * Reads a block ({@code {ca_file, cert_file, key_file, server_name, client_auth}}); every problem
   * names the key ({@code tls.cert_file}) and says what is wrong with the file.
   *
   * @param server a listener's block: a certificate and key are required
   */
  static TlsFiles read(String key, Object raw, boolean server) {
    if (raw == null) return NONE;
    if (!(raw instanceof JsonObject o)) {
      throw new ConfigException(key, raw, "a map of ca_file, cert_file, key_file, server_name"
          + (server ? ", client_auth" : ""));
    }
    for (String k : o.fieldNames()) {
      if (!java.util.Set.of("ca_file", "cert_file", "key_file", "server_name", "client_auth").contains(k)) {
        throw new ConfigException(key + "." + k, o.getValue(k), "one of ca_file, cert_file, key_file, server_name"
            + (server ? ", client_auth" : ""));
      }
    }
    String ca = str(o, key, "ca_file");
    String cert = str(o, key, "cert_file");
    String keyFile = str(o, key, "key_file");
    String name = str(o, key, "server_name");
    String auth = str(o, key, "client_auth").toLowerCase(Locale.ROOT);
    if (auth.isEmpty()) auth = ca.isEmpty() ? "none" : "require";
    if (!server && o.containsKey("client_auth")) {
      throw new ConfigException(key + ".client_auth", auth, "no such key here (client_auth is the listeners' tls)");
    }
    if (!auth.equals("require") && !auth.equals("request") && !auth.equals("none")) {
      throw new ConfigException(key + ".client_auth", auth, "require, request or none");
    }
    if (!auth.equals("none") && ca.isEmpty()) {
      throw new ConfigException(key + ".client_auth", auth, "a ca_file to verify client certificates against");
    }
    if (!server && !name.isEmpty()) {
      // A global is verified against the host it is dialled by (its URL or host:port); dialling an
      // address while verifying another name is not supported: name the global by that host.
      throw new ConfigException(key + ".server_name", name, "nothing: name each global by the host its "
          + "certificate carries (https://global-1.example:8127); the certificate is verified against it");
    }
    if (cert.isEmpty() != keyFile.isEmpty()) {
      throw new ConfigException(key + (cert.isEmpty() ? ".cert_file" : ".key_file"), "",
          "both cert_file and key_file, or neither");
    }
    if (server && cert.isEmpty()) {
      throw new ConfigException(key + ".cert_file", "", "the listener's certificate (with key_file)");
    }
    pem(key + ".ca_file", ca, "CERTIFICATE");
    pem(key + ".cert_file", cert, "CERTIFICATE");
    pem(key + ".key_file", keyFile, "PRIVATE KEY");
    return new TlsFiles(ca, cert, keyFile, name, auth);
  }

  private static String str(JsonObject o, String key, String field) {
    Object v = o.getValue(field);
    if (v == null) return "";
    if (!(v instanceof String s)) throw new ConfigException(key + "." + field, v, "a string");
    return s.trim();
  }

  /** The file exists, is readable, and holds at least one PEM block of the kind. */
  private static void pem(String key, String path, String kind) {
    if (path.isEmpty()) return;
    String text;
    try {
      if (Files.size(Path.of(path)) > (4 << 20)) throw new ConfigException(key, path, "a PEM file (this one is over 4 MiB)");
      text = Files.readString(Path.of(path), StandardCharsets.US_ASCII);
    } catch (java.nio.charset.MalformedInputException e) {
      throw new ConfigException(key, path, "a PEM file (this one is not text)");
    } catch (IOException | java.io.UncheckedIOException e) {
      throw new ConfigException(key, path, "a readable PEM file (" + e.getClass().getSimpleName() + ": "
          + e.getMessage() + ")");
    }
    if (!text.contains("-----BEGIN ") || !text.contains(kind + "-----")) {
      throw new ConfigException(key, path, "a PEM file with a " + kind + " block");
    }
  }

  /** A listener's options: the certificate, and client verification against the CA. */
  public ServerSSLOptions serverOptions(long handshakeTimeoutMs) {
    ServerSSLOptions o = new ServerSSLOptions()
        .setKeyCertOptions(new PemKeyCertOptions().setCertPath(certFile).setKeyPath(keyFile))
        .setClientAuth(switch (clientAuth) {
          case "require" -> ClientAuth.REQUIRED;
          case "request" -> ClientAuth.REQUEST;
          default -> ClientAuth.NONE;
        })
        .setSslHandshakeTimeout(handshakeTimeoutMs)
        .setSslHandshakeTimeoutUnit(TimeUnit.MILLISECONDS);
    if (!caFile.isEmpty()) o.setTrustOptions(new PemTrustOptions().addCertPath(caFile));
    return o;
  }

  /** A client's options: the globals' CA (else the JVM's), host name verification, our certificate. */
  public ClientSSLOptions clientOptions(long handshakeTimeoutMs) {
    ClientSSLOptions o = new ClientSSLOptions()
        .setHostnameVerificationAlgorithm("HTTPS")
        .setSslHandshakeTimeout(handshakeTimeoutMs)
        .setSslHandshakeTimeoutUnit(TimeUnit.MILLISECONDS);
    if (!caFile.isEmpty()) o.setTrustOptions(new PemTrustOptions().addCertPath(caFile));
    if (!certFile.isEmpty()) o.setKeyCertOptions(new PemKeyCertOptions().setCertPath(certFile).setKeyPath(keyFile));
    return o;
  }

  /**
   * As {@link #clientOptions}, with the files' contents rather than their paths (blocking: call
   * it off the event loops). A client given the same paths again keeps the context it built from
   * them; contents make the new files take effect.
   */
  public ClientSSLOptions clientOptionsRead(long handshakeTimeoutMs) throws IOException {
    ClientSSLOptions o = clientOptions(handshakeTimeoutMs);
    if (!caFile.isEmpty()) {
      o.setTrustOptions(new PemTrustOptions().addCertValue(io.vertx.core.buffer.Buffer.buffer(Files.readAllBytes(Path.of(caFile)))));
    }
    if (!certFile.isEmpty()) {
      o.setKeyCertOptions(new PemKeyCertOptions()
          .setCertValue(io.vertx.core.buffer.Buffer.buffer(Files.readAllBytes(Path.of(certFile))))
          .setKeyValue(io.vertx.core.buffer.Buffer.buffer(Files.readAllBytes(Path.of(keyFile)))));
    }
    return o;
  }

  /**
   * Size and modification time of each file: a change means the files were rewritten (blocking
   * file-system calls: call it off the event loops).
   */
  public String stamp() {
    StringBuilder b = new StringBuilder();
    for (String p : new String[] {caFile, certFile, keyFile}) {
      if (p.isEmpty()) continue;
      try {
        // Through symlinks, as Kubernetes mounts secrets (..data swapped for a new directory).
        BasicFileAttributes a = Files.readAttributes(Path.of(p), BasicFileAttributes.class);
        b.append(p).append(':').append(a.size()).append(':').append(a.lastModifiedTime().toMillis())
            .append(':').append(a.fileKey()).append(';');
      } catch (IOException e) {
        b.append(p).append(":missing;");
      }
    }
    return b.toString();
  }

  @Override
  public String toString() {
    return isSet() ? "cert " + (certFile.isEmpty() ? "-" : certFile) + ", ca " + (caFile.isEmpty() ? "-" : caFile)
        + ", client_auth " + clientAuth : "off";
  }
}
