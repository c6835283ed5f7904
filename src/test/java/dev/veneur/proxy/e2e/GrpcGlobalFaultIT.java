package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.GrpcLoad;
import dev.veneur.proxy.support.GrpcGlobal;
import dev.veneur.proxy.support.HealthPoller;
import dev.veneur.proxy.support.LoadSenders;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.TestProxy;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import metricpb.MetricOuterClass.Metric;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * gRPC globals that misbehave, beside one that works, under real JSON load into a real
 * {@code -Xmx256m} proxy process: one answers with an endless stream of messages and never ends
 * the call, one declares a 100 MB answer and trickles it, one resets every call, one closes the
 * connection on every call, one never answers, and one speaks only HTTP/1.1. The load comes by
 * both protocols at once: JSON bodies (translated to protobuf on the way out) and v14 locals'
 * {@code SendMetrics} calls (spliced into the globals' lists untouched, and routed again from the
 * ejected globals as JSON). The proxy must take each hostile global out of the ring and send its
 * share to the working one, which gets every metric answered 202 or OK exactly once, with the books balanced, the health check answered, and no OutOfMemoryError.
 */
@ExtendWith(VertxExtension.class)
class GrpcGlobalFaultIT {
  @TempDir Path dir;

  enum Fault { ENDLESS_ANSWER, HUGE_ANSWER, RESET, CLOSE, SILENT, HTTP1 }

  /** A hostile gRPC global; counts the calls it got. */
  private static HttpServer hostile(Vertx vertx, Fault fault, AtomicLong calls) {
    HttpServerOptions o = new HttpServerOptions().setHost("127.0.0.1").setPort(0)
        .setHttp2ClearTextEnabled(fault != Fault.HTTP1);
    HttpServer s = vertx.createHttpServer(o).requestHandler(req -> {
      calls.incrementAndGet();
      req.handler(b -> { }); // read and drop the request
      var resp = req.response();
      switch (fault) {
        case ENDLESS_ANSWER -> {
          resp.putHeader("content-type", "application/grpc").setChunked(true);
          byte[] msg = new byte[] {0, 0, 0, 0, 2, 0x08, 0x01};
          long t = vertx.setPeriodic(10, id -> {
            if (resp.closed() || resp.ended()) return;
            for (int i = 0; i < 50 && !resp.writeQueueFull(); i++) resp.write(Buffer.buffer(msg));
          });
          resp.closeHandler(v -> vertx.cancelTimer(t));
          req.connection().closeHandler(v -> vertx.cancelTimer(t));
        }
        case HUGE_ANSWER -> {
          resp.putHeader("content-type", "application/grpc").setChunked(true);
          resp.write(Buffer.buffer().appendByte((byte) 0).appendInt(100 << 20));
          long t = vertx.setPeriodic(5, id -> {
            if (resp.closed() || resp.ended()) return;
            if (!resp.writeQueueFull()) resp.write(Buffer.buffer(new byte[16 * 1024]));
          });
          resp.closeHandler(v -> vertx.cancelTimer(t));
          req.connection().closeHandler(v -> vertx.cancelTimer(t));
        }
        case RESET -> resp.reset(2); // INTERNAL_ERROR
        case CLOSE -> req.connection().close();
        case SILENT -> { }
        case HTTP1 -> resp.setStatusCode(404).end("not a gRPC server");
      }
    });
    s.listen().await();
    return s;
  }

  @Test
  void misbehavingGrpcGlobalsAreLeftAndTheWorkingOneGetsEverythingOnce(Vertx vertx) throws Exception {
    GrpcGlobal good = GrpcGlobal.start(vertx);
    // The hostile ones on event loops of their own: their writers must not slow the working one.
    Vertx hostileVertx = Vertx.vertx();
    List<HttpServer> bad = new ArrayList<>();
    List<String> members = new ArrayList<>(List.of(good.member()));
    AtomicLong hostileCalls = new AtomicLong();
    for (Fault f : Fault.values()) {
      HttpServer s = hostile(hostileVertx, f, hostileCalls);
      bad.add(s);
      members.add("127.0.0.1:" + s.actualPort());
    }
    int port = TestProxy.freePort();
    int admin = TestProxy.freePort();
    int grpcPort = TestProxy.freePort();
    Path file = dir.resolve("proxy.yaml");
    Files.writeString(file, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "admin_address: \"127.0.0.1:" + admin + "\"",
        "grpc_address: \"127.0.0.1:" + grpcPort + "\"",
        "grpc_forward_address: \"" + String.join(",", members) + "\"",
        // A call cut at its deadline is sent again (at-least-once): on this shared machine the working
        // global must have time to answer. The silent and endless ones are ejected for slowness
        // (no answer within eject_slow_after, slower than their peers) long before their deadline.
        "forward_timeout: \"20s\"",
        "eject_slow_after: \"3s\"",
        "forward_retry_budget: \"60s\"",
        "memory_wait_timeout: \"10s\"") + "\n");
    ProxyProcess p = ProxyProcess.start(file, Map.of(), "-Xmx256m");
    LoadSenders load = null;
    GrpcLoad grpcLoad = null;
    HealthPoller health = null;
    try {
      p.awaitServing(port, admin);
      health = HealthPoller.start(admin, Duration.ofMillis(250), Duration.ofSeconds(5));
      load = LoadSenders.start(port, 4, 10);
      grpcLoad = GrpcLoad.start(grpcPort, 2);
      LoadSenders running = load;
      GrpcLoad grpcRunning = grpcLoad;
      // Every hostile global met, then taken out of the ring.
      Await.until("every misbehaving global ejected", Duration.ofSeconds(90), Duration.ofMillis(250), () -> {
        JsonObject s = DebugState.get(port);
        return s != null && s.getJsonArray("routing").size() == 1 && running.accepted.get() > 20
            && grpcRunning.accepted.get() > 20;
      });
      assertEquals(List.of(good.member()), DebugState.get(port).getJsonArray("routing").getList());
      long before = load.accepted.get();
      long grpcBefore = grpcLoad.accepted.get();
      Await.until("load goes on", Duration.ofSeconds(30), () -> running.accepted.get() > before + 20
          && grpcRunning.accepted.get() > grpcBefore + 20);
      load.stop();
      grpcLoad.stop();
      health.close();
      assertTrue(DebugState.awaitIdle(p, port, Duration.ofSeconds(90)), "drained:\n" + DebugState.get(port));
      JsonObject state = DebugState.get(port);
      assertEquals(null, DebugState.accountingProblem(state, true));
      JsonObject ct = state.getJsonObject("counters");
      long accepted = load.accepted.get() * LoadSenders.METRICS_PER_BODY
          + grpcLoad.accepted.get() * GrpcLoad.METRICS_PER_CALL;
      Set<String> names = new HashSet<>();
      int dup = 0;
      for (Metric m : good.metrics) if (!names.add(m.getName() + "|" + m.getTagsList())) dup++;
      long byGrpc = good.metrics.stream().filter(m -> m.getName().startsWith(GrpcLoad.PREFIX)).count();
      System.out.printf("hostile gRPC globals: %d calls to them; %d metrics accepted (%d calls by gRPC, %d refused), "
          + "%d at the working global (%d by gRPC), %d duplicates; counters %s; health %s%n", hostileCalls.get(), accepted,
          grpcLoad.accepted.get(), grpcLoad.refused.get(), good.metrics.size(), byGrpc, dup, ct.encode(), health.summary());
      assertEquals(grpcLoad.accepted.get() * GrpcLoad.METRICS_PER_CALL, byGrpc, "every metric of every call answered OK");
      assertTrue(hostileCalls.get() >= Fault.values().length - 1, "the hostile globals were tried: " + hostileCalls.get());
      assertEquals(accepted, ct.getLong("received"), ct.encode());
      assertEquals(0L, ct.getLong("dropped_total"), ct.encode());
      assertEquals(accepted, ct.getLong("forwarded"), ct.encode());
      assertEquals(accepted, names.size(), "every accepted metric at the working global");
      assertEquals(0, dup, "none twice");
      assertTrue(health.failures.isEmpty(), "health checks failed: " + health.summary());
      for (String worse : List.of("OutOfMemoryError", "FATAL", "has been blocked for")) {
        assertTrue(p.output.stream().noneMatch(l -> l.contains(worse)), "the proxy logged " + worse + ":\n" + p.log());
      }
      assertEquals(0, p.terminate(Duration.ofSeconds(30)));
    } finally {
      if (load != null) load.requestStop();
      if (grpcLoad != null) grpcLoad.close();
      if (health != null) health.close();
      p.saveLog("GrpcGlobalFaultIT");
      p.kill();
      p.process.waitFor();
      if (load != null) load.stop();
      for (HttpServer s : bad) s.close();
      hostileVertx.close();
      good.stop();
    }
  }
}
