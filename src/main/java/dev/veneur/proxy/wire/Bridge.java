package dev.veneur.proxy.wire;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;

/**
 * One metric translated between the two generations' forms, exactly:
 *
 * <ul>
 *   <li>counter: the JSON value is 8 bytes, a little-endian int64, and {@code CounterValue.value};
 *   <li>gauge: 8 bytes, a little-endian float64, and {@code GaugeValue.value};
 *   <li>set: the HyperLogLog bytes, the same format in both, carried as they are;
 *   <li>histogram and timer: the gob t-digest ({@link GobDigest}) and {@code MergingDigestData};
 *   <li>tags: the JSON's {@code tags}, and {@code tagstring} is them joined with commas;
 *   <li>scope: JSON says none. A local forwards counters and gauges when they are global-scope,
 *       so they become {@code Global}; sets, histograms and timers {@code Mixed}. A global-scope
 *       histogram or timer has no JSON form: it goes out as mixed ({@link #lostScope}), the one
 *       thing the bridge cannot carry.
 * </ul>
 *
 * Written as Veneur v14.2.0 writes each form (field order, proto3 defaults left out, the gob
 * stream of five values), so what a v14 local sent by one protocol comes out as what it would
 * have sent by the other.
 */
public final class Bridge {
  private Bridge() {}

  /**
   * Appends the JSON objects, comma-joined, of a run of framed metrics ({@code MetricList} field 1
   * entries, as a protobuf chunk holds them) that were checked on the way in.
   *
   * @return how many were written, and how many of them lost their scope ({@link #lostScope})
   * @throws IllegalStateException if one does not read as it did then (a bug, or damage)
   */
  public static Translated framedToJson(byte[] b, int off, int len, ByteArrayOutputStream out) {
    MetricPb.ListReader r = new MetricPb.ListReader(b, off, len);
    MetricPb.Fields f = new MetricPb.Fields();
    int n = 0;
    int lost = 0;
    while (r.next()) {
      if (!MetricPb.scan(b, r.metricOff, r.metricLen, f)) {
        throw new IllegalStateException("a protobuf chunk's metric no longer reads: " + f.problem.cause + ": " + f.detail);
      }
      if (n > 0) out.write(',');
      if (lostScope(f)) lost++;
      toJson(b, f, out);
      n++;
    }
    if (r.malformed) throw new IllegalStateException("a protobuf chunk's framing does not parse");
    return new Translated(n, lost);
  }

  /** What {@link #framedToJson} wrote: metrics, and global-scope histograms and timers now mixed. */
  public record Translated(int metrics, int scopeLost) {}

  /** A JSON metric whose value cannot be what its type says; the metric is dropped alone. */
  public static final class Untranslatable extends RuntimeException {
    private static final long serialVersionUID = 1L;
    public final String cause;

    public Untranslatable(String cause, String message) {
      super(message, null, false, false);
      this.cause = cause;
    }
  }

  /** The v14 type of a JSON {@code type}, or -1. */
  public static int typeOf(String jsonType) {
    return switch (jsonType) {
      case "counter" -> MetricPb.COUNTER;
      case "gauge" -> MetricPb.GAUGE;
      case "histogram" -> MetricPb.HISTOGRAM;
      case "set" -> MetricPb.SET;
      case "timer" -> MetricPb.TIMER;
      default -> -1;
    };
  }

  /**
   * The {@code metricpb.Metric} bytes of a JSON metric.
   *
   * @param value the decoded (not base64) JSON value
   * @throws Untranslatable with cause {@code unknown_type} or {@code bad_value}
   */
  public static byte[] toProto(String name, String jsonType, List<String> tags, byte[] value) {
    int type = typeOf(jsonType);
    if (type < 0) throw new Untranslatable("unknown_type", "type '" + jsonType + "' has no v14 form");
    return switch (type) {
      case MetricPb.COUNTER -> MetricPb.metric(name, tags, type, MetricPb.GLOBAL, MetricPb.F_COUNTER,
          MetricPb.counterValue(le(value, jsonType).getLong()));
      case MetricPb.GAUGE -> MetricPb.metric(name, tags, type, MetricPb.GLOBAL, MetricPb.F_GAUGE,
          MetricPb.gaugeValue(le(value, jsonType).getDouble()));
      case MetricPb.SET -> MetricPb.metric(name, tags, type, MetricPb.MIXED, MetricPb.F_SET, MetricPb.setValue(value));
      default -> {
        GobDigest.Digest d;
        try {
          d = GobDigest.decode(value);
        } catch (GobDigest.Malformed e) {
          throw new Untranslatable("bad_value", "a " + jsonType + " value that is not a t-digest: " + e.getMessage());
        }
        yield MetricPb.metric(name, tags, type, MetricPb.MIXED, MetricPb.F_HISTOGRAM, MetricPb.histogramValue(d));
      }
    };
  }

  private static ByteBuffer le(byte[] value, String type) {
    if (value.length != 8) {
      throw new Untranslatable("bad_value", "a " + type + " value of " + value.length + " bytes, not 8");
    }
    return ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Whether translating this metric to JSON loses its scope (a global-scope histogram or timer). */
  public static boolean lostScope(MetricPb.Fields f) {
    return f.scope == MetricPb.GLOBAL && f.valueField == MetricPb.F_HISTOGRAM;
  }

  /**
   * Appends the JSON object for a metric {@link MetricPb#scan scanned} valid from {@code b}:
   * {@code {"name":..,"type":..,"tagstring":..,"tags":[..],"value":"<base64>"}}.
   */
  public static void toJson(byte[] b, MetricPb.Fields f, ByteArrayOutputStream out) {
    byte[] value = switch (f.valueField) {
      case MetricPb.F_COUNTER -> ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
          .putLong(MetricPb.readCounter(b, f.valueOff, f.valueLen)).array();
      case MetricPb.F_GAUGE -> ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
          .putDouble(MetricPb.readGauge(b, f.valueOff, f.valueLen)).array();
      case MetricPb.F_SET -> MetricPb.readSet(b, f.valueOff, f.valueLen);
      default -> GobDigest.encode(MetricPb.readHistogram(b, f.valueOff, f.valueLen), true);
    };
    out.write(NAME, 0, NAME.length);
    jsonString(out, b, f.nameOff, f.nameLen);
    out.write(TYPE, 0, TYPE.length);
    byte[] type = TYPE_NAMES[f.type];
    out.write(type, 0, type.length);
    out.write(TAGSTRING, 0, TAGSTRING.length);
    for (int i = 0; i < f.tags; i++) {
      if (i > 0) out.write(',');
      jsonStringBody(out, b, f.tagOff[i], f.tagLen[i]);
    }
    out.write(TAGS, 0, TAGS.length);
    if (f.tags == 0) {
      // What Go's encoder writes for a nil []string, as a v2 local sends it.
      out.write(NULL, 0, NULL.length);
    } else {
      out.write('[');
      for (int i = 0; i < f.tags; i++) {
        if (i > 0) out.write(',');
        jsonString(out, b, f.tagOff[i], f.tagLen[i]);
      }
      out.write(']');
    }
    out.write(VALUE, 0, VALUE.length);
    byte[] b64 = Base64.getEncoder().encode(value);
    out.write(b64, 0, b64.length);
    out.write(END, 0, END.length);
  }

  // The fixed parts, written whole: ByteArrayOutputStream.write(int) is synchronized and checks its
  // capacity on every call, and byte-at-a-time writing was a third of the gRPC path's CPU (JFR).
  private static final byte[] NAME = ascii("{\"name\":");
  private static final byte[] TYPE = ascii(",\"type\":\"");
  private static final byte[] TAGSTRING = ascii("\",\"tagstring\":\"");
  private static final byte[] TAGS = ascii("\",\"tags\":");
  private static final byte[] NULL = ascii("null");
  private static final byte[] VALUE = ascii(",\"value\":\"");
  private static final byte[] END = ascii("\"}");
  private static final byte[][] TYPE_NAMES = new byte[5][];

  static {
    for (int t = 0; t < TYPE_NAMES.length; t++) TYPE_NAMES[t] = ascii(MetricPb.typeName(t));
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }

  private static void jsonString(ByteArrayOutputStream out, byte[] b, int off, int len) {
    out.write('"');
    jsonStringBody(out, b, off, len);
    out.write('"');
  }

  private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

  /**
   * UTF-8 bytes (checked valid by the scan) as a JSON string's body, escaped as Go's encoder
   * escapes: quote, backslash, control characters, and &lt; &gt; &amp; U+2028 U+2029.
   */
  private static void jsonStringBody(ByteArrayOutputStream out, byte[] b, int off, int len) {
    int end = off + len;
    int run = off;
    for (int i = off; i < end; i++) {
      int c = b[i] & 0xff;
      if (!(c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c == 0xe2)) continue;
      // Bytes that need no escape go out as one run; this one is looked at below.
      if (i > run) out.write(b, run, i - run);
      run = i + 1;
      if (c == '"' || c == '\\') {
        out.write('\\');
        out.write(c);
      } else if (c == '\n') {
        out.write('\\');
        out.write('n');
      } else if (c == '\r') {
        out.write('\\');
        out.write('r');
      } else if (c == '\t') {
        out.write('\\');
        out.write('t');
      } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
        unicodeEscape(out, c);
      } else if (c == 0xe2 && i + 2 < end && (b[i + 1] & 0xff) == 0x80
          && ((b[i + 2] & 0xff) == 0xa8 || (b[i + 2] & 0xff) == 0xa9)) {
        unicodeEscape(out, 0x2028 + ((b[i + 2] & 0xff) - 0xa8));
        i += 2;
        run = i + 1;
      } else {
        out.write(c);
      }
    }
    if (end > run) out.write(b, run, end - run);
  }

  private static void unicodeEscape(ByteArrayOutputStream out, int cp) {
    out.write('\\');
    out.write('u');
    out.write(HEX[(cp >> 12) & 0xf]);
    out.write(HEX[(cp >> 8) & 0xf]);
    out.write(HEX[(cp >> 4) & 0xf]);
    out.write(HEX[cp & 0xf]);
  }
}
