package dev.veneur.proxy.support;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * A global Veneur double on a real socket whose behaviour the test switches at any time
 * ({@link #mode}). Whatever the mode, every complete {@code POST /import} body is inflated and each
 * metric's name handed to the {@code received} recorder BEFORE the double misbehaves, so a test can
 * tell whether a batch reached this global even when the proxy never learnt that it did. Names of
 * metrics whose {@code 202} status line went out go to the {@code confirmed} recorder: a Veneur
 * global writes its status once it has taken the batch, so those are the ones the proxy may (and
 * must) count as forwarded to this global, even when the rest of the answer trickles or never
 * ends.
 *
 * <p>Modes, for {@code /import} and {@code /healthcheck} alike (a sick global is sick on every
 * path, so the proxy's health probe cannot re-admit it while it misbehaves):
 *
 * <ul>
 *   <li>{@link Mode#HEALTHY}: answers 202 (200 for /healthcheck) at once.
 *   <li>{@link Mode#SLOW}: answers after {@link #slowMs}.
 *   <li>{@link Mode#TRICKLE}: sends the status line and headers at once, with a Content-Length of
 *       {@value #TRICKLE_LENGTH}, then one body byte every {@link #trickleMs}: an answer whose
 *       headers came quickly and whose body never finishes in any useful time.
 *   <li>{@link Mode#ENDLESS}: sends 202 headers with a chunked body and keeps writing chunks of
 *       {@value #ENDLESS_CHUNK} bytes every {@value #ENDLESS_EVERY_MS} ms (respecting back-pressure)
 *       until the connection closes.
 *   <li>{@link Mode#HANG}: reads the request, never answers.
 *   <li>{@link Mode#RESET}: reads the request, then closes the connection at once. The server's
 *       sockets have {@code SO_LINGER 0}, so the close is a TCP RST, not a FIN.
 * </ul>
 *
 * <p>Built on Vert.x {@link HttpServer}: its public API is enough for every misbehaviour above
 * ({@code writeHead()} then partial writes against a declared Content-Length, chunked writes, a
 * connection closed with SO_LINGER 0), so no hand-written HTTP parser is needed on a NetServer.
 */
public final class FaultyGlobal {
  public enum Mode { HEALTHY, SLOW, TRICKLE, ENDLESS, HANG, RESET }

  /** Receives metric names as the double sees them. */
  @FunctionalInterface
  public interface Recorder {
    void metric(String name);
  }

  /** A recorder that keeps a count per name: fine for small tests, heavy for load tests. */
  public static final class NameCounts implements Recorder {
    public final Map<String, AtomicInteger> counts = new ConcurrentHashMap<>();

    @Override
    public void metric(String name) {
      counts.computeIfAbsent(name, n -> new AtomicInteger()).incrementAndGet();
    }

    public int count(String name) {
      AtomicInteger c = counts.get(name);
      return c == null ? 0 : c.get();
    }
  }

  public static final int TRICKLE_LENGTH = 1000;
  public static final int ENDLESS_CHUNK = 16 * 1024;
  public static final int ENDLESS_EVERY_MS = 5;
  private static final JsonFactory JSON = new JsonFactory();

  public final AtomicReference<Mode> mode = new AtomicReference<>(Mode.HEALTHY);
  /** Delay of every answer in {@link Mode#SLOW}. */
  public volatile long slowMs = 5000;
  /** Pause between body bytes in {@link Mode#TRICKLE}. */
  public volatile long trickleMs = 2000;

  /** Complete {@code POST /import} requests read (whatever the answer). */
  public final AtomicLong posts = new AtomicLong();
  /** Metrics in those requests. */
  public final AtomicLong metricsReceived = new AtomicLong();
  /** Metrics in requests whose 202 was written out in full. */
  public final AtomicLong metricsConfirmed = new AtomicLong();
  /** Requests whose connection closed before their answer was complete (the proxy gave up). */
  public final AtomicLong abandoned = new AtomicLong();
  /** Connections closed by this double in {@link Mode#RESET}. */
  public final AtomicLong resets = new AtomicLong();
  /** /import requests the double has read and not yet finished answering (or never will). */
  public final AtomicInteger unanswered = new AtomicInteger();
  public final AtomicLong healthchecks = new AtomicLong();
  /** Bodies that did not inflate or parse: the proxy sent something a global cannot read. */
  public final AtomicLong undecodable = new AtomicLong();
  public final AtomicReference<String> firstDecodeError = new AtomicReference<>();

  private final Recorder received;
  private final Recorder confirmed;
  private final AtomicBoolean closed = new AtomicBoolean();
  private Vertx vertx;
  private HttpServer server;
  private int port;

  private FaultyGlobal(Recorder received, Recorder confirmed) {
    this.received = received;
    this.confirmed = confirmed;
  }

  public static FaultyGlobal start(Vertx vertx, Mode mode, Recorder received, Recorder confirmed) {
    FaultyGlobal g = new FaultyGlobal(received == null ? n -> { } : received,
        confirmed == null ? n -> { } : confirmed);
    g.vertx = vertx;
    g.mode.set(mode);
    g.server = vertx.createHttpServer(new HttpServerOptions()
        .setSoLinger(0)
        .setDecompressionSupported(false));
    g.server.requestHandler(g::handle);
    g.port = g.server.listen(0, "127.0.0.1").await().actualPort();
    return g;
  }

  public static FaultyGlobal start(Vertx vertx, Mode mode) {
    return start(vertx, mode, new NameCounts(), null);
  }

  public String url() {
    return "http://127.0.0.1:" + port;
  }

  public int port() {
    return port;
  }

  public void stop() {
    closed.set(true);
    server.close().await();
  }

  private void handle(HttpServerRequest req) {
    if ("/healthcheck".equals(req.path())) {
      healthchecks.incrementAndGet();
      req.body().onSuccess(b -> answer(req, 200, null));
      return;
    }
    if (!"/import".equals(req.path()) || req.method() != io.vertx.core.http.HttpMethod.POST) {
      req.response().setStatusCode(404).end();
      return;
    }
    req.body().onSuccess(body -> {
      posts.incrementAndGet();
      List<String> names = new ArrayList<>();
      try {
        decode(req.getHeader("Content-Encoding"), body, names);
      } catch (IOException | DataFormatException | RuntimeException e) {
        undecodable.incrementAndGet();
        firstDecodeError.compareAndSet(null, e.toString());
        req.response().setStatusCode(400).end("undecodable body: " + e + "\n");
        return;
      }
      metricsReceived.addAndGet(names.size());
      for (String n : names) received.metric(n);
      unanswered.incrementAndGet();
      answer(req, 202, names);
    });
  }

  /** Answers as the current mode says; {@code names} are confirmed once a full 2xx went out. */
  private void answer(HttpServerRequest req, int status, List<String> names) {
    HttpServerResponse resp = req.response();
    AtomicBoolean done = new AtomicBoolean();
    resp.closeHandler(v -> {
      if (names != null && done.compareAndSet(false, true)) {
        abandoned.incrementAndGet();
        unanswered.decrementAndGet();
      }
    });
    switch (mode.get()) {
      case HEALTHY -> finish(resp, status, names, done);
      case SLOW -> vertx.setTimer(Math.max(1, slowMs), t -> finish(resp, status, names, done));
      case TRICKLE -> {
        resp.setStatusCode(status).putHeader("Content-Length", Integer.toString(TRICKLE_LENGTH));
        resp.writeHead().onSuccess(v -> confirm(names, done));
        trickle(resp, TRICKLE_LENGTH);
      }
      case ENDLESS -> {
        resp.setStatusCode(status).setChunked(true);
        resp.writeHead().onSuccess(v -> confirm(names, done));
        endless(resp, Buffer.buffer(new byte[ENDLESS_CHUNK]));
      }
      case HANG -> { }
      case RESET -> {
        resets.incrementAndGet();
        req.connection().close();
      }
    }
  }

  private void finish(HttpServerResponse resp, int status, List<String> names, AtomicBoolean done) {
    if (resp.closed() || resp.ended()) return;
    resp.setStatusCode(status).end().onSuccess(v -> confirm(names, done));
  }

  private void confirm(List<String> names, AtomicBoolean done) {
    if (names != null && done.compareAndSet(false, true)) {
      unanswered.decrementAndGet();
      metricsConfirmed.addAndGet(names.size());
      for (String n : names) confirmed.metric(n);
    }
  }

  private void trickle(HttpServerResponse resp, int left) {
    if (closed.get() || resp.closed() || left == 0) return;
    vertx.setTimer(Math.max(1, trickleMs), t -> {
      if (closed.get() || resp.closed()) return;
      resp.write(Buffer.buffer(" "));
      trickle(resp, left - 1);
    });
  }

  private void endless(HttpServerResponse resp, Buffer chunk) {
    if (closed.get() || resp.closed()) return;
    if (resp.writeQueueFull()) {
      resp.drainHandler(v -> endless(resp, chunk));
      return;
    }
    resp.write(chunk);
    vertx.setTimer(ENDLESS_EVERY_MS, t -> endless(resp, chunk));
  }

  private static void decode(String encoding, Buffer body, List<String> names)
      throws IOException, DataFormatException {
    byte[] json = "deflate".equalsIgnoreCase(encoding) ? inflate(body.getBytes()) : body.getBytes();
    try (JsonParser p = JSON.createParser(json)) {
      if (p.nextToken() != JsonToken.START_ARRAY) throw new IOException("not a JSON array");
      JsonToken t;
      while ((t = p.nextToken()) == JsonToken.START_OBJECT) {
        String name = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
          String field = p.currentName();
          JsonToken v = p.nextToken();
          if ("name".equals(field) && v == JsonToken.VALUE_STRING) name = p.getText();
          else p.skipChildren();
        }
        // A metric without a name is one a real global imports (as a series named ""): recorded as "".
        names.add(name == null ? "" : name);
      }
      if (t != JsonToken.END_ARRAY) throw new IOException("unexpected " + t + " in the array");
      if (p.nextToken() != null) throw new IOException("data after the array");
    }
  }

  private static byte[] inflate(byte[] raw) throws DataFormatException {
    Inflater inf = new Inflater();
    try {
      inf.setInput(raw);
      ByteArrayOutputStream out = new ByteArrayOutputStream(raw.length * 5);
      byte[] buf = new byte[64 * 1024];
      while (!inf.finished()) {
        int n = inf.inflate(buf);
        if (n == 0 && (inf.needsInput() || inf.needsDictionary())) {
          throw new DataFormatException("truncated zlib stream");
        }
        out.write(buf, 0, n);
      }
      if (inf.getRemaining() > 0) throw new DataFormatException(inf.getRemaining() + " bytes after the zlib stream");
      return out.toByteArray();
    } finally {
      inf.end();
    }
  }
}
