package dev.veneur.proxy.tools;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * A stand-in for a global Veneur, for the demo and the benchmark: accepts {@code POST /import}
 * like a global does (deflate or plain JSON), counts the metrics it receives, optionally prints
 * them, and reports its counts at {@code GET /stats}.
 *
 * <p>{@code java -cp veneur-proxy.jar dev.veneur.proxy.tools.StandInGlobal --port 8128 [--print]}
 */
public final class StandInGlobal {
  private static final JsonFactory JSON = new JsonFactory();

  private final AtomicLong metrics = new AtomicLong();
  private final AtomicLong posts = new AtomicLong();
  private final AtomicLong bytes = new AtomicLong();
  private final boolean print;
  private HttpServer server;

  public StandInGlobal(boolean print) {
    this.print = print;
  }

  public Future<Integer> listen(Vertx vertx, String host, int port) {
    server = vertx.createHttpServer();
    server.requestHandler(this::handle);
    return server.listen(port, host).map(HttpServer::actualPort);
  }

  public long metrics() {
    return metrics.get();
  }

  public long posts() {
    return posts.get();
  }

  private void handle(HttpServerRequest req) {
    if ("/stats".equals(req.path())) {
      req.response().putHeader("Content-Type", "application/json").end(new JsonObject()
          .put("metrics", metrics.get()).put("posts", posts.get()).put("bytes", bytes.get()).encode());
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
        byte[] json = "deflate".equalsIgnoreCase(req.getHeader("Content-Encoding"))
            ? inflate(body) : body.getBytes();
        int n = count(json);
        metrics.addAndGet(n);
        posts.incrementAndGet();
        bytes.addAndGet(body.length());
        if (print) {
          System.out.println("global received " + n + " metrics (" + body.length() + " bytes "
              + req.getHeader("Content-Encoding") + "):");
          System.out.println("  " + new String(json, java.nio.charset.StandardCharsets.UTF_8));
        }
        req.response().setStatusCode(202).end();
      } catch (IOException | DataFormatException e) {
        req.response().setStatusCode(400).end(e.getMessage());
      }
    });
  }

  static byte[] inflate(Buffer body) throws DataFormatException {
    Inflater inf = new Inflater();
    try {
      inf.setInput(body.getBytes());
      ByteArrayOutputStream out = new ByteArrayOutputStream(body.length() * 4);
      byte[] buf = new byte[64 * 1024];
      while (!inf.finished()) {
        int n = inf.inflate(buf);
        if (n == 0 && inf.needsInput()) throw new DataFormatException("truncated deflate stream");
        out.write(buf, 0, n);
      }
      return out.toByteArray();
    } finally {
      inf.end();
    }
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
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--port": port = Integer.parseInt(args[++i]); break;
        case "--host": host = args[++i]; break;
        case "--print": print = true; break;
        default:
          System.err.println("usage: StandInGlobal [--host 127.0.0.1] [--port 8128] [--print]");
          System.exit(2);
      }
    }
    Vertx vertx = Vertx.vertx();
    StandInGlobal g = new StandInGlobal(print);
    int p = g.listen(vertx, host, port).await();
    System.out.println("stand-in global listening on http://" + host + ":" + p);
  }
}
