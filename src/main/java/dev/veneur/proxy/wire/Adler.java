package dev.veneur.proxy.wire;

/**
 * Adler-32 arithmetic for joining zlib streams without reading them again: the forwarder's
 * {@code BatchBody} joins chunks compressed apart, and the bench appends a probe to a body
 * compressed once. Both need the checksum of the whole from the checksums of its parts.
 */
public final class Adler {
  /** The largest prime below 2^16: Adler-32's modulus. */
  private static final int BASE = 65521;

  private Adler() {}

  /**
   * Adler-32 of the concatenation X‖Y from adler(X), adler(Y) and |Y| (zlib's adler32_combine):
   * A(XY) = A(X) + A(Y) - 1 and B(XY) = B(X) + B(Y) + |Y|·(A(X) - 1), modulo 65521.
   */
  public static int combine(int adler1, int adler2, long len2) {
    long a1 = adler1 & 0xffff;
    long b1 = (adler1 >>> 16) & 0xffff;
    long a2 = adler2 & 0xffff;
    long b2 = (adler2 >>> 16) & 0xffff;
    long rem = len2 % BASE;
    long a = (a1 + a2 + BASE - 1) % BASE;
    long b = (b1 + b2 + rem * ((a1 + BASE - 1) % BASE)) % BASE;
    return (int) ((b << 16) | a);
  }

  /** Adler-32 of the single byte {@code c}. */
  public static int ofByte(int c) {
    int a = 1 + (c & 0xff);
    return (a << 16) | a;
  }
}
