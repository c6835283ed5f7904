package dev.veneur.proxy.tools;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Random;
import java.util.zip.Deflater;

/**
 * Realistic /import bodies for load: the type mix of a real local's flush (counters, gauges,
 * sets, histograms, timers in the proportions of the captured Veneur v2.0.0 fixture) with value
 * sizes to match (histogram and timer digests of 230 to 270 base64 characters).
 */
public final class SyntheticMetrics {
  private static final String[] SERVICES = {"api", "auth", "billing", "search", "web", "queue"};
  private static final String[] STEMS = {"requests", "latency", "payload_bytes", "pool", "errors", "sampled"};

  private SyntheticMetrics() {}

  /** One JSON array of {@code n} metrics; {@code seed} makes series names distinct across bodies. */
  public static byte[] body(int n, long seed) {
    Random r = new Random(seed);
    StringBuilder sb = new StringBuilder(n * 320);
    sb.append('[');
    for (int i = 0; i < n; i++) {
      if (i > 0) sb.append(',');
      int pick = r.nextInt(27);
      String type;
      int valueBytes;
      if (pick < 6) { type = "counter"; valueBytes = 8; }
      else if (pick < 9) { type = "gauge"; valueBytes = 8; }
      else if (pick < 15) { type = "set"; valueBytes = 24; }
      else if (pick < 21) { type = "histogram"; valueBytes = 162 + r.nextInt(15); }
      else { type = "timer"; valueBytes = 150 + r.nextInt(54); }
      String service = SERVICES[r.nextInt(SERVICES.length)];
      String az = "us-west-2" + (char) ('a' + r.nextInt(3));
      String name = service + "." + STEMS[r.nextInt(STEMS.length)] + "." + seed + "." + i;
      byte[] value = new byte[valueBytes];
      r.nextBytes(value);
      sb.append("{\"name\":\"").append(name)
          .append("\",\"type\":\"").append(type)
          .append("\",\"tagstring\":\"az:").append(az).append(",env:prod,service:").append(service)
          .append("\",\"tags\":[\"az:").append(az).append("\",\"env:prod\",\"service:").append(service)
          .append("\"],\"value\":\"").append(Base64.getEncoder().encodeToString(value)).append("\"}");
    }
    sb.append(']');
    return sb.toString().getBytes(StandardCharsets.UTF_8);
  }

  /**
   * One JSON array of {@code n} metrics drawn from a captured /import body (types, tags and values
   * exactly as a real local sent them), renamed per {@code seed} so each body carries its own
   * series. Real t-digest values share long gob headers, so they compress like production data.
   */
  public static byte[] fromSample(io.vertx.core.json.JsonArray sample, int n, long seed) {
    Random r = new Random(seed);
    io.vertx.core.json.JsonArray out = new io.vertx.core.json.JsonArray();
    for (int i = 0; i < n; i++) {
      io.vertx.core.json.JsonObject m = sample.getJsonObject(r.nextInt(sample.size())).copy();
      m.put("name", m.getString("name") + ".h" + seed + "." + i);
      out.add(m);
    }
    return out.encode().getBytes(StandardCharsets.UTF_8);
  }

  /**
   * {@code count} distinct bodies of {@code perBody} metrics each, as raw JSON: drawn from the
   * captured Veneur output in {@code sample} (a file holding a JSON array), or synthetic when
   * {@code sample} is {@code "random"} (incompressible histogram values).
   */
  public static java.util.List<byte[]> bodies(String sample, int perBody, int count) throws java.io.IOException {
    io.vertx.core.json.JsonArray captured = "random".equals(sample) ? null
        : new io.vertx.core.json.JsonArray(java.nio.file.Files.readString(java.nio.file.Path.of(sample)));
    java.util.List<byte[]> out = new java.util.ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      out.add(captured == null ? body(perBody, i) : fromSample(captured, perBody, i));
    }
    return out;
  }

  /**
   * {@code count} distinct gRPC {@code SendMetrics} bodies (serialized {@code MetricList}s) of
   * {@code perBody} metrics each, drawn from the MetricList in {@code sampleFile} (a real local's
   * gRPC flush: protobuf exactly as it sent it) and renamed per body as {@link #fromSample} does,
   * so each body carries its own series and they spread over the ring.
   */
  public static java.util.List<byte[]> grpcBodies(String sampleFile, int perBody, int count) throws java.io.IOException {
    forwardrpc.ForwardOuterClass.MetricList sample =
        forwardrpc.ForwardOuterClass.MetricList.parseFrom(java.nio.file.Files.readAllBytes(java.nio.file.Path.of(sampleFile)));
    if (sample.getMetricsCount() == 0) throw new java.io.IOException(sampleFile + " holds no metric");
    java.util.List<byte[]> out = new java.util.ArrayList<>(count);
    for (int seed = 0; seed < count; seed++) {
      Random r = new Random(seed);
      forwardrpc.ForwardOuterClass.MetricList.Builder list = forwardrpc.ForwardOuterClass.MetricList.newBuilder();
      for (int i = 0; i < perBody; i++) {
        metricpb.MetricOuterClass.Metric m = sample.getMetrics(r.nextInt(sample.getMetricsCount()));
        list.addMetrics(m.toBuilder().setName(m.getName() + ".h" + seed + "." + i));
      }
      out.add(list.build().toByteArray());
    }
    return out;
  }

  /** zlib at the default level, as Go's compress/zlib writes it for a local Veneur. */
  public static byte[] deflate(byte[] raw) {
    Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION);
    d.setInput(raw);
    d.finish();
    ByteArrayOutputStream out = new ByteArrayOutputStream(raw.length / 2);
    byte[] buf = new byte[64 * 1024];
    while (!d.finished()) out.write(buf, 0, d.deflate(buf));
    d.end();
    return out.toByteArray();
  }
}
