package dev.veneur.proxy.forward;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientOptions;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.common.GrpcStatus;
import java.util.function.Consumer;

/**
 * Talks to one v14 global over gRPC: one unary {@code forwardrpc.Forward/SendMetrics} per batch
 * (every v14 global takes it; v14.2's {@code SendMetricsV2} stream would be buffered whole by the
 * global anyway). As for HTTP ({@link GlobalClient}), one timer covers the whole exchange and
 * cancels the call (RST_STREAM) when it fires, and the answer is reported as an {@link
 * GlobalClient.Outcome} whose status is the HTTP status the same verdict has, so the forwarder's
 * rules (retry, split, eject) apply unchanged: OK is 200, INVALID_ARGUMENT 400 (the batch is split
 * until the refused metrics are alone), RESOURCE_EXHAUSTED 429 (413, split, when it says the message
 * is over the global's receive limit), UNAVAILABLE 503, DEADLINE_EXCEEDED
 * 504, UNIMPLEMENTED 501, anything else 500. The excerpt carries the gRPC status and message.
 *
 * <p>One per forwarder, used on its event loop only.
 */
final class GrpcGlobalClient {
  static final String SEND_METRICS = "forwardrpc.Forward/SendMetrics";

  private final Vertx vertx;
  private final GrpcClient client;
  private final SocketAddress address;

  GrpcGlobalClient(Vertx vertx, String hostPort, HttpClientOptions http) {
    this.vertx = vertx;
    int colon = hostPort.lastIndexOf(':');
    String host = hostPort.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
    this.address = SocketAddress.inetSocketAddress(Integer.parseInt(hostPort.substring(colon + 1)), host);
    // h2c with prior knowledge, as gRPC is spoken (over TLS, ALPN h2); the deadline is ours (below).
    this.client = GrpcClient.client(vertx, new GrpcClientOptions().setScheduleDeadlineAutomatically(false),
        new HttpClientOptions(http).setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
  }

  /** Sends {@code list} (a serialized MetricList). {@code onSlow} runs once if no answer by {@code slowMs}. */
  void send(Buffer list, long deadlineMs, long slowMs, Runnable onSlow, Consumer<GlobalClient.Outcome> done) {
    Exchange x = new Exchange(done);
    x.deadline = vertx.setTimer(Math.max(1, deadlineMs), t -> {
      x.deadline = -1;
      x.finish(0, null, true, "");
      if (x.request != null) x.request.cancel();
    });
    if (slowMs > 0 && onSlow != null) {
      x.slow = vertx.setTimer(slowMs, t -> {
        x.slow = -1;
        if (!x.done) onSlow.run();
      });
    }
    client.request(address).onComplete(ar -> {
      if (ar.failed()) {
        x.finish(0, ar.cause(), false, "");
        return;
      }
      GrpcClientRequest<Buffer, Buffer> req = ar.result();
      if (x.done) {
        // The deadline passed while a connection was being found: don't send at all.
        req.cancel();
        return;
      }
      x.request = req;
      req.fullMethodName(SEND_METRICS);
      req.exceptionHandler(e -> x.finish(0, e, false, ""));
      req.send(list).onComplete(resp -> {
        if (resp.failed()) {
          x.finish(0, resp.cause(), false, "");
          return;
        }
        var r = resp.result();
        r.handler(b -> { }); // google.protobuf.Empty: nothing to keep
        r.exceptionHandler(e -> x.finish(httpStatus(r.status(), r.statusMessage()), e, false,
            excerpt(r.status(), r.statusMessage())));
        r.end().onComplete(end -> {
          GrpcStatus st = r.status();
          if (st == null) {
            x.finish(0, end.cause(), false, "");
          } else {
            x.finish(httpStatus(st, r.statusMessage()), null, false, excerpt(st, r.statusMessage()));
          }
        });
      });
    });
  }

  /** An empty MetricList: a v14 global answers it OK without doing anything, which is a health check. */
  void probe(long deadlineMs, Consumer<GlobalClient.Outcome> done) {
    send(Buffer.buffer(), deadlineMs, 0, null, done);
  }

  void close() {
    client.close();
  }

  static int httpStatus(GrpcStatus s, String message) {
    if (s == null) return 0;
    return switch (s) {
      case OK -> 200;
      case INVALID_ARGUMENT -> 400;
      // grpc-go (a v14 global) refuses a message over its receive limit with RESOURCE_EXHAUSTED
      // "grpc: received message larger than max": too large, so split it (413); any other
      // RESOURCE_EXHAUSTED is overload, retried (429).
      case RESOURCE_EXHAUSTED -> message != null && message.contains("larger than max") ? 413 : 429;
      case UNAVAILABLE -> 503;
      case DEADLINE_EXCEEDED -> 504;
      case UNIMPLEMENTED -> 501;
      default -> 500;
    };
  }

  private static String excerpt(GrpcStatus s, String message) {
    if (s == null || s == GrpcStatus.OK) return "";
    String m = message == null ? "" : message.replace('\n', ' ');
    if (m.length() > 200) m = m.substring(0, 200);
    return "grpc-status " + s.name() + (m.isEmpty() ? "" : ": " + m);
  }

  private final class Exchange {
    final Consumer<GlobalClient.Outcome> callback;
    final long started = System.nanoTime();
    GrpcClientRequest<Buffer, Buffer> request;
    long deadline = -1;
    long slow = -1;
    boolean done;

    Exchange(Consumer<GlobalClient.Outcome> callback) {
      this.callback = callback;
    }

    void finish(int status, Throwable error, boolean timedOut, String excerpt) {
      if (done) return;
      done = true;
      if (deadline >= 0) vertx.cancelTimer(deadline);
      if (slow >= 0) vertx.cancelTimer(slow);
      callback.accept(new GlobalClient.Outcome(status, error, timedOut, System.nanoTime() - started, excerpt));
    }
  }
}
