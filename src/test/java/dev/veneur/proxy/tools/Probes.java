package dev.veneur.proxy.tools;

import io.vertx.core.buffer.Buffer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.zip.Adler32;
import java.util.zip.Deflater;

/**
 * Delivery latency for the bench: every body a sender posts carries one extra metric, the probe,
 * named {@link #NAME} and tagged {@code probe:<id>} with an id of its own. The sender notes when
 * the proxy answered 202 (or gRPC OK) for that id; the global that receives the probe notes when
 * it did, with {@link System#nanoTime()}, which on Linux is CLOCK_MONOTONIC and so comparable
 * between the bench's and the globals' processes on one machine. The difference is the time from
 * a metric's 202 to its arrival at its global, which is what a fleet's dashboards lag by.
 *
 * <p>A probe's tagstring differs per post, so probes land on every global of the ring, each with
 * the batch it was forwarded in. A probe accepted but never seen is a lost metric and is counted.
 *
 * <p>Making a probe body costs the bench no deflate: each distinct JSON body is deflated once
 * without its closing {@code ]} and sync-flushed, and each post appends a stored final block
 * holding {@code ,probe]} and the Adler-32 of the whole (combined, not recomputed). gRPC bodies
 * are MetricLists, to which one more repeated field 1 (the probe metric) is simply appended.
 */
final class Probes {
  static final String NAME = "veneur_bench.probe";
  static final String TAG = "probe:";
  /** A v2 counter's value as Veneur encodes it (the captured fixture's counters look like this). */
  private static final String COUNTER_ONE = "AQAAAAAAAAA=";

  private Probes() {}

  /** A JSON body ready for probes: the zlib stream of all but its closing bracket, not finished. */
  record JsonBody(byte[] open, int adler, long rawLength) {}

  /**
   * {@code rawJson} (a JSON array) deflated at Go's default level as a local does, without its
   * closing {@code ]}: a zlib header and raw deflate blocks ending in a sync flush.
   */
  static JsonBody prepare(byte[] rawJson) {
    int n = rawJson.length - 1;
    if (n < 1 || rawJson[n] != ']') throw new IllegalArgumentException("not a JSON array");
    Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
    ByteArrayOutputStream out = new ByteArrayOutputStream(n / 4);
    out.write(0x78);
    out.write(0x9C);
    d.setInput(rawJson, 0, n);
    byte[] buf = new byte[64 * 1024];
    while (true) {
      int k = d.deflate(buf, 0, buf.length, Deflater.SYNC_FLUSH);
      out.write(buf, 0, k);
      if (k < buf.length && d.needsInput()) break;
    }
    d.end();
    Adler32 a = new Adler32();
    a.update(rawJson, 0, n);
    return new JsonBody(out.toByteArray(), (int) a.getValue(), n);
  }

  /** The probe metric's JSON for {@code id}. */
  static byte[] probeJson(long id) {
    String tag = TAG + id;
    return ("{\"name\":\"" + NAME + "\",\"type\":\"counter\",\"tagstring\":\"" + tag + "\",\"tags\":[\"" + tag
        + "\"],\"value\":\"" + COUNTER_ONE + "\"}").getBytes(StandardCharsets.UTF_8);
  }

  /** The zlib body of {@code body}'s metrics and probe {@code id}: {@code [m1,...,mn,probe]}. */
  static Buffer jsonPost(JsonBody body, long id) {
    byte[] probe = probeJson(id);
    byte[] tail = new byte[probe.length + 2];
    tail[0] = ',';
    System.arraycopy(probe, 0, tail, 1, probe.length);
    tail[tail.length - 1] = ']';
    Adler32 a = new Adler32();
    a.update(tail);
    int adler = dev.veneur.proxy.wire.Adler.combine(body.adler(), (int) a.getValue(), tail.length);
    Buffer b = Buffer.buffer(body.open().length + 5 + tail.length + 4);
    b.appendBytes(body.open());
    // A stored block, the last: BFINAL=1, BTYPE=00, then LEN and NLEN little-endian.
    b.appendByte((byte) 0x01);
    b.appendByte((byte) tail.length).appendByte((byte) (tail.length >>> 8));
    b.appendByte((byte) ~tail.length).appendByte((byte) (~tail.length >>> 8));
    b.appendBytes(tail);
    b.appendInt(adler); // big-endian, as zlib's trailer
    return b;
  }

  /** A MetricList with probe {@code id} appended: one more repeated field 1. */
  static Buffer grpcPost(byte[] metricList, long id) {
    byte[] metric = metricpb.MetricOuterClass.Metric.newBuilder().setName(NAME).addTags(TAG + id)
        .setType(metricpb.MetricOuterClass.Type.Counter)
        .setCounter(metricpb.MetricOuterClass.CounterValue.newBuilder().setValue(1)).build().toByteArray();
    Buffer b = Buffer.buffer(metricList.length + metric.length + 6);
    b.appendBytes(metricList);
    b.appendByte((byte) 0x0A); // field 1, length-delimited
    int len = metric.length;
    while ((len & ~0x7F) != 0) {
      b.appendByte((byte) ((len & 0x7F) | 0x80));
      len >>>= 7;
    }
    b.appendByte((byte) len);
    b.appendBytes(metric);
    return b;
  }

  /** The id of a probe's tag ({@code probe:<id>}), or -1 if it is not one. */
  static long idOf(String tag) {
    if (tag == null || !tag.startsWith(TAG)) return -1;
    try {
      return Long.parseLong(tag.substring(TAG.length()));
    } catch (NumberFormatException e) {
      return -1;
    }
  }


  /** What a global saw: probe ids and the {@link System#nanoTime()} each arrived at. */
  static final class Arrivals {
    private final ConcurrentHashMap<Long, Long> seen = new ConcurrentHashMap<>();

    void arrived(long id) {
      if (id >= 0) seen.putIfAbsent(id, System.nanoTime());
    }

    /** Takes what arrived so far, as "id:nanos,id:nanos" (the /probes answer). */
    String drain() {
      StringBuilder sb = new StringBuilder();
      for (Long id : seen.keySet()) {
        Long t = seen.remove(id);
        if (t == null) continue;
        if (sb.length() > 0) sb.append(',');
        sb.append(id).append(':').append(t);
      }
      return sb.toString();
    }

    static Map<Long, Long> parse(String s, Map<Long, Long> into) {
      if (s.isBlank()) return into;
      for (String p : s.trim().split(",")) {
        int c = p.indexOf(':');
        into.put(Long.parseLong(p.substring(0, c)), Long.parseLong(p.substring(c + 1)));
      }
      return into;
    }
  }

  /**
   * The latencies of the probes accepted in a window: arrival minus 202, for every id in
   * {@code accepted} that arrived; the rest are lost. Sorted, in nanoseconds.
   */
  record Latencies(long[] sortedNanos, long lost) {
    static Latencies of(Map<Long, Long> accepted, Map<Long, Long> arrived) {
      long[] out = new long[accepted.size()];
      int n = 0;
      long lost = 0;
      for (Map.Entry<Long, Long> e : accepted.entrySet()) {
        Long t = arrived.get(e.getKey());
        if (t == null) lost++;
        else out[n++] = t - e.getValue();
      }
      out = Arrays.copyOf(out, n);
      Arrays.sort(out);
      return new Latencies(out, lost);
    }

    static Latencies none() {
      return new Latencies(new long[0], 0);
    }
  }
}
