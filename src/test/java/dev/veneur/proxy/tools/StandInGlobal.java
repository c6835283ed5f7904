package dev.veneur.proxy.tools;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.WireFormat;
import forwardrpc.ForwardOuterClass.MetricList;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerOptions;
import io.vertx.grpc.server.GrpcServerRequest;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.GZIPInputStream;
import java.util.zip.Inflater;
import java.util.zip.InflaterInputStream;

/**
 * A stand-in for a global Veneur, for the demo and the benchmark: accepts {@code POST /import}
 * like a global does (deflate, gzip or plain JSON), answers {@code 202}, counts the metrics it
 * receives, optionally prints them, and reports its counts at {@code GET /stats}.
 *
 * <p>By default it spends the CPU a real global spends on an import body before its workers merge
 * the metrics: it inflates the body, decodes the whole JSON array into metric objects (name, type,
 * tagstring, tags, value) and base64-decodes every {@code value} (what Go's {@code encoding/json}
 * does into {@code []samplers.JSONMetric}). It does not merge digests or sets, so a real global
 * still costs more. With {@code light} it only counts the array's elements (the old behaviour,
 * which leaves the proxy more CPU than a real global would on a shared machine).
 *
 * <p>With {@code grpc} it is a v14 global's gRPC import instead: {@code
 * forwardrpc.Forward/SendMetrics} on the same port (h2c, as Veneur dials it; {@code /stats} stays
 * HTTP beside it), each {@code MetricList} parsed with protobuf's generated classes and every
 * metric's name, tags and value read, as a Go global's gRPC server unmarshals the list before its
 * workers import it; it answers OK (an empty {@code google.protobuf.Empty}). It takes messages up
 * to 4 MiB, a Go gRPC server's default, with flow-control windows as large as a Go server grows
 * its own. With {@code light} it only counts the list's metrics without building them.
 *
 * <p>One server can listen on several event loops ({@code instances}, sharing the port), so a
 * single global can use every core, as a Go global does.
 *
 * <pre>
 * java -cp "$(scripts/tools-classpath)" dev.veneur.proxy.tools.StandInGlobal [--host 127.0.0.1] [--port 8128]
 *     [--count 1] [--instances N] [--light] [--grpc] [--print] [--announce]
 * </pre>
 * {@code --port 0} picks free ports; {@code --count 3} starts three globals (on three ports);
 * {@code --announce} prints one line {@code LISTENING p1,p2,...} once all of them listen (the bench
 * reads it when it runs the globals in their own process).
 */
public final class StandInGlobal {
  private static final JsonFactory JSON = new JsonFactory();
  private static final java.util.concurrent.atomic.AtomicInteger SHARED_RANDOM_PORT =
      new java.util.concurrent.atomic.AtomicInteger();
  private static final ThreadLocal<Inflater> INFLATERS = ThreadLocal.withInitial(Inflater::new);
  private static final String SEND_METRICS = "forwardrpc.Forward/SendMetrics";
  /** What a Go gRPC server (a v14 global) accepts by default. */
  private static final int GRPC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
  /**
   * HTTP/2 flow-control windows (stream and connection) of a gRPC stand-in: what a Go gRPC server
   * grows its own to by BDP estimation (grpc-go's bdpLimit). With HTTP/2's default 64 KiB, every
   * 280 KB MetricList waits on WINDOW_UPDATEs from an event loop that is busy decoding the others,
   * and the stand-in, not the proxy, sets the pace (measured: 5-10x fewer metrics delivered).
   */
  private static final int GRPC_WINDOW_BYTES = 16 * 1024 * 1024;

  /** One decoded metric, as a global holds it before importing it. */
  record Metric(String name, String type, String tagstring, List<String> tags, byte[] value) {}

  private final AtomicLong metrics = new AtomicLong();
  private final AtomicLong posts = new AtomicLong();
  private final AtomicLong bytes = new AtomicLong();
  private final AtomicLong valueBytes = new AtomicLong();
  private final AtomicLong rejected = new AtomicLong();
  private final Probes.Arrivals probes = new Probes.Arrivals();
  private volatile long lastPostMicros;
  private final boolean print;
  private final boolean light;
  private final boolean grpc;
  private final List<HttpServer> servers = new ArrayList<>();

  public StandInGlobal(boolean print) {
    this(print, false);
  }

  public StandInGlobal(boolean print, boolean light) {
    this(print, light, false);
  }

  /** {@code grpc}: a v14 global's gRPC import ({@code SendMetrics}) instead of {@code POST /import}. */
  public StandInGlobal(boolean print, boolean light, boolean grpc) {
    this.print = print;
    this.light = light;
    this.grpc = grpc;
  }

  /** Listens on one event loop. */
  public Future<Integer> listen(Vertx vertx, String host, int port) {
    return listen(vertx, host, port, 1);
  }

  /**
   * Listens with {@code instances} servers sharing one port, each on its own event loop (Vert.x
   * spreads the connections over them). Port 0 picks a free port.
   */
  public Future<Integer> listen(Vertx vertx, String host, int port, int instances) {
    // Vert.x shares a port between servers asking for the same port; port 0 is never shared, but
    // the same negative number is one random port shared by every server asking for it.
    int asked = port == 0 && instances > 1 ? SHARED_RANDOM_PORT.decrementAndGet() : port;
    Future<Integer> first = listenOne(vertx, host, asked);
    for (int i = 1; i < instances; i++) {
      first = first.compose(p -> listenOne(vertx, host, asked).map(p));
    }
    return first;
  }

  private Future<Integer> listenOne(Vertx vertx, String host, int port) {
    HttpServer server;
    if (grpc) {
      GrpcServer calls = GrpcServer.server(vertx, new GrpcServerOptions().setMaxMessageSize(GRPC_MAX_MESSAGE_BYTES));
      calls.callHandler(this::handleCall);
      // h2c with prior knowledge for the calls; /stats and /healthcheck stay plain HTTP/1.1 on the
      // same port, so the bench reads a gRPC global's counts as it reads an HTTP one's.
      server = vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true)
          .setInitialSettings(new io.vertx.core.http.Http2Settings().setInitialWindowSize(GRPC_WINDOW_BYTES))
          .setHttp2ConnectionWindowSize(GRPC_WINDOW_BYTES));
      server.requestHandler(req -> {
        String type = req.getHeader("Content-Type");
        if (type != null && type.startsWith("application/grpc")) calls.handle(req);
        else handle(req);
      });
    } else {
      server = vertx.createHttpServer();
      server.requestHandler(this::handle);
    }
    synchronized (servers) {
      servers.add(server);
    }
    return server.listen(port, host).map(HttpServer::actualPort);
  }

  public Future<Void> close() {
    List<Future<Void>> all = new ArrayList<>();
    synchronized (servers) {
      for (HttpServer s : servers) all.add(s.close());
      servers.clear();
    }
    return Future.join(all).mapEmpty();
  }

  /**
   * The bench's delivery probes (see {@link Probes}) this global received and when; {@code GET
   * /probes} takes them. Light globals do not decode names, so they see none.
   */
  public String drainProbes() {
    return probes.drain();
  }

  public long metrics() {
    return metrics.get();
  }

  public long posts() {
    return posts.get();
  }

  /** Wall-clock time (microseconds since the epoch) at which the last accepted post was counted. */
  public long lastPostMicros() {
    return lastPostMicros;
  }

  JsonObject stats() {
    return new JsonObject().put("metrics", metrics.get()).put("posts", posts.get())
        .put("bytes", bytes.get()).put("value_bytes", valueBytes.get()).put("rejected", rejected.get())
        .put("last_post_micros", lastPostMicros).put("light", light).put("grpc", grpc);
  }

  /** One {@code SendMetrics} call: its MetricList decoded (or counted, light), then OK. */
  private void handleCall(GrpcServerRequest<Buffer, Buffer> req) {
    if (!SEND_METRICS.equals(req.fullMethodName())) {
      req.response().status(GrpcStatus.UNIMPLEMENTED).end();
      return;
    }
    req.last().onComplete(ar -> {
      if (ar.failed()) {
        rejected.incrementAndGet();
        req.response().status(GrpcStatus.INVALID_ARGUMENT).statusMessage(String.valueOf(ar.cause())).end();
        return;
      }
      Buffer body = ar.result();
      int n;
      try {
        n = light ? countList(body.getBytes()) : decodeList(body.getBytes());
      } catch (IOException e) {
        rejected.incrementAndGet();
        req.response().status(GrpcStatus.INVALID_ARGUMENT).statusMessage("not a MetricList: " + e.getMessage()).end();
        return;
      }
      if (print) System.out.println("global received " + n + " metrics by gRPC (" + body.length() + " bytes)");
      counted(n, body.length());
      req.response().end(Buffer.buffer()); // google.protobuf.Empty
    });
  }

  /**
   * Parses a MetricList with protobuf's generated classes and reads every metric's name, tags,
   * type, scope and value (a digest's centroids, a set's HyperLogLog bytes), as a Go global has
   * them once gRPC has unmarshalled the list; returns how many there were.
   */
  int decodeList(byte[] bytes) throws IOException {
    MetricList list = MetricList.parseFrom(bytes);
    long seen = 0;
    for (metricpb.MetricOuterClass.Metric m : list.getMetricsList()) {
      seen += m.getName().length() + m.getTypeValue() + m.getScopeValue();
      if (Probes.NAME.equals(m.getName()) && m.getTagsCount() > 0) probes.arrived(Probes.idOf(m.getTags(0)));
      for (int i = 0; i < m.getTagsCount(); i++) seen += m.getTags(i).length();
      switch (m.getValueCase()) {
        case COUNTER: seen += 8; break;
        case GAUGE: seen += 8; break;
        case SET: seen += m.getSet().getHyperLogLog().size(); break;
        case HISTOGRAM:
          for (var c : m.getHistogram().getTDigest().getMainCentroidsList()) seen += 16 + 8L * c.getSamplesCount();
          break;
        default:
          break;
      }
    }
    valueBytes.addAndGet(seen); // keeps the decoding observable, so the JIT cannot drop it
    return list.getMetricsCount();
  }

  /** Counts a MetricList's metrics (field 1) without building them. */
  static int countList(byte[] bytes) throws IOException {
    CodedInputStream in = CodedInputStream.newInstance(bytes);
    int n = 0;
    int tag;
    while ((tag = in.readTag()) != 0) {
      if (WireFormat.getTagFieldNumber(tag) == 1) n++;
      in.skipField(tag);
    }
    return n;
  }

  private void counted(int n, int bodyBytes) {
    metrics.addAndGet(n);
    posts.incrementAndGet();
    bytes.addAndGet(bodyBytes);
    Instant now = Instant.now();
    lastPostMicros = now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
  }

  private void handle(HttpServerRequest req) {
    if ("/stats".equals(req.path())) {
      req.response().putHeader("Content-Type", "application/json").end(stats().encode());
      return;
    }
    if ("/probes".equals(req.path())) {
      req.response().putHeader("Content-Type", "text/plain").end(probes.drain());
      return;
    }
    if ("/healthcheck".equals(req.path())) {
      req.response().end("ok\n");
      return;
    }
    if (!"/import".equals(req.path())) {
      req.response().setStatusCode(404).end();
      return;
    }
    req.body().onSuccess(body -> {
      try {
        String encoding = req.getHeader("Content-Encoding");
        int n;
        if (print) {
          byte[] json = readAll(open(body, encoding));
          n = light ? count(json) : decode(new ByteArrayInputStream(json));
          System.out.println("global received " + n + " metrics (" + body.length() + " bytes "
              + encoding + "):");
          System.out.println("  " + new String(json, java.nio.charset.StandardCharsets.UTF_8));
        } else if (light) {
          n = count(readAll(open(body, encoding)));
        } else {
          n = decode(open(body, encoding));
        }
        counted(n, body.length());
        req.response().setStatusCode(202).end();
      } catch (IOException | IllegalArgumentException e) {
        rejected.incrementAndGet();
        req.response().setStatusCode(400).end(String.valueOf(e.getMessage()));
      }
    });
  }

  /** The body's JSON as a stream: inflated (zlib) or gunzipped as its Content-Encoding says. */
  private static InputStream open(Buffer body, String encoding) throws IOException {
    InputStream raw = new ByteArrayInputStream(body.getBytes());
    if (encoding == null || encoding.isEmpty() || "identity".equalsIgnoreCase(encoding)) return raw;
    if ("deflate".equalsIgnoreCase(encoding)) {
      Inflater inf = INFLATERS.get();
      inf.reset();
      return new InflaterInputStream(raw, inf, 16 * 1024);
    }
    if ("gzip".equalsIgnoreCase(encoding)) return new GZIPInputStream(raw, 16 * 1024);
    throw new IOException("unknown Content-Encoding " + encoding);
  }

  private static byte[] readAll(InputStream in) throws IOException {
    return in.readAllBytes();
  }

  /**
   * Decodes a JSON array of metrics into objects, base64-decoding each value, as a global does
   * before importing them; returns how many there were. A malformed body throws.
   */
  int decode(InputStream in) throws IOException {
    List<Metric> out = new ArrayList<>(1024);
    try (JsonParser p = JSON.createParser(in)) {
      if (p.nextToken() != JsonToken.START_ARRAY) throw new IOException("not a JSON array");
      JsonToken t;
      while ((t = p.nextToken()) == JsonToken.START_OBJECT) {
        String name = null;
        String type = null;
        String tagstring = null;
        List<String> tags = null;
        byte[] value = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
          String field = p.currentName();
          JsonToken v = p.nextToken();
          switch (field) {
            case "name": name = text(p, v); break;
            case "type": type = text(p, v); break;
            case "tagstring": tagstring = text(p, v); break;
            case "tags":
              if (v == JsonToken.START_ARRAY) {
                tags = new ArrayList<>(4);
                while (p.nextToken() != JsonToken.END_ARRAY) tags.add(p.getText());
              } else if (v != JsonToken.VALUE_NULL) {
                throw new IOException("tags is not an array");
              }
              break;
            case "value":
              value = v == JsonToken.VALUE_NULL ? null : Base64.getDecoder().decode(text(p, v));
              break;
            default:
              p.skipChildren();
          }
        }
        if (Probes.NAME.equals(name)) probes.arrived(Probes.idOf(tagstring));
        out.add(new Metric(name, type, tagstring, tags, value));
      }
      if (t != JsonToken.END_ARRAY) throw new IOException("expected a metric object, got " + t);
    }
    long vb = 0;
    for (Metric m : out) vb += m.value() == null ? 0 : m.value().length;
    valueBytes.addAndGet(vb); // keeps the decoding observable, so the JIT cannot drop it
    return out.size();
  }

  private static String text(JsonParser p, JsonToken v) throws IOException {
    if (v == JsonToken.VALUE_NULL) return null;
    if (v != JsonToken.VALUE_STRING) throw new IOException("expected a string, got " + v);
    return p.getText();
  }

  /** Counts the top-level elements of a JSON array without building them. */
  static int count(byte[] json) throws IOException {
    try (JsonParser p = JSON.createParser(json)) {
      if (p.nextToken() != JsonToken.START_ARRAY) throw new IOException("not a JSON array");
      int n = 0;
      while (p.nextToken() == JsonToken.START_OBJECT) {
        p.skipChildren();
        n++;
      }
      return n;
    }
  }

  public static void main(String[] args) {
    int port = 8128;
    String host = "127.0.0.1";
    boolean print = false;
    boolean light = false;
    boolean grpc = false;
    boolean announce = false;
    int count = 1;
    int instances = Runtime.getRuntime().availableProcessors();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--port": port = Integer.parseInt(args[++i]); break;
        case "--host": host = args[++i]; break;
        case "--print": print = true; break;
        case "--light": light = true; break;
        case "--grpc": grpc = true; break;
        case "--announce": announce = true; break;
        case "--count": count = Integer.parseInt(args[++i]); break;
        case "--instances": instances = Integer.parseInt(args[++i]); break;
        default:
          System.err.println("usage: StandInGlobal [--host 127.0.0.1] [--port 8128 (0: free ports)]"
              + " [--count 1] [--instances <cores>] [--light] [--grpc] [--print] [--announce]");
          System.exit(2);
      }
    }
    Vertx vertx = Vertx.vertx();
    List<Integer> ports = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      StandInGlobal g = new StandInGlobal(print, light, grpc);
      int p;
      try {
        p = g.listen(vertx, host, port == 0 ? 0 : port + i, instances).await();
      } catch (RuntimeException e) {
        System.err.println("stand-in global cannot listen: " + e);
        System.exit(1);
        return;
      }
      ports.add(p);
      if (!announce) {
        System.out.printf(Locale.ROOT, "stand-in global listening on %s%s:%d (%s, %d event loops)%n",
            grpc ? "gRPC " : "http://", host, p, light ? "count only" : "decoding every metric", instances);
      }
    }
    if (announce) {
      StringBuilder sb = new StringBuilder("LISTENING ");
      for (int i = 0; i < ports.size(); i++) sb.append(i == 0 ? "" : ",").append(ports.get(i));
      System.out.println(sb);
      System.out.flush();
    }
  }
}
