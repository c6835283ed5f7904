package dev.veneur.proxy.support;

import forwardrpc.ForwardGrpcClient;
import forwardrpc.ForwardOuterClass.MetricList;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import metricpb.MetricOuterClass.CounterValue;
import metricpb.MetricOuterClass.Metric;
import metricpb.MetricOuterClass.Scope;
import metricpb.MetricOuterClass.Type;

/**
 * v14 locals' {@code grpc-single} forwarding as load: closed-loop senders, each calling
 * {@code SendMetrics} with {@link #METRICS_PER_CALL} counters of names never used twice
 * ({@code grpcload.<sender>.<call>.<i>}), counting the calls answered OK (the proxy then holds their
 * metrics) and the others. On its own Vert.x, so its event loop is not the test's.
 */
public final class GrpcLoad implements AutoCloseable {
  public static final int METRICS_PER_CALL = 1000;
  public static final String PREFIX = "grpcload.";

  public final AtomicLong accepted = new AtomicLong();
  public final AtomicLong refused = new AtomicLong();
  private final AtomicBoolean stopping = new AtomicBoolean();
  private final AtomicLong running = new AtomicLong();
  private final Vertx vertx = Vertx.vertx();
  private final ForwardGrpcClient stub;
  private final GrpcClient client;

  private GrpcLoad(int port) {
    client = GrpcClient.client(vertx);
    stub = ForwardGrpcClient.create(client, SocketAddress.inetSocketAddress(port, "127.0.0.1"));
  }

  public static GrpcLoad start(int port, int senders) {
    GrpcLoad l = new GrpcLoad(port);
    for (int s = 0; s < senders; s++) {
      l.running.incrementAndGet();
      int sender = s;
      l.vertx.runOnContext(v -> l.next(sender, 0));
    }
    return l;
  }

  static MetricList call(int sender, int seq) {
    MetricList.Builder b = MetricList.newBuilder();
    for (int i = 0; i < METRICS_PER_CALL; i++) {
      b.addMetrics(Metric.newBuilder().setName(PREFIX + sender + "." + seq + "." + i).addTags("load:grpc")
          .setType(Type.Counter).setScope(Scope.Global).setCounter(CounterValue.newBuilder().setValue(1)));
    }
    return b.build();
  }

  private void next(int sender, int seq) {
    if (stopping.get()) {
      running.decrementAndGet();
      return;
    }
    stub.sendMetrics(call(sender, seq)).onComplete(ar -> {
      if (ar.succeeded()) accepted.incrementAndGet();
      else refused.incrementAndGet();
      // A refused call is not sent again: its metrics were not accepted, and the counts say so.
      next(sender, seq + 1);
    });
  }

  /** Stops sending and waits for the calls in flight to end. */
  public void stop() {
    stopping.set(true);
    Await.until("gRPC load stopped", java.time.Duration.ofSeconds(60), () -> running.get() == 0);
  }

  @Override
  public void close() {
    stopping.set(true);
    client.close();
    vertx.close();
  }
}
