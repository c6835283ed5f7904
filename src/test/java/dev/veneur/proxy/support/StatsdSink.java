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
  /** Every datagram as received, whole. */
  public final List<byte[]> packets = new CopyOnWriteArrayList<>();
  private final DatagramSocket socket;
  private final int port;

  /** One parsed DogStatsD line: {@code name:value|type[|@rate][|#tags]}; rate 1 when absent. */
  public record Line(String name, double value, String type, String tags, String raw, double rate) {}

  private StatsdSink(DatagramSocket socket, int port) {
    this.socket = socket;
    this.port = port;
  }

  public static StatsdSink start(Vertx vertx) {
    DatagramSocket s = vertx.createDatagramSocket(new DatagramSocketOptions());
    StatsdSink sink = new StatsdSink(s, s.listen(0, "127.0.0.1").await().localAddress().port());
    s.handler(p -> {
      sink.packets.add(p.data().getBytes());
      for (String raw : p.data().toString(StandardCharsets.UTF_8).split("\n")) {
        if (raw.isBlank()) continue;
        String[] parts = raw.split("\\|");
        int colon = parts[0].lastIndexOf(':');
        String tags = "";
        double rate = 1.0;
        for (int i = 2; i < parts.length; i++) {
          if (parts[i].startsWith("#")) tags = parts[i].substring(1);
          else if (parts[i].startsWith("@")) rate = Double.parseDouble(parts[i].substring(1));
        }
        sink.lines.add(new Line(parts[0].substring(0, colon),
            Double.parseDouble(parts[0].substring(colon + 1)), parts[1], tags, raw, rate));
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

  /** Every line with this name, tags and wire type, in arrival order. */
  public List<Line> lines(String name, String tags, String type) {
    List<Line> out = new java.util.ArrayList<>();
    for (Line l : lines) {
      if (l.name.equals(name) && l.tags.equals(tags) && l.type.equals(type)) out.add(l);
    }
    return out;
  }

  /** What a StatsD agent counts for these sample lines: the sum of 1/rate. */
  public double sampledCount(String name, String tags, String type) {
    double n = 0;
    for (Line l : lines(name, tags, type)) n += 1.0 / l.rate;
    return n;
  }

  public boolean seen(String name) {
    for (Line l : lines) if (l.name.equals(name)) return true;
    return false;
  }

  public boolean seenTyped(String name, String type) {
    for (Line l : lines) if (l.name.equals(name) && l.type.equals(type)) return true;
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
