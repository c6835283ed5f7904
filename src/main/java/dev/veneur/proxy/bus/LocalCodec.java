package dev.veneur.proxy.bus;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.MessageCodec;

/**
 * Passes a message object by reference between verticles of one JVM. The proxy never clusters its
 * event bus, so encoding for the wire is refused rather than implemented.
 */
public final class LocalCodec<T> implements MessageCodec<T, T> {
  private final String name;

  private LocalCodec(Class<T> type) {
    this.name = "local:" + type.getName();
  }

  @Override
  public void encodeToWire(Buffer buffer, T t) {
    throw new UnsupportedOperationException(name + " is local-only");
  }

  @Override
  public T decodeFromWire(int pos, Buffer buffer) {
    throw new UnsupportedOperationException(name + " is local-only");
  }

  @Override
  public T transform(T t) {
    return t;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public byte systemCodecID() {
    return -1;
  }

  /** Registers the local codec for every message type of the proxy, once per Vertx. */
  public static void registerAll(Vertx vertx) {
    EventBus bus = vertx.eventBus();
    register(bus, MetricChunk.class);
    register(bus, Membership.class);
    register(bus, RouteQuery.class);
    register(bus, Health.class);
    register(bus, Exclusion.class);
    register(bus, Halves.class);
  }

  /** Registers the local codec for a message type defined outside this package. */
  public static <T> void register(EventBus bus, Class<T> type) {
    try {
      bus.registerDefaultCodec(type, new LocalCodec<>(type));
    } catch (IllegalStateException alreadyRegistered) {
      // A second proxy in the same Vertx (a test's restart) shares the first one's codecs.
    }
  }
}
