package dev.veneur.proxy.support;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.zip.GZIPInputStream;

/** A real HTTP endpoint standing in for Sentry: records each envelope POSTed to it, inflated. */
public final class SentryStandIn {
  public final List<String> envelopes = new CopyOnWriteArrayList<>();
  public final List<String> paths = new CopyOnWriteArrayList<>();
  private final HttpServer server;

  private SentryStandIn(HttpServer server) {
    this.server = server;
  }

  public static SentryStandIn start(Vertx vertx) {
    HttpServer server = vertx.createHttpServer();
    SentryStandIn s = new SentryStandIn(server);
    server.requestHandler(req -> req.body().onSuccess(body -> {
      byte[] raw = body.getBytes();
      String text;
      try {
        text = "gzip".equalsIgnoreCase(req.getHeader("Content-Encoding"))
            ? new String(new GZIPInputStream(new ByteArrayInputStream(raw)).readAllBytes(), StandardCharsets.UTF_8)
            : new String(raw, StandardCharsets.UTF_8);
      } catch (IOException e) {
        text = "undecodable: " + e;
      }
      s.paths.add(req.path());
      s.envelopes.add(text);
      req.response().setStatusCode(200).putHeader("Content-Type", "application/json").end("{}");
    }));
    server.listen(0, "127.0.0.1").await();
    return s;
  }

  /** A DSN pointing at this stand-in, project 42. */
  public String dsn() {
    return "http://0123456789abcdef0123456789abcdef@127.0.0.1:" + server.actualPort() + "/42";
  }

  public void close() {
    server.close().await();
  }
}
