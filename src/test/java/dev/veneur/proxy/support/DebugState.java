package dev.veneur.proxy.support;

import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** {@code GET /debug/state} of a proxy on 127.0.0.1, and the accounting checks on it. */
public final class DebugState {
  private static final HttpClient HTTP = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(3)).build();

  private DebugState() {}

  /** The state, or null if the proxy did not answer 200 with JSON within 5 s. */
  public static JsonObject get(int port) {
    try {
      HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/debug/state"))
          .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
      return r.statusCode() == 200 ? new JsonObject(r.body()) : null;
    } catch (Exception e) {
      return null;
    }
  }

  public static long counter(JsonObject state, String name) {
    Object v = state.getJsonObject("counters", new JsonObject()).getValue(name);
    return v instanceof Number ? ((Number) v).longValue() : -1;
  }

  /** counters.request_errors.&lt;cause&gt;, 0 if absent, -1 if the section is missing. */
  public static long requestErrors(JsonObject state, String cause) {
    JsonObject e = state.getJsonObject("counters", new JsonObject()).getJsonObject("request_errors");
    if (e == null) return -1;
    Object v = e.getValue(cause);
    return v instanceof Number ? ((Number) v).longValue() : 0;
  }

  /**
   * Null when {@code accounting.received == accounting.forwarded_plus_dropped_plus_queued} and
   * {@code counters.queued} is 0 (and, if {@code expectIdle} is false, merely not negative);
   * otherwise what is wrong, with the numbers.
   */
  public static String accountingProblem(JsonObject state, boolean expectIdle) {
    if (state == null) return "GET /debug/state did not answer";
    JsonObject acc = state.getJsonObject("accounting");
    JsonObject c = state.getJsonObject("counters");
    if (acc == null || c == null) return "/debug/state lacks 'accounting' or 'counters': " + state.encode();
    long received = acc.getLong("received", -1L);
    long sum = acc.getLong("forwarded_plus_dropped_plus_queued", -1L);
    long queued = c.getLong("queued", -1L);
    String numbers = "received " + received + ", forwarded " + c.getValue("forwarded") + ", dropped "
        + c.getValue("dropped_total") + " " + c.getValue("dropped") + ", queued " + queued
        + ", queued_bytes " + c.getValue("queued_bytes");
    if (received != sum) return "received != forwarded + dropped + queued: " + received + " vs " + sum + " (" + numbers + ")";
    if (queued < 0) return "queued is negative (" + numbers + ")";
    if (expectIdle && queued != 0) return "queued is not 0 once idle (" + numbers + ")";
    return null;
  }

  /**
   * Waits until the proxy reports nothing queued: false if it does not within {@code max}, its
   * process ends, or /debug/state goes unanswered three times in a row (5 s each).
   */
  public static boolean awaitIdle(ProxyProcess p, int port, Duration max) {
    long deadline = System.nanoTime() + max.toNanos();
    int unanswered = 0;
    while (System.nanoTime() < deadline && p.process.isAlive() && unanswered < 3) {
      JsonObject s = get(port);
      if (s != null && counter(s, "queued") == 0) return true;
      unanswered = s == null ? unanswered + 1 : 0;
      java.util.concurrent.locks.LockSupport.parkNanos(100_000_000L);
    }
    return false;
  }
}
