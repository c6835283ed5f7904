package dev.veneur.proxy.wire;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Veneur v14's {@code metricpb.Metric} and {@code forwardrpc.MetricList} in the protobuf wire
 * format, read and written as bytes: the proxy finds each metric's span, reads what places it on
 * the ring (name, type, tags) and checks its value as a v14 global would, then carries the span
 * itself into the destination's batch. No message object is built per metric.
 *
 * <pre>
 * Metric { string name = 1; repeated string tags = 2; Type type = 3;
 *          oneof value { CounterValue counter = 5; GaugeValue gauge = 6;
 *                        HistogramValue histogram = 7; SetValue set = 8; }
 *          Scope scope = 9; }
 * MetricList { repeated Metric metrics = 1; }
 * </pre>
 *
 * Read as protobuf decoders read: fields in any order, a repeated scalar field's last value wins,
 * unknown fields skipped (and carried along: globals skip them too), every length checked against
 * the bytes left before it is used.
 */
public final class MetricPb {
  /** Eight bytes of an array as a little-endian long (protobuf's fixed64 and double). */
  static final java.lang.invoke.VarHandle LONG_LE =
      java.lang.invoke.MethodHandles.byteArrayViewVarHandle(long[].class, java.nio.ByteOrder.LITTLE_ENDIAN);

  private MetricPb() {}

  public static final int COUNTER = 0;
  public static final int GAUGE = 1;
  public static final int HISTOGRAM = 2;
  public static final int SET = 3;
  public static final int TIMER = 4;
  /** Type names as v14 lowercases them for the ring key and as v2's JSON {@code type} says them. */
  static final String[] TYPE_NAMES = {"counter", "gauge", "histogram", "set", "timer"};

  public static final int MIXED = 0;
  public static final int LOCAL = 1;
  public static final int GLOBAL = 2;

  public static final int F_COUNTER = 5;
  public static final int F_GAUGE = 6;
  public static final int F_HISTOGRAM = 7;
  public static final int F_SET = 8;

  static final int VARINT = 0;
  static final int I64 = 1;
  static final int LEN = 2;
  static final int I32 = 5;

  public static String typeName(int type) {
    return type >= 0 && type < TYPE_NAMES.length ? TYPE_NAMES[type] : null;
  }

  /** The value field a type must carry: what a v14 global reads (it panics on a mismatch). */
  public static int valueFieldOf(int type) {
    return switch (type) {
      case COUNTER -> F_COUNTER;
      case GAUGE -> F_GAUGE;
      case HISTOGRAM, TIMER -> F_HISTOGRAM;
      case SET -> F_SET;
      default -> -1;
    };
  }

  /** Why a metric cannot be forwarded: the cause it is counted under, and the detail. */
  public enum Problem {
    MALFORMED("malformed"),
    NO_VALUE("no_value"),
    TYPE_MISMATCH("type_mismatch"),
    UNKNOWN_TYPE("unknown_type"),
    LOCAL_SCOPE("local_scope"),
    BAD_DIGEST("bad_digest"),
    INVALID_UTF8("invalid_utf8");

    public final String cause;

    Problem(String cause) {
      this.cause = cause;
    }
  }

  /**
   * One metric as found by {@link #scan}: offsets into the scanned array, reused from metric to
   * metric so scanning allocates nothing but a larger tag array once.
   */
  public static final class Fields {
    public int start;
    public int end;
    public int nameOff;
    public int nameLen;
    public int tags;
    public int[] tagOff = new int[16];
    public int[] tagLen = new int[16];
    public int type;
    public int scope;
    /** 5 to 8, or 0 when the metric has no value. */
    public int valueField;
    /** The value message's payload (CounterValue, GaugeValue, HistogramValue, SetValue). */
    public int valueOff;
    public int valueLen;
    public Problem problem;
    public String detail;

    void reset(int start, int end) {
      this.start = start;
      this.end = end;
      nameOff = start;
      nameLen = 0;
      tags = 0;
      type = COUNTER;
      scope = MIXED;
      valueField = 0;
      valueOff = 0;
      valueLen = 0;
      problem = null;
      detail = null;
    }

    void addTag(int off, int len) {
      if (tags == tagOff.length) {
        tagOff = java.util.Arrays.copyOf(tagOff, tags * 2);
        tagLen = java.util.Arrays.copyOf(tagLen, tags * 2);
      }
      tagOff[tags] = off;
      tagLen[tags] = len;
      tags++;
    }

    boolean fail(Problem p, String d) {
      problem = p;
      detail = d;
      return false;
    }

    public String name(byte[] b) {
      return new String(b, nameOff, nameLen, StandardCharsets.UTF_8);
    }

    public String tag(byte[] b, int i) {
      return new String(b, tagOff[i], tagLen[i], StandardCharsets.UTF_8);
    }
  }

  /**
   * Reads the Metric in {@code b[off, off + len)} into {@code f} and checks it as a v14 global
   * would read it: the value case agrees with the type, the scope is not Local, a histogram's
   * digest has finite means and positive weights, strings are UTF-8.
   *
   * @return true if it can be forwarded; otherwise {@code f.problem} and {@code f.detail} say why
   */
  public static boolean scan(byte[] b, int off, int len, Fields f) {
    int end = off + len;
    f.reset(off, end);
    if (off < 0 || len < 0 || end > b.length) return f.fail(Problem.MALFORMED, "bounds");
    Cursor c = new Cursor(b, off, end);
    while (c.pos < end) {
      long key = c.varint();
      if (c.bad) return f.fail(Problem.MALFORMED, "a field key cut short");
      int field = (int) (key >>> 3);
      int wt = (int) (key & 7);
      if (field == 0 || key >>> 3 > 0x1fffffff) return f.fail(Problem.MALFORMED, "field number " + (key >>> 3));
      switch (field) {
        case 1 -> {
          if (wt != LEN || !c.len()) return f.fail(Problem.MALFORMED, "name");
          f.nameOff = c.spanOff;
          f.nameLen = c.spanLen;
        }
        case 2 -> {
          if (wt != LEN || !c.len()) return f.fail(Problem.MALFORMED, "a tag");
          f.addTag(c.spanOff, c.spanLen);
        }
        case 3 -> {
          if (wt != VARINT) return f.fail(Problem.MALFORMED, "type");
          long v = c.varint();
          if (c.bad) return f.fail(Problem.MALFORMED, "type cut short");
          f.type = (int) v;
          if (v != f.type) f.type = -1;
        }
        case F_COUNTER, F_GAUGE, F_HISTOGRAM, F_SET -> {
          if (wt != LEN || !c.len()) return f.fail(Problem.MALFORMED, "value");
          f.valueField = field;
          f.valueOff = c.spanOff;
          f.valueLen = c.spanLen;
        }
        case 9 -> {
          if (wt != VARINT) return f.fail(Problem.MALFORMED, "scope");
          long v = c.varint();
          if (c.bad) return f.fail(Problem.MALFORMED, "scope cut short");
          f.scope = (int) v;
          if (v != f.scope) f.scope = -1;
        }
        default -> {
          if (!c.skip(wt)) return f.fail(Problem.MALFORMED, "field " + field + " cut short or of wire type " + wt);
        }
      }
    }
    if (!Utf8.valid(b, f.nameOff, f.nameLen)) return f.fail(Problem.INVALID_UTF8, "name");
    for (int i = 0; i < f.tags; i++) {
      if (!Utf8.valid(b, f.tagOff[i], f.tagLen[i])) return f.fail(Problem.INVALID_UTF8, "tag " + i);
    }
    int want = valueFieldOf(f.type);
    if (want < 0) return f.fail(Problem.UNKNOWN_TYPE, "type " + f.type);
    if (f.valueField == 0) return f.fail(Problem.NO_VALUE, typeName(f.type) + " without a value");
    if (f.valueField != want) {
      return f.fail(Problem.TYPE_MISMATCH, typeName(f.type) + " carrying field " + f.valueField);
    }
    if (f.scope == LOCAL) return f.fail(Problem.LOCAL_SCOPE, "scope Local");
    if (f.scope != MIXED && f.scope != GLOBAL) return f.fail(Problem.MALFORMED, "scope " + f.scope);
    if (f.valueField == F_HISTOGRAM) {
      String why = checkHistogram(b, f.valueOff, f.valueLen);
      if (why != null) return f.fail(Problem.BAD_DIGEST, why);
    } else if (!checkScalarValue(b, f.valueOff, f.valueLen, f.valueField)) {
      return f.fail(Problem.MALFORMED, "the " + typeName(f.type) + " value");
    }
    return true;
  }

  /** A CounterValue, GaugeValue or SetValue that parses (its one field of the right wire type). */
  private static boolean checkScalarValue(byte[] b, int off, int len, int valueField) {
    Cursor c = new Cursor(b, off, off + len);
    while (c.pos < c.end) {
      long key = c.varint();
      if (c.bad) return false;
      int field = (int) (key >>> 3);
      int wt = (int) (key & 7);
      if (field == 1) {
        int need = valueField == F_COUNTER ? VARINT : valueField == F_GAUGE ? I64 : LEN;
        if (wt != need || !c.skip(wt)) return false;
      } else if (!c.skip(wt)) {
        return false;
      }
    }
    return true;
  }

  /**
   * A HistogramValue whose digest a v14 global can merge: every centroid's mean finite and its
   * weight positive and finite. Null if fine, else why not.
   */
  static String checkHistogram(byte[] b, int off, int len) {
    Cursor c = new Cursor(b, off, off + len);
    while (c.pos < c.end) {
      long key = c.varint();
      if (c.bad) return "cut short";
      if ((key >>> 3) == 1 && (key & 7) == LEN) {
        if (!c.len()) return "t_digest cut short";
        String why = checkDigest(b, c.spanOff, c.spanLen);
        if (why != null) return why;
      } else if (!c.skip((int) (key & 7))) {
        return "a field cut short";
      }
    }
    return null;
  }

  private static String checkDigest(byte[] b, int off, int len) {
    Cursor c = new Cursor(b, off, off + len);
    while (c.pos < c.end) {
      long key = c.varint();
      if (c.bad) return "digest cut short";
      int field = (int) (key >>> 3);
      int wt = (int) (key & 7);
      if (field == 1 && wt == LEN) {
        if (!c.len()) return "centroid cut short";
        Cursor cc = new Cursor(b, c.spanOff, c.spanOff + c.spanLen);
        double mean = 0;
        double weight = 0;
        while (cc.pos < cc.end) {
          long k = cc.varint();
          if (cc.bad) return "centroid cut short";
          int cf = (int) (k >>> 3);
          int cw = (int) (k & 7);
          if ((cf == 1 || cf == 2) && cw == I64) {
            double v = cc.double64();
            if (cc.bad) return "centroid cut short";
            if (cf == 1) mean = v;
            else weight = v;
          } else if (!cc.skip(cw)) {
            return "centroid field cut short";
          }
        }
        if (!Double.isFinite(mean)) return "a centroid mean of " + mean;
        if (!(weight > 0) || !Double.isFinite(weight)) return "a centroid weight of " + weight;
      } else if (!c.skip(wt)) {
        return "digest field cut short";
      }
    }
    return null;
  }

  /**
   * The metrics of a {@code MetricList} in {@code b[off, off + len)}: each call of {@link #next}
   * finds the next one's span. A list that does not parse stops with {@link #malformed}.
   */
  public static final class ListReader {
    private final Cursor c;
    public int metricOff;
    public int metricLen;
    public boolean malformed;

    public ListReader(byte[] b, int off, int len) {
      c = new Cursor(b, off, off + len);
    }

    public boolean next() {
      while (c.pos < c.end) {
        long key = c.varint();
        if (c.bad) return stop();
        int wt = (int) (key & 7);
        if ((key >>> 3) == 1) {
          if (wt != LEN || !c.len()) return stop();
          metricOff = c.spanOff;
          metricLen = c.spanLen;
          return true;
        }
        if (!c.skip(wt)) return stop();
      }
      return false;
    }

    private boolean stop() {
      malformed = true;
      c.pos = c.end;
      return false;
    }
  }

  /**
   * Where the first {@code n} entries of a run of {@code MetricList} field 1 entries end (an offset
   * into {@code b}), or {@code off + len} if there are fewer.
   */
  public static int framedEnd(byte[] b, int off, int len, int n) {
    ListReader r = new ListReader(b, off, len);
    int end = off;
    for (int i = 0; i < n && r.next(); i++) end = r.metricOff + r.metricLen;
    if (r.malformed) throw new IllegalStateException("a protobuf chunk's framing does not parse");
    return n == 0 ? off : end;
  }

  // ---------------------------------------------------------------- writing

  /** Appends {@code MetricList.metrics} framing for a metric of {@code len} bytes. */
  public static void listEntry(ByteArrayOutputStream out, byte[] metric, int off, int len) {
    out.write(0x0a);
    varint(out, len);
    out.write(metric, off, len);
  }

  /**
   * A whole Metric from its parts, as a v14 local writes it (fields in number order, proto3
   * defaults left out).
   *
   * @param value the value message's payload (e.g. a CounterValue's bytes), under field {@code valueField}
   */
  public static byte[] metric(String name, java.util.List<String> tags, int type, int scope, int valueField,
      byte[] value) {
    ByteArrayOutputStream out = new FastBytes(32 + name.length() + value.length + tags.size() * 16);
    if (!name.isEmpty()) bytesField(out, 1, name.getBytes(StandardCharsets.UTF_8));
    for (String t : tags) bytesField(out, 2, t.getBytes(StandardCharsets.UTF_8));
    if (type != 0) {
      varint(out, 3 << 3);
      varint(out, type);
    }
    bytesField(out, valueField, value);
    if (scope != 0) {
      varint(out, 9 << 3);
      varint(out, scope);
    }
    return out.toByteArray();
  }

  /** CounterValue{value}: int64, as a varint of its two's complement. */
  public static byte[] counterValue(long v) {
    ByteArrayOutputStream out = new FastBytes(11);
    if (v != 0) {
      out.write(0x08);
      varint(out, v);
    }
    return out.toByteArray();
  }

  /** GaugeValue{value}: a little-endian double. */
  public static byte[] gaugeValue(double v) {
    ByteArrayOutputStream out = new FastBytes(9);
    if (Double.doubleToRawLongBits(v) != 0) {
      out.write(0x09);
      fixed64(out, Double.doubleToRawLongBits(v));
    }
    return out.toByteArray();
  }

  /** SetValue{hyper_log_log}: the HLL bytes as they are (v2's JSON value has the same format). */
  public static byte[] setValue(byte[] hll) {
    ByteArrayOutputStream out = new FastBytes(hll.length + 6);
    if (hll.length > 0) bytesField(out, 1, hll);
    return out.toByteArray();
  }

  /** HistogramValue{t_digest: MergingDigestData} from a digest. */
  public static byte[] histogramValue(GobDigest.Digest d) {
    ByteArrayOutputStream digest = new FastBytes(16 + d.size() * 20);
    for (int i = 0; i < d.size(); i++) {
      ByteArrayOutputStream c = new FastBytes(24);
      doubleField(c, 1, d.means()[i]);
      doubleField(c, 2, d.weights()[i]);
      double[] s = d.samples() == null ? null : d.samples()[i];
      if (s != null && s.length > 0) {
        // proto3 packs repeated scalars.
        varint(c, (3 << 3) | LEN);
        varint(c, s.length * 8L);
        for (double x : s) fixed64(c, Double.doubleToRawLongBits(x));
      }
      bytesField(digest, 1, c.toByteArray());
    }
    doubleField(digest, 2, d.compression());
    doubleField(digest, 3, d.min());
    doubleField(digest, 4, d.max());
    doubleField(digest, 5, d.reciprocalSum());
    ByteArrayOutputStream out = new FastBytes(digest.size() + 6);
    bytesField(out, 1, digest.toByteArray());
    return out.toByteArray();
  }

  /** A CounterValue's value; the payload was checked by {@link #scan}. */
  public static long readCounter(byte[] b, int off, int len) {
    Cursor c = new Cursor(b, off, off + len);
    long v = 0;
    while (c.pos < c.end) {
      long key = c.varint();
      if ((key >>> 3) == 1 && (key & 7) == VARINT) v = c.varint();
      else c.skip((int) (key & 7));
    }
    return v;
  }

  /** A GaugeValue's value. */
  public static double readGauge(byte[] b, int off, int len) {
    Cursor c = new Cursor(b, off, off + len);
    double v = 0;
    while (c.pos < c.end) {
      long key = c.varint();
      if ((key >>> 3) == 1 && (key & 7) == I64) v = c.double64();
      else c.skip((int) (key & 7));
    }
    return v;
  }

  /** A SetValue's HLL bytes. */
  public static byte[] readSet(byte[] b, int off, int len) {
    Cursor c = new Cursor(b, off, off + len);
    byte[] v = new byte[0];
    while (c.pos < c.end) {
      long key = c.varint();
      if ((key >>> 3) == 1 && (key & 7) == LEN && c.len()) {
        v = java.util.Arrays.copyOfRange(b, c.spanOff, c.spanOff + c.spanLen);
      } else {
        c.skip((int) (key & 7));
      }
    }
    return v;
  }

  /** A HistogramValue's digest (checked by {@link #scan}), reciprocalSum included. */
  public static GobDigest.Digest readHistogram(byte[] b, int off, int len) {
    Cursor c = new Cursor(b, off, off + len);
    DigestParts p = new DigestParts();
    while (c.pos < c.end) {
      long key = c.varint();
      if ((key >>> 3) == 1 && (key & 7) == LEN && c.len()) p.read(b, c.spanOff, c.spanLen);
      else c.skip((int) (key & 7));
    }
    return p.digest();
  }

  private static final class DigestParts {
    double[] means = new double[8];
    double[] weights = new double[8];
    double[][] samples;
    int n;
    double compression;
    double min;
    double max;
    double reciprocalSum;

    void read(byte[] b, int off, int len) {
      Cursor c = new Cursor(b, off, off + len);
      while (c.pos < c.end) {
        long key = c.varint();
        int field = (int) (key >>> 3);
        int wt = (int) (key & 7);
        if (field == 1 && wt == LEN && c.len()) {
          centroid(b, c.spanOff, c.spanLen);
        } else if (field >= 2 && field <= 5 && wt == I64) {
          double v = c.double64();
          switch (field) {
            case 2 -> compression = v;
            case 3 -> min = v;
            case 4 -> max = v;
            default -> reciprocalSum = v;
          }
        } else {
          c.skip(wt);
        }
      }
    }

    void centroid(byte[] b, int off, int len) {
      if (n == means.length) {
        means = java.util.Arrays.copyOf(means, n * 2);
        weights = java.util.Arrays.copyOf(weights, n * 2);
        if (samples != null) samples = java.util.Arrays.copyOf(samples, n * 2);
      }
      Cursor c = new Cursor(b, off, off + len);
      double[] s = null;
      while (c.pos < c.end) {
        long key = c.varint();
        int field = (int) (key >>> 3);
        int wt = (int) (key & 7);
        if (field == 1 && wt == I64) means[n] = c.double64();
        else if (field == 2 && wt == I64) weights[n] = c.double64();
        else if (field == 3 && wt == LEN && c.len()) {
          // packed
          int k = c.spanLen / 8;
          double[] more = new double[k];
          Cursor p = new Cursor(b, c.spanOff, c.spanOff + k * 8);
          for (int i = 0; i < k; i++) more[i] = p.double64();
          s = s == null ? more : concat(s, more);
        } else if (field == 3 && wt == I64) {
          s = concat(s == null ? new double[0] : s, new double[] {c.double64()});
        } else {
          c.skip(wt);
        }
      }
      if (s != null) {
        if (samples == null) samples = new double[means.length][];
        samples[n] = s;
      }
      n++;
    }

    GobDigest.Digest digest() {
      return new GobDigest.Digest(java.util.Arrays.copyOf(means, n), java.util.Arrays.copyOf(weights, n),
          samples == null ? null : java.util.Arrays.copyOf(samples, n), compression, min, max, reciprocalSum, true);
    }
  }

  private static double[] concat(double[] a, double[] b) {
    double[] r = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  static void bytesField(ByteArrayOutputStream out, int field, byte[] v) {
    varint(out, ((long) field << 3) | LEN);
    varint(out, v.length);
    out.write(v, 0, v.length);
  }

  static void doubleField(ByteArrayOutputStream out, int field, double v) {
    if (Double.doubleToRawLongBits(v) == 0) return;
    varint(out, ((long) field << 3) | I64);
    fixed64(out, Double.doubleToRawLongBits(v));
  }

  /** Bytes of {@code v} as the shortest varint, as {@link #varint} writes it. */
  public static int varintSize(long v) {
    int n = 1;
    while ((v & ~0x7fL) != 0) {
      n++;
      v >>>= 7;
    }
    return n;
  }

  static void varint(ByteArrayOutputStream out, long v) {
    while ((v & ~0x7fL) != 0) {
      out.write((int) ((v & 0x7f) | 0x80));
      v >>>= 7;
    }
    out.write((int) v);
  }

  static void fixed64(ByteArrayOutputStream out, long v) {
    for (int i = 0; i < 8; i++) out.write((int) (v >>> (8 * i)) & 0xff);
  }

  /** Reads the wire format within [pos, end); {@link #bad} once anything was cut short. */
  static final class Cursor {
    final byte[] b;
    int pos;
    final int end;
    boolean bad;
    int spanOff;
    int spanLen;

    Cursor(byte[] b, int pos, int end) {
      this.b = b;
      this.pos = pos;
      this.end = end;
    }

    long varint() {
      long v = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        if (pos >= end) {
          bad = true;
          return 0;
        }
        int x = b[pos++];
        v |= (long) (x & 0x7f) << shift;
        if (x >= 0) return v;
      }
      bad = true;
      return 0;
    }

    /** A length-delimited field: its span in spanOff/spanLen; false if it does not fit. */
    boolean len() {
      long n = varint();
      if (bad || n < 0 || n > end - pos) {
        bad = true;
        return false;
      }
      spanOff = pos;
      spanLen = (int) n;
      pos += (int) n;
      return true;
    }

    double double64() {
      if (end - pos < 8) {
        bad = true;
        return 0;
      }
      long v = (long) LONG_LE.get(b, pos);
      pos += 8;
      return Double.longBitsToDouble(v);
    }

    boolean skip(int wt) {
      switch (wt) {
        case VARINT -> varint();
        case I64 -> {
          if (end - pos < 8) bad = true;
          else pos += 8;
        }
        case LEN -> len();
        case I32 -> {
          if (end - pos < 4) bad = true;
          else pos += 4;
        }
        default -> bad = true;
      }
      return !bad;
    }
  }

  /** UTF-8 as protobuf's Go runtime checks it for proto3 strings. */
  static final class Utf8 {
    private Utf8() {}

    static boolean valid(byte[] b, int off, int len) {
      int i = off;
      int end = off + len;
      // Names and tags are nearly always ASCII: eight bytes at a time while no byte has its top bit.
      while (end - i >= 8 && ((long) LONG_LE.get(b, i) & 0x8080808080808080L) == 0) i += 8;
      while (i < end) {
        int c = b[i] & 0xff;
        if (c < 0x80) {
          i++;
          continue;
        }
        int n;
        int min;
        if (c >= 0xc2 && c <= 0xdf) {
          n = 1;
          min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
          n = 2;
          min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
          n = 3;
          min = 0x10000;
        } else {
          return false;
        }
        if (end - i <= n) return false;
        int cp = c & (0x3f >> n);
        for (int k = 1; k <= n; k++) {
          int cc = b[i + k] & 0xff;
          if ((cc & 0xc0) != 0x80) return false;
          cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n + 1;
      }
      return true;
    }
  }
}
