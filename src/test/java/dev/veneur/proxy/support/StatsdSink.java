package dev.veneur.proxy.support;

import io.vertx.core.Vertx;
import io.vertx.core.datagram.DatagramSocket;
import io.vertx.core.datagram.DatagramSocketOptions;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** A real UDP socket that records every StatsD line it receives. */
public final class StatsdSink {
  public final List<Line> lines = new CopyOnWriteArrayList<>();
  private final DatagramSocket socket;
  private final int port;

  /** One parsed DogStatsD line: {@code name:value|type|#tags}. */
  public record Line(String name, double value, String type, String tags, String raw) {}

  private StatsdSink(DatagramSocket socket, int port) {
    this.socket = socket;
    this.port = port;
  }

  public static StatsdSink start(Vertx vertx) {
    DatagramSocket s = vertx.createDatagramSocket(new DatagramSocketOptions());
    StatsdSink sink = new StatsdSink(s, s.listen(0, "127.0.0.1").await().localAddress().port());
    s.handler(p -> {
      for (String raw : p.data().toString(StandardCharsets.UTF_8).split("\n")) {
        if (raw.isBlank()) continue;
        String[] parts = raw.split("\\|");
        int colon = parts[0].lastIndexOf(':');
        String tags = parts.length > 2 && parts[2].startsWith("#") ? parts[2].substring(1) : "";
        sink.lines.add(new Line(parts[0].substring(0, colon),
            Double.parseDouble(parts[0].substring(colon + 1)), parts[1], tags, raw));
      }
    });
    return sink;
  }

  public String address() {
    return "127.0.0.1:" + port;
  }

  /** Sum of every counter line with this name and exactly these tags ("" for none). */
  public double counterSum(String name, String tags) {
    double sum = 0;
    for (Line l : lines) {
      if (l.name.equals(name) && l.tags.equals(tags) && l.type.equals("c")) sum += l.value;
    }
    return sum;
  }

  /** The last value of a gauge with this name and these tags, or NaN. */
  public double lastGauge(String name, String tags) {
    double v = Double.NaN;
    for (Line l : lines) {
      if (l.name.equals(name) && l.tags.equals(tags) && l.type.equals("g")) v = l.value;
    }
    return v;
  }

  public boolean seen(String name) {
    for (Line l : lines) if (l.name.equals(name)) return true;
    return false;
  }

  public boolean seenTagged(String name, String tagPrefix) {
    for (Line l : lines) if (l.name.equals(name) && l.tags.startsWith(tagPrefix)) return true;
    return false;
  }

  public void close() {
    socket.close();
  }
}
