package dev.veneur.proxy.support;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.zip.Inflater;
import java.util.zip.InflaterInputStream;

/**
 * A global Veneur double for volume: inflates every {@code POST /import}, counts the metrics by
 * name prefix (the name up to its first '.'), keeps nothing else, answers 202. Streaming parse on
 * worker threads, so millions of metrics cost the test little memory.
 *
 * <p>A body that is not a complete zlib stream of a JSON array of objects is answered 400 and
 * recorded in {@link #problems}: the proxy must never send one.
 */
public final class CountingGlobal {
  private static final JsonFactory JSON = JsonFactory.builder()
      .disable(StreamReadFeature.AUTO_CLOSE_SOURCE) // the zlib stream's end is checked after the JSON
      .streamReadConstraints(StreamReadConstraints.builder().maxStringLength(64 << 20).build()).build();

  private final Map<String, LongAdder> byPrefix = new ConcurrentHashMap<>();
  public final AtomicLong posts = new AtomicLong();
  public final AtomicLong metrics = new AtomicLong();
  public final AtomicLong compressedBytes = new AtomicLong();
  public final List<String> problems = new CopyOnWriteArrayList<>();
  private HttpServer server;
  private int port;

  private static volatile boolean warm;

  /**
   * Runs the inflate-and-count path on a realistic body a few hundred times, once per JVM, so
   * JIT compilation happens before the proxy's traffic arrives rather than during a measured
   * burst (on 2 shared cores that otherwise costs the first seconds of the test).
   */
  public static synchronized void warmUp() {
    if (warm) return;
    byte[] body = AttackBodies.prefixed(AttackBodies.captured(), "warm", 1000, 0);
    CountingGlobal scratch = new CountingGlobal();
    try {
      for (int i = 0; i < 300; i++) scratch.count(body, "deflate");
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    warm = true;
  }

  public static CountingGlobal start(Vertx vertx) {
    warmUp();
    CountingGlobal g = new CountingGlobal();
    g.server = vertx.createHttpServer().requestHandler(req -> {
      if ("/healthcheck".equals(req.path())) {
        req.response().setStatusCode(200).end();
        return;
      }
      if (!"/import".equals(req.path())) {
        req.response().setStatusCode(404).end();
        return;
      }
      String encoding = req.getHeader("Content-Encoding");
      req.body().onSuccess(body -> vertx.executeBlocking(() -> g.count(body.getBytes(), encoding), false)
          .onComplete(ar -> {
            if (ar.succeeded()) {
              req.response().setStatusCode(202).end();
            } else {
              if (g.problems.size() < 20) g.problems.add(String.valueOf(ar.cause()));
              req.response().setStatusCode(400).end(String.valueOf(ar.cause().getMessage()));
            }
          }));
    });
    g.port = g.server.listen(0, "127.0.0.1").await().actualPort();
    return g;
  }

  private Void count(byte[] raw, String encoding) throws IOException {
    Map<String, Long> local = new java.util.HashMap<>();
    long n = 0;
    Inflater inf = new Inflater();
    try {
      InputStream in;
      if ("deflate".equals(encoding)) in = new InflaterInputStream(new ByteArrayInputStream(raw), inf, 64 * 1024);
      else if (encoding == null || encoding.isEmpty() || "identity".equals(encoding)) in = new ByteArrayInputStream(raw);
      else throw new IOException("unexpected Content-Encoding " + encoding);
      try (JsonParser p = JSON.createParser(in)) {
        if (p.nextToken() != JsonToken.START_ARRAY) throw new IOException("body is not a JSON array");
        JsonToken t;
        while ((t = p.nextToken()) == JsonToken.START_OBJECT) {
          String name = null;
          while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken v = p.nextToken();
            if ("name".equals(field) && v == JsonToken.VALUE_STRING) name = p.getText();
            else p.skipChildren();
          }
          local.merge(prefixOf(name), 1L, Long::sum);
          n++;
        }
        if (t != JsonToken.END_ARRAY) throw new IOException("unexpected " + t + " in the array");
        if (p.nextToken() != null) throw new IOException("data after the array");
      }
      if ("deflate".equals(encoding)) {
        // The parser stops at ']'; the zlib stream must end there too, checksum included.
        byte[] rest = in.readAllBytes();
        if (rest.length > 0 || !inf.finished()) {
          throw new IOException("zlib stream does not end with the JSON (" + rest.length + " more bytes)");
        }
        if (inf.getRemaining() > 0) throw new IOException(inf.getRemaining() + " bytes after the zlib stream");
      }
    } finally {
      inf.end();
    }
    local.forEach((k, v) -> byPrefix.computeIfAbsent(k, x -> new LongAdder()).add(v));
    metrics.addAndGet(n);
    posts.incrementAndGet();
    compressedBytes.addAndGet(raw.length);
    return null;
  }

  /** The name up to its first '.', shortened (with its length) past 24 characters. */
  public static String prefixOf(String name) {
    if (name == null) return "(no name)";
    int dot = name.indexOf('.');
    String p = dot < 0 ? name : name.substring(0, dot);
    return p.length() > 24 ? p.substring(0, 24) + "...(" + p.length() + " chars)" : p;
  }

  public long count(String prefix) {
    LongAdder a = byPrefix.get(prefix);
    return a == null ? 0 : a.sum();
  }

  /** Prefix -> metrics received, sorted. */
  public Map<String, Long> snapshot() {
    Map<String, Long> m = new TreeMap<>();
    byPrefix.forEach((k, v) -> m.put(k, v.sum()));
    return m;
  }

  public String url() {
    return "http://127.0.0.1:" + port;
  }

  public void stop() {
    server.close().await();
  }

  /** Sum of several globals' counts by prefix. */
  public static Map<String, Long> merged(List<CountingGlobal> globals) {
    Map<String, Long> m = new TreeMap<>();
    for (CountingGlobal g : globals) g.snapshot().forEach((k, v) -> m.merge(k, v, Long::sum));
    return m;
  }
}
