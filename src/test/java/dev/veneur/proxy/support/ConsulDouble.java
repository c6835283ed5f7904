package dev.veneur.proxy.support;

import dev.veneur.proxy.config.GoDuration;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * A Consul agent's {@code /v1/health/service/<name>} on a real port, answering with Consul's JSON
 * (the shape of {@code fixtures/veneur-v2.0.0/consul/}) and Consul's blocking-query rules: with
 * {@code ?index=N} it holds the request until its index exceeds N or {@code wait} runs out, and
 * every answer carries {@code X-Consul-Index}. {@code ?passing} keeps only instances whose checks
 * all pass. It can also fail: answer 500, hang, go down, or move its index backwards.
 *
 * <p>All state lives on the server's event-loop context; the test thread changes it through
 * {@link #run}, which waits until the change is applied.
 */
public final class ConsulDouble {
  public enum Mode { OK, ERROR_500, HANG }

  /** One registered instance of a service on one node. */
  public record Instance(String node, String nodeAddress, String serviceId, String serviceAddress,
      int port, String status) {
    public static Instance passing(String node, String address, int port) {
      return new Instance(node, address, "veneur", "", port, "passing");
    }

    public Instance withStatus(String s) {
      return new Instance(node, nodeAddress, serviceId, serviceAddress, port, s);
    }

    public Instance withServiceAddress(String a) {
      return new Instance(node, nodeAddress, serviceId, a, port, status);
    }
  }

  private final Vertx vertx;
  private final String service;
  private Context context;
  private HttpServer server;
  private int port;
  private long index = 1;
  private Mode mode = Mode.OK;
  private List<Instance> instances = new ArrayList<>();
  private final Map<String, List<Instance>> others = new java.util.concurrent.ConcurrentHashMap<>();
  private String rawAnswer;
  /** When positive, every answer is this many bytes of valid JSON, streamed (chunked), never held. */
  private long hugeAnswerBytes;
  /**
   * The most bytes of any one huge answer that reached the socket (writes that succeeded; the
   * proxy may close the connection well before the end). Counted on each write's success, not as it
   * is handed over. Writes to a connection the proxy has already closed fail at once while
   * {@code closed()} still reads false (the close is not yet processed on this event loop), so a
   * pump that counted what it handed over, and kept going while the write queue was not full, once
   * counted all 200 MiB of an answer (CI L24); printed outcomes showed the first failed write
   * with {@code closed()} false. The pump stops at the first failed write.
   */
  public final java.util.concurrent.atomic.AtomicLong hugeBytesWritten = new java.util.concurrent.atomic.AtomicLong();
  private final List<Runnable> blocked = new ArrayList<>();
  public final AtomicInteger requests = new AtomicInteger();
  public final AtomicInteger blockingRequests = new AtomicInteger();
  public volatile String lastToken;

  private ConsulDouble(Vertx vertx, String service) {
    this.vertx = vertx;
    this.service = service;
  }

  public static ConsulDouble start(Vertx vertx, String service) {
    ConsulDouble d = new ConsulDouble(vertx, service);
    d.context = vertx.getOrCreateContext();
    d.listen(0);
    return d;
  }

  public int port() {
    return port;
  }

  public String address() {
    return "127.0.0.1:" + port;
  }

  private void listen(int p) {
    CompletableFuture<Integer> bound = new CompletableFuture<>();
    context.runOnContext(v -> {
      server = vertx.createHttpServer();
      server.requestHandler(this::handle);
      server.listen(p, "127.0.0.1").onComplete(ar -> {
        if (ar.succeeded()) bound.complete(ar.result().actualPort());
        else bound.completeExceptionally(ar.cause());
      });
    });
    port = bound.join();
  }

  private void handle(HttpServerRequest req) {
    requests.incrementAndGet();
    String token = req.getHeader("X-Consul-Token");
    lastToken = token != null ? token : req.getParam("token");
    String prefix = "/v1/health/service/";
    if (!req.path().startsWith(prefix)) {
      req.response().setStatusCode(404).end("404 page not found\n");
      return;
    }
    if (mode == Mode.HANG) return;
    if (mode == Mode.ERROR_500) {
      req.response().setStatusCode(500).end("rpc error making call: No cluster leader");
      return;
    }
    String name = req.path().substring(prefix.length());
    boolean passing = req.params().contains("passing")
        && !"false".equalsIgnoreCase(req.getParam("passing"));
    long wanted = req.getParam("index") == null ? 0 : Long.parseLong(req.getParam("index"));
    if (wanted > 0 && index <= wanted) {
      blockingRequests.incrementAndGet();
      long waitMs = req.getParam("wait") == null ? 300_000
          : GoDuration.parse(req.getParam("wait")).toMillis();
      boolean[] answered = {false};
      Runnable answer = () -> {
        if (!answered[0]) {
          answered[0] = true;
          respond(req, name, passing);
        }
      };
      blocked.add(answer);
      vertx.setTimer(Math.max(1, waitMs), t -> {
        blocked.remove(answer);
        answer.run();
      });
      return;
    }
    respond(req, name, passing);
  }

  private void respond(HttpServerRequest req, String name, boolean passing) {
    if (req.response().ended() || req.response().closed()) return;
    if (hugeAnswerBytes > 0) {
      streamHuge(req, name, hugeAnswerBytes);
      return;
    }
    String body;
    if (rawAnswer != null) {
      body = rawAnswer;
    } else {
      JsonArray out = new JsonArray();
      List<Instance> of = name.equals(service) ? instances : others.getOrDefault(name, List.of());
      for (Instance i : of) {
        if (passing && !"passing".equals(i.status())) continue;
        out.add(entry(i, name));
      }
      body = out.encode();
    }
    req.response()
        .putHeader("Content-Type", "application/json")
        .putHeader("X-Consul-Index", Long.toString(index))
        .putHeader("X-Consul-Knownleader", "true")
        .putHeader("X-Consul-Lastcontact", "0")
        .end(body);
  }

  private JsonObject entry(Instance i) {
    return entry(i, service);
  }

  private JsonObject entry(Instance i, String service) {
    Map<String, Object> tagged = new LinkedHashMap<>();
    tagged.put("lan", i.nodeAddress());
    tagged.put("wan", i.nodeAddress());
    return new JsonObject()
        .put("Node", new JsonObject().put("ID", "").put("Node", i.node())
            .put("Address", i.nodeAddress()).put("Datacenter", "dc1")
            .put("TaggedAddresses", new JsonObject(tagged)).put("Meta", new JsonObject()))
        .put("Service", new JsonObject().put("ID", i.serviceId()).put("Service", service)
            .putNull("Tags").put("Address", i.serviceAddress()).put("Meta", new JsonObject())
            .put("Port", i.port()))
        .put("Checks", new JsonArray()
            .add(new JsonObject().put("Node", i.node()).put("CheckID", "serfHealth")
                .put("Name", "Serf Health Status").put("Status", "passing").put("Notes", "")
                .put("Output", "").put("ServiceID", "").put("ServiceName", ""))
            .add(new JsonObject().put("Node", i.node()).put("CheckID", "service:" + i.serviceId())
                .put("Name", "Service '" + service + "' check").put("Status", i.status())
                .put("Notes", "").put("Output", "").put("ServiceID", i.serviceId())
                .put("ServiceName", service)));
  }

  /**
   * A huge answer as a broken or hostile agent could send: the service's instances, followed by
   * copies of one instance until {@code size} bytes, chunked (no Content-Length), written as the
   * socket drains so the double never holds it.
   */
  private void streamHuge(HttpServerRequest req, String name, long size) {
    var resp = req.response().setChunked(true)
        .putHeader("Content-Type", "application/json")
        .putHeader("X-Consul-Index", Long.toString(index));
    StringBuilder head = new StringBuilder("[");
    if (name.equals(service)) {
      for (Instance i : instances) head.append(entry(i).encode()).append(',');
    }
    String one = entry(Instance.passing("filler", "192.0.2.1", 9)).encode() + ",";
    StringBuilder block = new StringBuilder(70_000);
    while (block.length() < 64 * 1024) block.append(one);
    io.vertx.core.buffer.Buffer chunk = io.vertx.core.buffer.Buffer.buffer(block.toString());
    long[] written = {0};
    java.util.concurrent.atomic.AtomicLong reached = new java.util.concurrent.atomic.AtomicLong();
    boolean[] broken = {false};
    Runnable[] pump = new Runnable[1];
    pump[0] = () -> {
      while (!broken[0] && !resp.closed() && !resp.ended() && !resp.writeQueueFull()) {
        io.vertx.core.buffer.Buffer next;
        if (written[0] == 0) {
          next = io.vertx.core.buffer.Buffer.buffer(head.toString());
        } else if (written[0] + chunk.length() < size) {
          next = chunk;
        } else {
          resp.end(entry(Instance.passing("filler", "192.0.2.1", 9)).encode() + "]");
          break;
        }
        int n = next.length();
        written[0] += n;
        resp.write(next).onComplete(ar -> {
          if (ar.failed()) broken[0] = true;
          else hugeBytesWritten.accumulateAndGet(reached.addAndGet(n), Math::max);
        });
      }
    };
    resp.drainHandler(v -> pump[0].run());
    pump[0].run();
  }

  /** Every answer from now on is {@code bytes} long (0: back to normal answers); wakes blocked queries. */
  public void setHugeAnswer(long bytes) {
    run(() -> {
      hugeAnswerBytes = bytes;
      index++;
      wake();
      return null;
    });
  }

  /** Runs a change on the double's context and waits until it is applied. */
  private <T> T run(Supplier<T> change) {
    CompletableFuture<T> done = new CompletableFuture<>();
    context.runOnContext(v -> {
      try {
        done.complete(change.get());
      } catch (Throwable t) {
        done.completeExceptionally(t);
      }
    });
    return done.join();
  }

  /** Instances of another service than the one this double was started for (a second ring's). */
  public void setInstances(String otherService, List<Instance> next) {
    run(() -> {
      others.put(otherService, new ArrayList<>(next));
      index++;
      wake();
      return null;
    });
  }

  /** Replaces the service's instances; blocked queries see the change at once. */
  public void setInstances(List<Instance> next) {
    run(() -> {
      instances = new ArrayList<>(next);
      rawAnswer = null;
      hugeAnswerBytes = 0;
      index++;
      wake();
      return null;
    });
  }

  /** Answers with this JSON text verbatim (e.g. a captured Consul response). */
  public void setRawAnswer(String json) {
    run(() -> {
      rawAnswer = json;
      index++;
      wake();
      return null;
    });
  }

  /** Moves the index (e.g. backwards, as after a Consul snapshot restore) without waking anyone. */
  public void setIndex(long i) {
    run(() -> {
      index = i;
      return null;
    });
  }

  /** Queries held open right now. */
  public int blockedNow() {
    return run(blocked::size);
  }

  public void mode(Mode m) {
    run(() -> {
      mode = m;
      return null;
    });
  }

  private void wake() {
    List<Runnable> now = new ArrayList<>(blocked);
    blocked.clear();
    now.forEach(Runnable::run);
  }

  /** Stops listening: connections are refused, as when the agent is down. */
  public void down() {
    run(() -> {
      blocked.clear();
      return null;
    });
    server.close().toCompletionStage().toCompletableFuture().join();
  }

  /** Listens again on the same port. */
  public void up() {
    listen(port);
  }

  public void close() {
    server.close().toCompletionStage().toCompletableFuture().join();
  }
}
