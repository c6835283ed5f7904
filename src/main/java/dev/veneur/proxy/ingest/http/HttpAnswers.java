package dev.veneur.proxy.ingest.http;

import dev.veneur.proxy.core.Timers;
import dev.veneur.proxy.ingest.ImportRefusal;
import dev.veneur.proxy.ingest.Refusals;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.util.List;

/**
 * How an HTTP request is refused: a status with a one-line reason (and {@code Retry-After} for a
 * 503), counted and logged by cause; when the rest of the body will not be read, the connection
 * closes after a lingering read. Also judges a request's framing, before anything else is done
 * with it.
 */
final class HttpAnswers {
  /** A lingering close ends after this long or this many discarded bytes, whichever first. */
  static final long LINGER_MS = 1_000;
  static final long LINGER_BYTES = 64L << 20;

  private final Timers timers;
  private final Refusals refusals;

  HttpAnswers(Timers timers, Refusals refusals) {
    this.timers = timers;
    this.refusals = refusals;
  }

  /**
   * Why a request's framing is refused, or null when it is sound. A message framed two ways (or in
   * a way HTTP/1.1 does not define) is how requests are smuggled past a proxy in front: it is
   * refused and its connection closed, as RFC 9112 section 6.1 asks.
   *
   * @param framedTwoWays the connection's guard saw both framings on the wire
   */
  static String badFraming(HttpServerRequest req, boolean framedTwoWays) {
    List<String> te = req.headers().getAll("Transfer-Encoding");
    if (framedTwoWays || !te.isEmpty() && req.headers().contains("Content-Length")) {
      return "a request with both Content-Length and Transfer-Encoding is refused";
    }
    if (te.isEmpty()) return null;
    if (te.size() > 1 || !"chunked".equalsIgnoreCase(te.get(0).trim())) {
      return "unsupported Transfer-Encoding '" + String.join(", ", te) + "': only chunked";
    }
    return null;
  }

  /**
   * Answers {@code r}, counted and logged by cause.
   *
   * @param close the body is not read to its end: the connection closes after the answer
   */
  void refuse(HttpServerRequest req, ImportRefusal r, boolean close) {
    refusals.refused(r.cause, "refused /import from " + req.remoteAddress() + ": " + r.status + " "
        + r.reason() + " (" + r.cause + ")");
    HttpServerResponse resp = req.response();
    if (resp.ended() || resp.closed()) return;
    resp.setStatusCode(r.status).putHeader("Content-Type", "text/plain; charset=utf-8");
    if (r.status == 503) resp.putHeader("Retry-After", "1");
    if (close) resp.putHeader("Connection", "close");
    resp.end(r.reason() + "\n").onComplete(v -> {
      if (close) lingerThenClose(req);
    });
  }

  /**
   * The rest of the body is unread and will not be kept: close the connection. Not at once: a
   * sender still writing its body would get a TCP reset and might lose the answer it has not read
   * yet. So the rest is read and thrown away (nothing is held) for a short while, as HTTP servers
   * do on a "lingering close", and the connection closes when the body ends or the time is up.
   */
  void lingerThenClose(HttpServerRequest req) {
    HttpConnection conn = req.connection();
    if (req.isEnded()) {
      conn.close();
      return;
    }
    long[] discarded = new long[1];
    long timer = timers.set(LINGER_MS, conn::close);
    req.handler(b -> {
      discarded[0] += b.length();
      if (discarded[0] > LINGER_BYTES) conn.close();
    });
    req.endHandler(v -> {
      timers.cancel(timer);
      conn.close();
    });
    req.exceptionHandler(e -> timers.cancel(timer));
    req.resume();
  }
}
