package dev.veneur.proxy.support;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.zip.GZIPInputStream;
import java.util.zip.InflaterInputStream;

/**
 * A stand-in for Datadog's metrics API, for real Veneur servers to flush to: point a server's
 * Datadog sink at {@link #url()} (v2: {@code datadog_api_hostname}; v14: a {@code metric_sinks}
 * entry of kind {@code datadog} with {@code api_hostname}). It answers every POST 202 and keeps each
 * point of {@code POST /api/v1/series} (deflate, gzip or plain JSON). A Veneur server's sink moves
 * its own {@code hostname} (or a {@code host:X} tag) into the point's {@code host}, which tells
 * which server flushed a point when several share one stand-in.
 *
 * <p>Used instead of a server's {@code flush_file} because a v2.0.0 global writes counters there as
 * {@code +Inf} (its interval is 0 in that plugin).
 */
public final class DatadogSink implements AutoCloseable {
  /**
   * One point as Veneur's Datadog sink sends it. For a counter ({@code type: rate}) {@code value} is
   * the sum divided by {@code interval} seconds: {@link #sum()} undoes that.
   */
  public record Point(String metric, String host, List<String> tags, String type, double interval,
      long timestamp, double value) {
    /** The point's contribution to a counter's sum: a rate times its interval, else the value. */
    public double sum() {
      return "rate".equals(type) && interval > 0 ? value * interval : value;
    }
  }

  public final List<Point> points = new CopyOnWriteArrayList<>();
  /** Bodies that were not a readable series POST, with why: a test can assert there are none. */
  public final List<String> unreadable = new CopyOnWriteArrayList<>();
  public final AtomicInteger seriesPosts = new AtomicInteger();
  public final AtomicInteger otherPosts = new AtomicInteger();
  private final HttpServer server;
  private final ExecutorService executor;

  private DatadogSink(HttpServer server, ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  public static DatadogSink start() throws IOException {
    HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 64);
    ExecutorService ex = Executors.newFixedThreadPool(2, r -> {
      Thread t = new Thread(r, "datadog-sink");
      t.setDaemon(true);
      return t;
    });
    DatadogSink sink = new DatadogSink(s, ex);
    s.createContext("/", sink::handle);
    s.setExecutor(ex);
    s.start();
    return sink;
  }

  /** For {@code datadog_api_hostname} / {@code api_hostname}: a scheme, host and port, no path. */
  public String url() {
    return "http://127.0.0.1:" + server.getAddress().getPort();
  }

  private void handle(HttpExchange ex) throws IOException {
    try (ex) {
      byte[] body = read(ex);
      if ("POST".equals(ex.getRequestMethod()) && ex.getRequestURI().getPath().equals("/api/v1/series")) {
        seriesPosts.incrementAndGet();
        try {
          JsonArray series = new JsonObject(new String(body, java.nio.charset.StandardCharsets.UTF_8)).getJsonArray("series");
          for (Object o : series) {
            JsonObject s = (JsonObject) o;
            List<String> tags = new ArrayList<>();
            JsonArray t = s.getJsonArray("tags");
            if (t != null) for (Object tag : t) tags.add(String.valueOf(tag));
            for (Object p : s.getJsonArray("points")) {
              JsonArray pt = (JsonArray) p;
              points.add(new Point(s.getString("metric"), s.getString("host", ""), List.copyOf(tags),
                  s.getString("type", ""), s.getValue("interval") instanceof Number n ? n.doubleValue() : 0,
                  ((Number) pt.getValue(0)).longValue(), ((Number) pt.getValue(1)).doubleValue()));
            }
          }
        } catch (RuntimeException e) {
          unreadable.add(e + " in " + new String(body, 0, Math.min(body.length, 300), java.nio.charset.StandardCharsets.UTF_8));
        }
      } else {
        otherPosts.incrementAndGet();
      }
      ex.sendResponseHeaders(202, 2);
      ex.getResponseBody().write("{}".getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }
  }

  private byte[] read(HttpExchange ex) throws IOException {
    String enc = ex.getRequestHeaders().getFirst("Content-Encoding");
    InputStream in = ex.getRequestBody();
    if ("deflate".equalsIgnoreCase(enc)) in = new InflaterInputStream(in);
    else if ("gzip".equalsIgnoreCase(enc)) in = new GZIPInputStream(in);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    in.transferTo(out);
    return out.toByteArray();
  }

  public List<Point> points(Predicate<Point> which) {
    return points.stream().filter(which).toList();
  }

  /** The points of {@code metric} flushed by the server whose hostname is {@code host}. */
  public List<Point> points(String host, String metric) {
    return points(p -> p.host.equals(host) && p.metric.equals(metric));
  }

  /** The points of {@code metric} flushed by any of {@code hosts}. */
  public List<Point> points(java.util.Collection<String> hosts, String metric) {
    return points(p -> hosts.contains(p.host) && p.metric.equals(metric));
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
