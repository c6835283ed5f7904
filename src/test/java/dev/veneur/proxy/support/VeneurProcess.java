package dev.veneur.proxy.support;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Assumptions;

/**
 * A real Veneur server (Stripe's binaries in {@code ../shared/veneur/}, see its README) as a child
 * process, with its YAML written to a directory of the test's, its output captured, and its ports
 * taken from 0. A local listens for statsd on UDP and forwards to {@code forward_address}; a
 * global imports on {@code http_address} (and, for v14, gRPC on {@code grpc_address}). Both flush
 * to a {@link DatadogSink} stand-in every {@code interval}, on the interval's wall-clock boundaries
 * ({@code synchronize_with_interval}), so a test can send its traffic well inside one interval.
 */
public final class VeneurProcess implements AutoCloseable {
  /** The binaries' directory, relative to the project root (the working directory of a test run). */
  public static final Path ROOT = Path.of("..", "shared", "veneur");
  private static final HttpClient HTTP = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(2)).build();

  public enum Version {
    V2_0_0("v2.0.0", "Listening for statsd metrics on UDP socket"),
    V14_2_0("v14.2.0", "Listening on UDP address");

    public final String tag;
    /** What the server logs once its statsd UDP socket is bound. */
    final String udpListening;

    Version(String tag, String udpListening) {
      this.tag = tag;
      this.udpListening = udpListening;
    }

    public Path binary() {
      return ROOT.resolve(tag).resolve("veneur");
    }
  }

  /**
   * Skips the calling test (a JUnit assumption) unless the binaries of every given version are
   * here: a checkout without {@code ../shared/veneur} still builds and tests everything else.
   */
  public static void assumeAvailable(Version... versions) {
    for (Version v : versions) {
      Assumptions.assumeTrue(Files.isExecutable(v.binary()),
          "real Veneur " + v.tag + " not found at " + v.binary().toAbsolutePath().normalize() + ": interop test skipped");
    }
  }

  public final Version version;
  public final String hostname;
  public final int statsdPort;
  public final int httpPort;
  /** The gRPC import port of a v14 server built with {@link Builder#grpc()}, else 0. */
  public final int grpcPort;
  public final Path yaml;
  public final Process process;
  public final List<String> output = new CopyOnWriteArrayList<>();

  private VeneurProcess(Builder b, Path yaml, int statsdPort, int httpPort, int grpcPort, Process p) {
    this.version = b.version;
    this.hostname = b.hostname;
    this.yaml = yaml;
    this.statsdPort = statsdPort;
    this.httpPort = httpPort;
    this.grpcPort = grpcPort;
    this.process = p;
    Thread t = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) output.add(line);
      } catch (IOException e) {
        output.add("(output closed: " + e + ")");
      }
    }, "veneur-" + b.hostname);
    t.setDaemon(true);
    t.start();
  }

  /** A local: statsd in, {@code POST /import} (or what {@code proxy_protocol} says) to {@code forwardAddress}. */
  public static Builder local(Version v, String hostname, String forwardAddress) {
    Builder b = new Builder(v, hostname);
    b.forwardAddress = forwardAddress;
    return b;
  }

  /** A global: imports what locals (or a proxy) forward, and flushes it. */
  public static Builder global(Version v, String hostname) {
    return new Builder(v, hostname);
  }

  public static final class Builder {
    final Version version;
    final String hostname;
    String forwardAddress;
    String proxyProtocol;
    String datadogUrl;
    boolean grpc;
    Duration interval = Duration.ofSeconds(1);
    double[] percentiles = {0.5, 0.9, 0.99};
    List<String> aggregates = List.of("min", "max", "count");
    final List<String> extra = new ArrayList<>();

    Builder(Version version, String hostname) {
      this.version = version;
      this.hostname = hostname;
    }

    /** v14 only: {@code features.proxy_protocol} ({@code json}, {@code grpc-single}, {@code grpc-stream}). */
    public Builder proxyProtocol(String protocol) {
      if (version == Version.V2_0_0) throw new IllegalArgumentException("v2.0.0 has no proxy_protocol");
      this.proxyProtocol = protocol;
      return this;
    }

    /** Flush to a {@link DatadogSink} stand-in. */
    public Builder datadog(DatadogSink sink) {
      this.datadogUrl = sink.url();
      return this;
    }

    /** v14 only: also listen for gRPC imports on a {@code grpc_address} of its own. */
    public Builder grpc() {
      if (version == Version.V2_0_0) throw new IllegalArgumentException("v2.0.0 has no grpc_address here");
      this.grpc = true;
      return this;
    }

    public Builder interval(Duration d) {
      this.interval = d;
      return this;
    }

    public Builder percentiles(double... p) {
      this.percentiles = p.clone();
      return this;
    }

    /** Verbatim top-level YAML lines, for keys this builder does not know. */
    public Builder yaml(String... lines) {
      extra.addAll(List.of(lines));
      return this;
    }

    public VeneurProcess start(Path dir) throws IOException {
      int statsd = freeUdpPort();
      int http = TestProxy.freePort();
      int grpcPort = grpc ? TestProxy.freePort() : 0;
      // Its own telemetry goes to a UDP port nobody reads: sent to the server itself it would be
      // forwarded beside the test's traffic and change what the proxy counts.
      int stats = freeUdpPort();
      List<String> y = new ArrayList<>(List.of(
          "hostname: \"" + hostname + "\"",
          "statsd_listen_addresses: [\"udp://127.0.0.1:" + statsd + "\"]",
          "http_address: \"127.0.0.1:" + http + "\"",
          "interval: \"" + interval.toMillis() + "ms\"",
          "synchronize_with_interval: true",
          "num_workers: 2",
          // v2.0.0 starts no statsd reader at all with its default of 0.
          "num_readers: 1",
          // v2.0.0 drops every packet when this is unset.
          "metric_max_length: 4096",
          "read_buffer_size_bytes: 2097152",
          "stats_address: \"127.0.0.1:" + stats + "\"",
          "percentiles: [" + Arrays.stream(percentiles).mapToObj(d -> String.format(Locale.ROOT, "%s", d))
              .collect(Collectors.joining(", ")) + "]",
          "aggregates: [" + aggregates.stream().map(a -> "\"" + a + "\"").collect(Collectors.joining(", ")) + "]"));
      if (forwardAddress != null) y.add("forward_address: \"" + forwardAddress + "\"");
      if (grpc) y.add("grpc_address: \"127.0.0.1:" + grpcPort + "\"");
      if (proxyProtocol != null) {
        y.add("features:");
        y.add("  proxy_protocol: \"" + proxyProtocol + "\"");
      }
      if (datadogUrl != null) {
        if (version == Version.V2_0_0) {
          y.add("datadog_api_key: \"interop\"");
          y.add("datadog_api_hostname: \"" + datadogUrl + "\"");
          // v2.0.0's Datadog sink divides by this: unset (0) it panics on its first flush.
          y.add("flush_max_per_body: 25000");
        } else {
          y.add("metric_sinks:");
          y.add("  - kind: datadog");
          y.add("    name: datadog");
          y.add("    config:");
          y.add("      api_key: \"interop\"");
          y.add("      api_hostname: \"" + datadogUrl + "\"");
          y.add("      flush_max_per_body: 25000");
        }
      }
      y.addAll(extra);
      Path file = dir.resolve("veneur-" + hostname + ".yaml");
      Files.writeString(file, String.join("\n", y) + "\n");
      Process p = new ProcessBuilder(version.binary().toAbsolutePath().toString(), "-f", file.toString())
          .redirectErrorStream(true).start();
      return new VeneurProcess(this, file, statsd, http, grpcPort, p);
    }
  }

  /** {@code http://127.0.0.1:<http port>}: what a local's (or the proxy's) forward address names. */
  public String httpUrl() {
    return "http://127.0.0.1:" + httpPort;
  }

  /** Waits until the statsd socket is bound and {@code GET /healthcheck} answers 200. */
  public VeneurProcess awaitReady() {
    Await.until("Veneur " + version.tag + " '" + hostname + "' ready (statsd bound, /healthcheck 200)",
        Duration.ofSeconds(30), Duration.ofMillis(20),
        () -> {
          if (!process.isAlive()) throw new AssertionError("Veneur " + hostname + " exited with "
              + process.exitValue() + ":\n" + log());
          return output.stream().anyMatch(l -> l.contains(version.udpListening)) && healthy();
        });
    return this;
  }

  public boolean healthy() {
    try {
      return HTTP.send(HttpRequest.newBuilder(URI.create(httpUrl() + "/healthcheck")).timeout(Duration.ofSeconds(2)).build(),
          HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  public String log() {
    return String.join("\n", output);
  }

  /** Lines at level warning or worse, and Go panics: what a test reports when something is refused. */
  public List<String> complaints() {
    return output.stream().filter(l -> l.contains("level=warn") || l.contains("level=error")
        || l.contains("level=fatal") || l.startsWith("panic:")).toList();
  }

  /** Writes the output to {@code target/veneur-logs/<hostname>.log}, for a look after a failure. */
  public Path saveLog(String name) {
    try {
      Path d = Path.of("target", "veneur-logs");
      Files.createDirectories(d);
      Path f = d.resolve(name.replaceAll("[^A-Za-z0-9._-]", "_") + ".log");
      Files.write(f, output);
      return f.toAbsolutePath();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  @Override
  public void close() {
    process.toHandle().destroy();
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  static int freeUdpPort() {
    try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
