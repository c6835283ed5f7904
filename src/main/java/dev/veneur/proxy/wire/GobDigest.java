package dev.veneur.proxy.wire;

import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Veneur's t-digest as the JSON {@code /import} carries it: the {@code value} of a histogram or a
 * timer is the Go {@code encoding/gob} stream that {@code MergingDigest.GobEncode} writes, one
 * encoder, five values in a row: the main centroids ({@code []Centroid{Mean, Weight float64;
 * Samples []float64}}), then compression, min and max as {@code float64}; Veneur v14 adds a fifth,
 * reciprocalSum, and reads a stream of four as reciprocalSum 0.
 *
 * <p>Only this shape is read or written, but read the way Go's decoder reads it: type ids are
 * whatever the stream defines (Go numbers types per process), struct fields are matched by name,
 * fields at their zero value are absent, and every count is checked against the bytes left before
 * anything is allocated. A stream that is not this shape is refused with the reason
 * ({@link Malformed}); the proxy drops that metric alone.
 *
 * <p>Written, it is the exact bytes Veneur writes for the same digest (the same type ids, in the
 * same order), so a digest that goes JSON to protobuf and back is what the local sent.
 */
public final class GobDigest {
  private GobDigest() {}

  /** gob's predefined id of {@code float64}. */
  static final int FLOAT64 = 4;
  /**
   * The ids Go's encoder gives Centroid, []float64 and []Centroid: a Go process numbers types as
   * it meets them, so a v2.0.0 local writes 66, 67, 68 and a v14.2.0 local 65, 66, 67. Written
   * with the ids of the generation whose shape is written (four values: v2's; five: v14's), the
   * bytes equal what that Veneur writes; a decoder reads the ids from the stream either way.
   */
  static final int[] V2_IDS = {66, 67, 68};
  static final int[] V14_IDS = {65, 66, 67};

  /** A decoded digest. Samples are null for a centroid that has none (Veneur's usual case). */
  public record Digest(double[] means, double[] weights, double[][] samples, double compression, double min,
      double max, double reciprocalSum, boolean hasReciprocalSum) {
    public int size() {
      return means.length;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Digest d && Arrays.equals(means, d.means) && Arrays.equals(weights, d.weights)
          && Arrays.deepEquals(samples, d.samples) && Double.compare(compression, d.compression) == 0
          && Double.compare(min, d.min) == 0 && Double.compare(max, d.max) == 0
          && Double.compare(reciprocalSum, d.reciprocalSum) == 0 && hasReciprocalSum == d.hasReciprocalSum;
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(means) * 31 + Arrays.hashCode(weights);
    }

    @Override
    public String toString() {
      return "Digest{means=" + Arrays.toString(means) + ", weights=" + Arrays.toString(weights) + ", compression="
          + compression + ", min=" + min + ", max=" + max + ", reciprocalSum=" + reciprocalSum + "}";
    }
  }

  /** Not a Veneur digest; the message says what was wrong and where. */
  public static final class Malformed extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Malformed(String message) {
      super(message, null, false, false);
    }
  }

  // ---------------------------------------------------------------- decoding

  public static Digest decode(byte[] b) {
    return decode(b, 0, b.length);
  }

  public static Digest decode(byte[] b, int off, int len) {
    return new Decoder(b, off, off + len).digest();
  }

  private static final class Decoder {
    final byte[] b;
    int pos;
    final int end;
    /** Defined slice types: id to element id. */
    final Map<Integer, Integer> slices = new HashMap<>();
    /** Defined struct types: id to field names and ids, in field order. */
    final Map<Integer, String[]> structNames = new HashMap<>();
    final Map<Integer, int[]> structIds = new HashMap<>();

    Decoder(byte[] b, int off, int end) {
      if (off < 0 || end > b.length || off > end) throw new Malformed("bad bounds");
      this.b = b;
      this.pos = off;
      this.end = end;
    }

    Digest digest() {
      double[][] centroids = null;
      double[] floats = new double[4];
      int nFloats = 0;
      while (pos < end) {
        int msgLen = checkedLength(uint(end), end);
        int msgEnd = pos + msgLen;
        long id = signed(uint(msgEnd));
        if (id < 0) {
          defineType((int) -id, msgEnd);
        } else if (centroids == null) {
          centroids = centroidSlice((int) id, msgEnd);
        } else if (nFloats < 4) {
          if (id != FLOAT64) throw new Malformed("value " + (nFloats + 2) + " is of type " + id + ", not float64");
          if (uint(msgEnd) != 0) throw new Malformed("a float64 value without gob's singleton marker");
          floats[nFloats++] = floatOf(uint(msgEnd));
        } else {
          throw new Malformed("more than five values");
        }
        if (pos != msgEnd) throw new Malformed("a message of " + msgLen + " bytes has " + (msgEnd - pos) + " left over");
      }
      if (centroids == null) throw new Malformed("no centroids");
      if (nFloats < 3) throw new Malformed("only " + (nFloats + 1) + " of the four values (centroids, compression, min, max)");
      return new Digest(centroids[0], centroids[1], samples, floats[0], floats[1], floats[2],
          nFloats == 4 ? floats[3] : 0, nFloats == 4);
    }

    /** Per centroid, its samples; null when no centroid has any. */
    double[][] samples;

    /** The []Centroid value: means in [0], weights in [1]; samples go to {@link #samples}. */
    double[][] centroidSlice(int id, int msgEnd) {
      Integer elem = slices.get(id);
      if (elem == null) throw new Malformed("the first value's type " + id + " is not a defined slice");
      String[] names = structNames.get(elem);
      if (names == null) throw new Malformed("the first value is not a slice of structs");
      int[] ids = structIds.get(elem);
      if (uint(msgEnd) != 0) throw new Malformed("the centroids without gob's singleton marker");
      int n = checkedLength(uint(msgEnd), msgEnd);
      double[] means = new double[n];
      double[] weights = new double[n];
      double[][] samples = null;
      for (int i = 0; i < n; i++) {
        int field = -1;
        while (true) {
          long delta = uint(msgEnd);
          if (delta == 0) break;
          if (delta > names.length) throw new Malformed("field delta " + delta + " past the struct");
          field += (int) delta;
          if (field >= names.length) throw new Malformed("field " + field + " past the struct");
          switch (names[field]) {
            case "Mean" -> means[i] = floatField(ids[field], msgEnd);
            case "Weight" -> weights[i] = floatField(ids[field], msgEnd);
            case "Samples" -> {
              Integer se = slices.get(ids[field]);
              if (se == null || se != FLOAT64) throw new Malformed("Samples is not a []float64");
              int k = checkedLength(uint(msgEnd), msgEnd);
              double[] s = new double[k];
              for (int j = 0; j < k; j++) s[j] = floatOf(uint(msgEnd));
              if (samples == null) samples = new double[n][];
              samples[i] = s;
            }
            default -> throw new Malformed("unknown Centroid field " + names[field]);
          }
        }
      }
      this.samples = samples;
      return new double[][] {means, weights};
    }

    double floatField(int typeId, int limit) {
      if (typeId != FLOAT64) throw new Malformed("a Centroid field of type " + typeId + ", not float64");
      return floatOf(uint(limit));
    }

    /** A wireType message: only slice and struct types occur in a digest. */
    void defineType(int id, int msgEnd) {
      long delta = uint(msgEnd);
      if (delta == 2) {
        // SliceT: sliceType{CommonType, Elem}
        expect(1, msgEnd, "sliceType.CommonType");
        commonType(msgEnd);
        expect(1, msgEnd, "sliceType.Elem");
        int elem = (int) signed(uint(msgEnd));
        expect(0, msgEnd, "end of sliceType");
        slices.put(id, elem);
      } else if (delta == 3) {
        // StructT: structType{CommonType, Field []fieldType}
        expect(1, msgEnd, "structType.CommonType");
        commonType(msgEnd);
        expect(1, msgEnd, "structType.Field");
        int n = checkedLength(uint(msgEnd), msgEnd);
        if (n > 16) throw new Malformed("a struct of " + n + " fields");
        String[] names = new String[n];
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
          int f = -1;
          while (true) {
            long d = uint(msgEnd);
            if (d == 0) break;
            f += (int) d;
            if (f == 0) names[i] = string(msgEnd);
            else if (f == 1) ids[i] = (int) signed(uint(msgEnd));
            else throw new Malformed("fieldType field " + f);
          }
          if (names[i] == null) throw new Malformed("a struct field without a name");
        }
        expect(0, msgEnd, "end of structType");
        structNames.put(id, names);
        structIds.put(id, ids);
      } else {
        throw new Malformed("a type definition (wireType field " + delta + ") no digest has");
      }
      expect(0, msgEnd, "end of wireType");
    }

    void commonType(int limit) {
      int f = -1;
      while (true) {
        long d = uint(limit);
        if (d == 0) return;
        f += (int) d;
        if (f == 0) string(limit);
        else if (f == 1) signed(uint(limit));
        else throw new Malformed("CommonType field " + f);
      }
    }

    void expect(long want, int limit, String what) {
      long got = uint(limit);
      if (got != want) throw new Malformed("expected " + what + " (" + want + "), got " + got);
    }

    String string(int limit) {
      int n = checkedLength(uint(limit), limit);
      String s = new String(b, pos, n, java.nio.charset.StandardCharsets.UTF_8);
      pos += n;
      return s;
    }

    /** A count or a length: never more than the bytes left, so nothing is allocated on its say. */
    int checkedLength(long n, int limit) {
      if (n < 0 || n > limit - pos) throw new Malformed("a count of " + n + " with " + (limit - pos) + " bytes left");
      return (int) n;
    }

    long uint(int limit) {
      if (pos >= limit) throw new Malformed("cut short at byte " + pos);
      int first = b[pos++] & 0xff;
      if (first < 0x80) return first;
      int n = 256 - first;
      if (n > 8) throw new Malformed("an unsigned integer of " + n + " bytes");
      if (limit - pos < n) throw new Malformed("cut short in an integer at byte " + pos);
      long v = 0;
      for (int i = 0; i < n; i++) v = (v << 8) | (b[pos++] & 0xff);
      return v;
    }
  }

  static long signed(long u) {
    return (u & 1) != 0 ? ~(u >>> 1) : (u >>> 1);
  }

  static double floatOf(long u) {
    return Double.longBitsToDouble(Long.reverseBytes(u));
  }

  // ---------------------------------------------------------------- encoding

  /**
   * The gob stream Go writes for this digest: five values if {@code withReciprocalSum} (Veneur
   * v14), four otherwise (v2, which stops reading after four anyway).
   */
  public static byte[] encode(Digest d, boolean withReciprocalSum) {
    ByteArrayOutputStream out = new FastBytes(64 + d.size() * 24);
    int[] ids = withReciprocalSum ? V14_IDS : V2_IDS;
    int centroid = ids[0];
    int floatSlice = ids[1];
    int centroidSlice = ids[2];
    // Type definitions, in the order Go's encoder sends them.
    message(out, defineSlice(-centroidSlice, null, centroidSlice, centroid));
    message(out, defineCentroid(centroid, floatSlice));
    message(out, defineSlice(-floatSlice, "[]float64", floatSlice, FLOAT64));
    Buf v = new Buf();
    v.signed(centroidSlice);
    v.uint(0);
    v.uint(d.size());
    for (int i = 0; i < d.size(); i++) {
      int last = -1;
      if (d.means[i] != 0 || isNegativeZero(d.means[i])) {
        v.uint(0 - last);
        v.floatBits(d.means[i]);
        last = 0;
      }
      if (d.weights[i] != 0 || isNegativeZero(d.weights[i])) {
        v.uint(1 - last);
        v.floatBits(d.weights[i]);
        last = 1;
      }
      double[] s = d.samples == null ? null : d.samples[i];
      if (s != null && s.length > 0) {
        v.uint(2 - last);
        v.uint(s.length);
        for (double x : s) v.floatBits(x);
      }
      v.uint(0);
    }
    message(out, v);
    double[] floats = withReciprocalSum
        ? new double[] {d.compression, d.min, d.max, d.reciprocalSum}
        : new double[] {d.compression, d.min, d.max};
    for (double f : floats) {
      Buf m = new Buf();
      m.signed(FLOAT64);
      m.uint(0);
      m.floatBits(f);
      message(out, m);
    }
    return out.toByteArray();
  }

  /** Go's gob writes a field whose bits are not all zero; -0.0 has a bit set. */
  private static boolean isNegativeZero(double x) {
    return Double.doubleToRawLongBits(x) != 0 && x == 0;
  }

  private static Buf defineSlice(int negId, String name, int id, int elem) {
    Buf m = new Buf();
    m.signed(negId);
    m.uint(2); // wireType.SliceT
    m.uint(1); // sliceType.CommonType
    if (name != null) {
      m.uint(1);
      m.string(name);
      m.uint(1);
    } else {
      m.uint(2);
    }
    m.signed(id);
    m.uint(0);
    m.uint(1); // sliceType.Elem
    m.signed(elem);
    m.uint(0);
    m.uint(0);
    return m;
  }

  private static Buf defineCentroid(int centroid, int floatSlice) {
    Buf m = new Buf();
    m.signed(-centroid);
    m.uint(3); // wireType.StructT
    m.uint(1); // structType.CommonType
    m.uint(1);
    m.string("Centroid");
    m.uint(1);
    m.signed(centroid);
    m.uint(0);
    m.uint(1); // structType.Field
    m.uint(3);
    field(m, "Mean", FLOAT64);
    field(m, "Weight", FLOAT64);
    field(m, "Samples", floatSlice);
    m.uint(0);
    m.uint(0);
    return m;
  }

  private static void field(Buf m, String name, int id) {
    m.uint(1);
    m.string(name);
    m.uint(1);
    m.signed(id);
    m.uint(0);
  }

  private static void message(ByteArrayOutputStream out, Buf m) {
    Buf len = new Buf();
    len.uint(m.size());
    out.write(len.bytes(), 0, len.size());
    out.write(m.bytes(), 0, m.size());
  }

  /** gob's integer and float encodings. */
  private static final class Buf extends FastBytes {
    Buf() {
      super(32);
    }

    byte[] bytes() {
      return buf;
    }

    void uint(long u) {
      if (u >= 0 && u < 0x80) {
        write((int) u);
        return;
      }
      int n = 8 - Long.numberOfLeadingZeros(u) / 8;
      write(256 - n);
      for (int i = n - 1; i >= 0; i--) write((int) (u >>> (8 * i)) & 0xff);
    }

    void signed(long i) {
      uint(i < 0 ? (~i << 1) | 1 : i << 1);
    }

    void floatBits(double d) {
      uint(Long.reverseBytes(Double.doubleToRawLongBits(d)));
    }

    void string(String s) {
      byte[] b = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      uint(b.length);
      write(b, 0, b.length);
    }
  }
}
