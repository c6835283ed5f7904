package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.FaultyGlobal;
import dev.veneur.proxy.support.HealthPoller;
import dev.veneur.proxy.support.Ledger;
import dev.veneur.proxy.support.LoadSenders;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetSocket;
import io.vertx.junit5.VertxExtension;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The gRPC listener's own hostile inputs against a real {@code -Xmx256m} proxy process beside a
 * real JSON load: messages declaring 100 MB, 10,000 concurrent streams each holding part of a
 * 4 MB message, a SendMetricsV2 stream that never ends, and 500 connections that send the HTTP/2
 * preface and nothing more. The proxy must answer each with a gRPC status, never run out of memory
 * or block an event loop, keep its health checks answered, and keep its books: every JSON metric
 * answered 202 delivered exactly once, received = forwarded + dropped, and a valid call after the
 * attacks goes through.
 */
@ExtendWith(VertxExtension.class)
class GrpcAttackIT {
  @TempDir Path dir;

  /** A gRPC call's status, from its trailers (or its headers, for a trailers-only answer). */
  private static String status(HttpClientResponse r) {
    String s = r.getTrailer("grpc-status");
    if (s == null) s = r.getHeader("grpc-status");
    return s == null ? "http " + r.statusCode() : s;
  }

  /**
   * The status of a call whose request may still be sending: the proxy answers and then resets
   * the rest of the stream, which fails the client's read of the end though the status arrived.
   */
  private static Future<String> answer(io.vertx.core.http.HttpClientRequest req) {
    return req.response().compose(r -> r.end().map(v -> status(r)).recover(e -> Future.succeededFuture(status(r))));
  }

  private static final byte[] PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes();

  /** A Metric message: counter {@code name} = 1, with one tag. */
  private static byte[] metric(String name) {
    byte[] n = name.getBytes();
    byte[] tag = "attack:grpc".getBytes();
    Buffer b = Buffer.buffer();
    b.appendByte((byte) 0x0a).appendByte((byte) n.length).appendBytes(n);
    b.appendByte((byte) 0x12).appendByte((byte) tag.length).appendBytes(tag);
    // type Counter (0) is the default; counter value 1; scope Global (2).
    b.appendByte((byte) 0x2a).appendByte((byte) 2).appendByte((byte) 0x08).appendByte((byte) 1);
    b.appendByte((byte) 0x48).appendByte((byte) 2);
    return b.getBytes();
  }

  private static Buffer framed(byte[] message) {
    return Buffer.buffer().appendByte((byte) 0).appendInt(message.length).appendBytes(message);
  }

  @Test
  void grpcAttacksBesideRealLoadCostNothingElse(Vertx vertx) throws Exception {
    Ledger la = new Ledger();
    Ledger lb = new Ledger();
    FaultyGlobal a = FaultyGlobal.start(vertx, FaultyGlobal.Mode.HEALTHY, la, null);
    FaultyGlobal b = FaultyGlobal.start(vertx, FaultyGlobal.Mode.HEALTHY, lb, null);
    int port = TestProxy.freePort();
    int grpc = TestProxy.freePort();
    int admin = TestProxy.freePort();
    Path file = dir.resolve("proxy.yaml");
    Files.writeString(file, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "grpc_address: \"127.0.0.1:" + grpc + "\"",
        "admin_address: \"127.0.0.1:" + admin + "\"",
        "memory_wait_timeout: \"3s\"",
        // Long enough for the flood below to fill the budget on a loaded machine (its 10,000 streams
        // take seconds to open), so its calls meet the memory bound, not only their deadline.
        "http_request_timeout: \"12s\"",
        // Longer than the call deadline, as by default (60 s against 10 s): a stalled call is ended
        // by its deadline with a status, not by its connection's idle timeout.
        "http_idle_timeout: \"20s\"",
        "forward_addresses:",
        "  - \"" + a.url() + "\"",
        "  - \"" + b.url() + "\"") + "\n");
    ProxyProcess p = ProxyProcess.start(file, Map.of(), "-Xmx256m");
    LoadSenders load = null;
    HealthPoller health = null;
    List<HttpClient> clients = new ArrayList<>();
    List<NetSocket> prefaceOnly = new ArrayList<>();
    NetClient net = vertx.createNetClient();
    try {
      p.awaitServing(port, admin);
      load = LoadSenders.start(port, 4, 10);
      LoadSenders running = load;
      Await.until("load flows", Duration.ofSeconds(30), () -> running.accepted.get() > 5);
      health = HealthPoller.start(admin, Duration.ofMillis(250), Duration.ofSeconds(5));
      Map<String, AtomicLong> statuses = new ConcurrentHashMap<>();

      // 1. Fifty calls declaring 100 MB messages, each pushing 2 MB of them: refused, never held.
      HttpClient big = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
          .setHttp2ClearTextUpgrade(false), new PoolOptions().setHttp2MaxSize(5));
      clients.add(big);
      List<Future<String>> bigCalls = new ArrayList<>();
      for (int i = 0; i < 50; i++) {
        bigCalls.add(big.request(HttpMethod.POST, grpc, "127.0.0.1", "/forwardrpc.Forward/SendMetrics").compose(req -> {
          req.setChunked(true).putHeader("content-type", "application/grpc").putHeader("te", "trailers");
          req.write(Buffer.buffer().appendByte((byte) 0).appendInt(100 << 20));
          for (int k = 0; k < 32; k++) req.write(Buffer.buffer(new byte[64 * 1024]));
          return answer(req);
        }).recover(e -> Future.succeededFuture("error " + e.getClass().getSimpleName())));
      }
      for (Future<String> f : bigCalls) statuses.computeIfAbsent("big " + f.await(60, TimeUnit.SECONDS), k -> new AtomicLong()).incrementAndGet();
      assertEquals(50, statuses.getOrDefault("big 8", new AtomicLong()).get(), "RESOURCE_EXHAUSTED (8) for each: " + statuses);

      // 1b. Tiny frames: 20 calls each declare a 4,000,000-byte message and send it one byte per
      // DATA frame (one write per event-loop turn, so each goes out as a frame of its own) until
      // answered. Held as one buffer per frame, a byte would cost ~150 bytes of heap against the 2
      // the budget counts, and a few million such frames fill a 256 MiB heap: held in staging
      // buffers, they cost about their bytes.
      HttpClient tiny = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
          .setHttp2ClearTextUpgrade(false), new PoolOptions().setHttp2MaxSize(4));
      clients.add(tiny);
      AtomicLong tinyFrames = new AtomicLong();
      Buffer oneByte = Buffer.buffer(new byte[] {7});
      List<Future<String>> tinyCalls = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        tinyCalls.add(tiny.request(HttpMethod.POST, grpc, "127.0.0.1", "/forwardrpc.Forward/SendMetrics").compose(req -> {
          req.setChunked(true).putHeader("content-type", "application/grpc").putHeader("te", "trailers");
          req.write(Buffer.buffer().appendByte((byte) 0).appendInt(4_000_000));
          io.vertx.core.Context here = Vertx.currentContext();
          AtomicBoolean answered = new AtomicBoolean();
          Runnable[] pump = new Runnable[1];
          pump[0] = () -> {
            if (answered.get()) return;
            if (req.writeQueueFull()) {
              req.drainHandler(v -> here.runOnContext(x -> pump[0].run()));
              return;
            }
            req.write(oneByte).onFailure(e -> answered.set(true));
            tinyFrames.incrementAndGet();
            here.runOnContext(x -> pump[0].run());
          };
          pump[0].run();
          return answer(req).onComplete(r -> answered.set(true));
        }).recover(e -> Future.succeededFuture("error " + e)));
      }
      for (Future<String> f : tinyCalls) statuses.computeIfAbsent("tiny " + f.await(60, TimeUnit.SECONDS), k -> new AtomicLong()).incrementAndGet();
      System.out.printf("grpc tiny frames: %d one-byte DATA frames sent, statuses %s%n", tinyFrames.get(), statuses);
      assertTrue(tinyFrames.get() > 100_000, "the tiny-frame attack sent " + tinyFrames.get() + " frames");
      // Each is answered DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED; a client that keeps sending after
      // its answer floods the stream it was reset on, and Netty's HTTP/2 stack may close that
      // connection (an error here). None is accepted.
      assertTrue(statuses.getOrDefault("tiny 4", new AtomicLong()).get()
          + statuses.getOrDefault("tiny 8", new AtomicLong()).get() > 0, "tiny-frame calls answered: " + statuses);
      assertEquals(0, statuses.getOrDefault("tiny 0", new AtomicLong()).get(), "a tiny-frame call accepted: " + statuses);
      assertTrue(p.process.isAlive(), "the proxy is up after the tiny frames:\n" + p.log());

      // 2. 10,000 streams on 100 connections (100 each, grpc_max_concurrent_streams), each declaring a
      // 4,000,000-byte message and sending 64 KiB of it (one shared zero buffer), then nothing: 40 GB
      // declared and 640 MB sent (1.3 GB in the budget's count, a received byte costing two until its
      // message is whole) against a ~100 MB budget.
      List<Future<String>> flood = new ArrayList<>();
      Buffer zeros = Buffer.buffer(new byte[32 * 1024]);
      for (int c = 0; c < 100; c++) {
        HttpClient h = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
            .setHttp2ClearTextUpgrade(false).setHttp2MultiplexingLimit(100), new PoolOptions().setHttp2MaxSize(1));
        clients.add(h);
        for (int s = 0; s < 100; s++) {
          flood.add(h.request(HttpMethod.POST, grpc, "127.0.0.1", "/forwardrpc.Forward/SendMetrics").compose(req -> {
            req.setChunked(true).putHeader("content-type", "application/grpc").putHeader("te", "trailers");
            req.write(Buffer.buffer().appendByte((byte) 0).appendInt(4_000_000));
            for (int k = 0; k < 2; k++) req.write(zeros);
            return answer(req);
          }).recover(e -> Future.succeededFuture("error " + e.getClass().getSimpleName())));
        }
      }
      // While they hold on, until the last is answered: the budget holds, the proxy answers its
      // health checks. (Sampling only the first seconds saw the slow start, not the fill.)
      long peakUsed = 0;
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (System.nanoTime() < until && !flood.stream().allMatch(Future::isComplete)) {
        JsonObject s = DebugState.get(admin);
        if (s != null) peakUsed = Math.max(peakUsed, s.getJsonObject("memory").getLong("used_bytes"));
        java.util.concurrent.locks.LockSupport.parkNanos(100_000_000L);
      }
      for (Future<String> f : flood) statuses.computeIfAbsent("flood " + f.await(60, TimeUnit.SECONDS), k -> new AtomicLong()).incrementAndGet();
      long floodAnswered = statuses.entrySet().stream().filter(e -> e.getKey().startsWith("flood ")
          && (e.getKey().equals("flood 8") || e.getKey().equals("flood 4"))).mapToLong(e -> e.getValue().get()).sum();
      // Each is refused for memory (RESOURCE_EXHAUSTED) or time (DEADLINE_EXCEEDED, 4); a stream the
      // proxy's HTTP/2 stack reset for exceeding its limits shows as an error.
      assertTrue(floodAnswered > 0, "the flood got gRPC answers: " + statuses);
      long budgetBytes = DebugState.get(admin).getJsonObject("memory").getLong("budget_bytes");
      assertTrue(peakUsed > budgetBytes / 2, "the flood filled the budget (peak " + (peakUsed >> 20) + " MiB)");
      assertTrue(statuses.getOrDefault("flood 8", new AtomicLong()).get() > 0, "calls held out by memory: " + statuses);

      // 3. A SendMetricsV2 stream that never ends: a metric every 2 ms until the proxy ends it.
      HttpClient endless = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
          .setHttp2ClearTextUpgrade(false));
      clients.add(endless);
      AtomicBoolean stop = new AtomicBoolean();
      AtomicLong streamed = new AtomicLong();
      Future<String> endlessCall = endless.request(HttpMethod.POST, grpc, "127.0.0.1", "/forwardrpc.Forward/SendMetricsV2")
          .compose(req -> {
            req.setChunked(true).putHeader("content-type", "application/grpc").putHeader("te", "trailers");
            req.sendHead();
            vertx.setPeriodic(2, t -> {
              if (stop.get()) {
                vertx.cancelTimer(t);
                return;
              }
              req.write(framed(metric("endless.m" + streamed.incrementAndGet()))).onFailure(e -> stop.set(true));
            });
            return answer(req);
          }).recover(e -> Future.succeededFuture("error " + e));
      String endlessStatus = endlessCall.await(60, TimeUnit.SECONDS);
      stop.set(true);
      assertEquals("4", endlessStatus, "DEADLINE_EXCEEDED for the endless stream; the others: " + statuses);

      // 4. 500 connections that send the HTTP/2 preface and nothing more.
      for (int i = 0; i < 500; i++) {
        NetSocket s = net.connect(grpc, "127.0.0.1").await(10, TimeUnit.SECONDS);
        s.write(Buffer.buffer(PREFACE));
        prefaceOnly.add(s);
      }
      Await.until("the idle preface-only connections closed by the proxy", Duration.ofSeconds(30), () -> {
        JsonObject s = DebugState.get(admin);
        return s != null && s.getJsonObject("descriptors").getInteger("open") < 400;
      });

      // 5. A valid call still goes through.
      HttpClient ok = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
          .setHttp2ClearTextUpgrade(false));
      clients.add(ok);
      Buffer list = Buffer.buffer();
      for (int i = 0; i < 100; i++) {
        byte[] m = metric("after.m" + i);
        list.appendByte((byte) 0x0a).appendByte((byte) m.length).appendBytes(m);
      }
      String okStatus = ok.request(HttpMethod.POST, grpc, "127.0.0.1", "/forwardrpc.Forward/SendMetrics")
          .compose(req -> req.putHeader("content-type", "application/grpc").putHeader("te", "trailers")
              .send(framed(list.getBytes())).compose(r -> r.end().map(v -> status(r)).recover(e -> Future.succeededFuture(status(r)))))
          .await(30, TimeUnit.SECONDS);
      assertEquals("0", okStatus, "a valid SendMetrics after the attacks");

      long accepted0 = running.accepted.get();
      Await.until("JSON load goes on after the attacks", Duration.ofSeconds(30), () -> running.accepted.get() > accepted0 + 10);
      load.stop();
      health.close();
      assertTrue(p.process.isAlive(), "the proxy is up:\n" + p.log());
      assertTrue(DebugState.awaitIdle(p, port, Duration.ofSeconds(30)), "drained");
      JsonObject state = DebugState.get(port);
      assertEquals(null, DebugState.accountingProblem(state, true));
      long missing = 0;
      long duplicated = 0;
      for (LoadSenders.SenderLog log : load.logs) {
        for (int seq = 0; seq < log.status.size(); seq++) {
          if (log.status.get(seq) != 202) continue;
          for (int i = 0; i < LoadSenders.METRICS_PER_BODY; i++) {
            int n = la.count(log.sender, seq, i) + lb.count(log.sender, seq, i);
            if (n == 0) missing++;
            if (n > 1) duplicated++;
          }
        }
      }
      assertEquals(0, missing, "JSON metrics answered 202 but not delivered");
      assertEquals(0, duplicated, "JSON metrics delivered twice");
      JsonObject ct = state.getJsonObject("counters");
      long grpcDelivered = la.foreign.get() + lb.foreign.get();
      // The endless stream's parts handed on before its deadline, and the 100 after the attacks.
      assertTrue(grpcDelivered >= 100, "gRPC metrics delivered: " + grpcDelivered);
      assertEquals(load.accepted.get() * LoadSenders.METRICS_PER_BODY + grpcDelivered, ct.getLong("received"), ct.encode());
      assertEquals(la.total.get() + lb.total.get(), ct.getLong("forwarded"));
      assertEquals(0L, ct.getLong("dropped_total"), ct.encode());
      System.out.printf("grpc attacks: statuses %s; peak budget use %d MiB of %d; endless stream sent %d, delivered "
          + "gRPC %d; health %s%n", statuses, peakUsed >> 20,
          state.getJsonObject("memory").getLong("budget_bytes") >> 20, streamed.get(), grpcDelivered, health.summary());
      assertTrue(peakUsed <= state.getJsonObject("memory").getLong("budget_bytes") + (16L << 20),
          "budget use " + peakUsed + " stayed near its bound");
      assertTrue(health.failures.isEmpty(), "health checks failed: " + health.summary());
      for (String bad : List.of("OutOfMemoryError", "FATAL", "has been blocked for", "Thread blocked")) {
        assertTrue(p.output.stream().noneMatch(l -> l.contains(bad)), "the proxy logged " + bad + ":\n" + p.log());
      }
      assertEquals(0, p.terminate(Duration.ofSeconds(30)));
    } finally {
      if (load != null) load.requestStop();
      if (health != null) health.close();
      for (NetSocket s : prefaceOnly) s.close();
      net.close();
      for (HttpClient c : clients) c.close();
      p.saveLog("GrpcAttackIT");
      p.kill();
      p.process.waitFor();
      if (load != null) load.stop();
      a.stop();
      b.stop();
    }
  }
}
