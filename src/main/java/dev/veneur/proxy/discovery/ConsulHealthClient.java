package dev.veneur.proxy.discovery;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.veneur.proxy.config.LogText;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Consul's {@code /v1/health/service/<name>?passing} as a blocking query, read up to a size cap.
 *
 * <p>Why not the Vert.x Consul client: it reads a whole answer into memory, however large, and
 * then decodes it into a tree of objects several times its size; a 200 MB answer (a broken or
 * hostile agent, a service with garbage registrations) ended the proxy with an
 * {@code OutOfMemoryError}. Here the body is collected only up to {@code consul_max_answer_bytes}
 * (a larger answer, declared or as it arrives, fails the query and closes its connection), and
 * decoded on a worker thread by a streaming parser that keeps only the fields a member needs.
 */
final class ConsulHealthClient {
  private static final JsonFactory JSON = new JsonFactory();

  /** One instance as Consul lists it, with only what a member needs. */
  record Instance(String node, String nodeAddress, String serviceId, String serviceAddress, long port,
      boolean allPassing) {}

  /** One answer: Consul's index ({@code X-Consul-Index}) and the instances. */
  record Answer(long index, List<Instance> instances) {}

  /** An answer larger than the cap. */
  static final class TooLarge extends IOException {
    private static final long serialVersionUID = 1L;

    TooLarge(String message) {
      super(message);
    }
  }

  private final Vertx vertx;
  private final HttpClient http;
  private final ConsulEndpoint endpoint;
  private final long maxBytes;
  private final long timeoutMs;

  ConsulHealthClient(Vertx vertx, ConsulEndpoint endpoint, long maxBytes, long timeoutMs) {
    this.vertx = vertx;
    this.endpoint = endpoint;
    this.maxBytes = maxBytes;
    this.timeoutMs = timeoutMs;
    this.http = vertx.createHttpClient(new HttpClientOptions()
        .setSsl(endpoint.ssl())
        .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, Math.min(timeoutMs, 10_000))));
  }

  Future<Answer> healthyInstances(String service, long index, long waitMs) {
    String uri = "/v1/health/service/" + URLEncoder.encode(service, StandardCharsets.UTF_8).replace("+", "%20")
        + "?passing=true&index=" + index + "&wait=" + waitMs + "ms";
    RequestOptions opts = new RequestOptions().setMethod(HttpMethod.GET)
        .setHost(endpoint.host()).setPort(endpoint.port()).setURI(uri);
    if (!endpoint.token().isEmpty()) opts.putHeader("X-Consul-Token", endpoint.token());
    Promise<Body> body = Promise.promise();
    io.vertx.core.http.HttpClientRequest[] sent = {null};
    // One deadline over the whole exchange, from before a connection is taken: the blocking wait
    // plus Consul's jitter plus slack.
    long[] timer = {vertx.setTimer(timeoutMs, t -> {
      if (body.tryFail("no complete answer within " + timeoutMs + " ms") && sent[0] != null) abort(sent[0]);
    })};
    http.request(opts).onComplete(rq -> {
      if (rq.failed()) {
        body.tryFail(rq.cause());
        return;
      }
      var req = rq.result();
      sent[0] = req;
      if (body.future().isComplete()) {
        abort(req);
        return;
      }
      req.send().onComplete(rs -> {
        if (rs.failed()) {
          body.tryFail(rs.cause());
          return;
        }
        var resp = rs.result();
        String declared = resp.getHeader("Content-Length");
        if (declared != null) {
          try {
            if (Long.parseLong(declared.trim()) > maxBytes) {
              if (body.tryFail(tooLarge())) abort(req);
              return;
            }
          } catch (NumberFormatException ignored) {
            // Counted as it arrives instead.
          }
        }
        Body b = new Body(resp.statusCode(), resp.getHeader("X-Consul-Index"));
        resp.handler(chunk -> {
          if (body.future().isComplete()) return;
          if (!b.append(chunk.getBytes(), maxBytes)) {
            b.drop();
            if (body.tryFail(tooLarge())) abort(req);
          }
        });
        resp.exceptionHandler(body::tryFail);
        resp.endHandler(v -> body.tryComplete(b));
      });
    });
    return body.future()
        .andThen(x -> vertx.cancelTimer(timer[0]))
        .compose(b -> {
          if (b.status != 200) {
            String text = new String(b.bytes, 0, Math.min(b.length, 200), StandardCharsets.UTF_8).strip();
            return Future.failedFuture("Consul answered HTTP " + b.status + ": " + LogText.escape(text));
          }
          long next;
          try {
            next = b.index == null ? 0 : Long.parseLong(b.index.trim());
          } catch (NumberFormatException e) {
            return Future.failedFuture("Consul's X-Consul-Index is not a number: " + LogText.escape(b.index));
          }
          // Decoding a large answer takes a while: on a worker, not an event loop.
          return vertx.executeBlocking(() -> new Answer(next, parse(b.bytes, b.length)), false);
        });
  }

  /** Gives up an exchange: its connection is closed, so the rest of the answer is never read. */
  private static void abort(io.vertx.core.http.HttpClientRequest req) {
    req.reset();
    if (req.connection() != null) req.connection().close();
  }

  private TooLarge tooLarge() {
    return new TooLarge("Consul's answer is larger than consul_max_answer_bytes (" + maxBytes
        + " bytes); not read");
  }

  /** An answer's bytes, grown by doubling up to the cap. */
  private static final class Body {
    final int status;
    final String index;
    byte[] bytes = new byte[8192];
    int length;

    Body(int status, String index) {
      this.status = status;
      this.index = index;
    }

    boolean append(byte[] chunk, long max) {
      if ((long) length + chunk.length > max) return false;
      if (length + chunk.length > bytes.length) {
        long want = Math.max((long) bytes.length * 2, (long) length + chunk.length);
        bytes = Arrays.copyOf(bytes, (int) Math.min(want, max));
      }
      System.arraycopy(chunk, 0, bytes, length, chunk.length);
      length += chunk.length;
      return true;
    }

    void drop() {
      bytes = new byte[0];
      length = 0;
    }
  }

  /**
   * Consul's JSON: an array of {@code {"Node": {...}, "Service": {...}, "Checks": [...]}}. Only the
   * fields a member needs are kept; the rest is skipped without building anything.
   */
  static List<Instance> parse(byte[] bytes, int length) throws IOException {
    List<Instance> out = new ArrayList<>();
    try (JsonParser p = JSON.createParser(bytes, 0, length)) {
      JsonToken t = p.nextToken();
      if (t == JsonToken.VALUE_NULL) return out;
      if (t != JsonToken.START_ARRAY) throw new IOException("Consul's answer is not a JSON array");
      while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
        if (t != JsonToken.START_OBJECT) {
          p.skipChildren();
          continue;
        }
        String node = null, nodeAddress = null, serviceId = null, serviceAddress = null;
        long port = 0;
        boolean hasService = false;
        boolean passing = true;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
          String field = p.currentName();
          JsonToken v = p.nextToken();
          if ("Node".equals(field) && v == JsonToken.START_OBJECT) {
            while (p.nextToken() == JsonToken.FIELD_NAME) {
              String f = p.currentName();
              JsonToken fv = p.nextToken();
              if ("Node".equals(f) && fv == JsonToken.VALUE_STRING) node = p.getText();
              else if ("Address".equals(f) && fv == JsonToken.VALUE_STRING) nodeAddress = p.getText();
              else p.skipChildren();
            }
          } else if ("Service".equals(field) && v == JsonToken.START_OBJECT) {
            hasService = true;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
              String f = p.currentName();
              JsonToken fv = p.nextToken();
              if ("ID".equals(f) && fv == JsonToken.VALUE_STRING) serviceId = p.getText();
              else if ("Address".equals(f) && fv == JsonToken.VALUE_STRING) serviceAddress = p.getText();
              else if ("Port".equals(f) && fv == JsonToken.VALUE_NUMBER_INT) {
                // A port past a long is as wrong as 70000: the member check refuses it.
                port = p.getNumberType() == JsonParser.NumberType.BIG_INTEGER ? Long.MAX_VALUE : p.getLongValue();
              } else p.skipChildren();
            }
          } else if ("Checks".equals(field) && v == JsonToken.START_ARRAY) {
            JsonToken ct;
            while ((ct = p.nextToken()) != JsonToken.END_ARRAY) {
              if (ct != JsonToken.START_OBJECT) {
                p.skipChildren();
                continue;
              }
              while (p.nextToken() == JsonToken.FIELD_NAME) {
                String f = p.currentName();
                JsonToken fv = p.nextToken();
                if ("Status".equals(f) && fv == JsonToken.VALUE_STRING) passing &= "passing".equals(p.getText());
                else p.skipChildren();
              }
            }
          } else {
            p.skipChildren();
          }
        }
        if (hasService) out.add(new Instance(node, nodeAddress, serviceId, serviceAddress, port, passing));
      }
    }
    return out;
  }

  void close() {
    http.close();
  }
}
