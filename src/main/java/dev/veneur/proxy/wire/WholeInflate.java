package dev.veneur.proxy.wire;

import com.fulcrumgenomics.jlibdeflate.LibdeflateDecompressor;
import java.util.Objects;

/**
 * Inflates a whole raw-deflate stream in one call with libdeflate (native code, bundled for
 * Linux, macOS and Windows on x86-64 and arm64 by {@code com.fulcrumgenomics:jlibdeflate}).
 *
 * <p>Why: inflating request bodies was a fifth of the proxy's CPU with zlib, whose streaming
 * inflate keeps a window and a state machine it must be able to stop anywhere. libdeflate only
 * decodes complete buffers, which is what an {@code /import} body already is by the time it is
 * read, and on Veneur's bodies it is 2-3 times as fast (see the README's Performance section).
 *
 * <p>It is only ever a fast path: {@link #inflate} answers -1 for anything it does not decode to
 * completion (corrupt, cut short, no final block, or bigger than the room given), and the caller
 * then decodes the body with {@code java.util.zip}, which says exactly what is wrong and where.
 * Where the native library cannot load (another platform, a {@code noexec} temporary directory),
 * or when the system property {@value #PROPERTY} is {@code zlib}, {@link #create} returns null
 * and {@code java.util.zip} does all the work, as before; {@link #describe} says which runs.
 */
public final class WholeInflate {
  /** System property: {@code zlib} turns the native inflate off. */
  public static final String PROPERTY = "veneur.proxy.inflater";

  private static final String NOT_LOADED;

  static {
    String why = null;
    if ("zlib".equalsIgnoreCase(System.getProperty(PROPERTY, "").trim())) {
      why = "-D" + PROPERTY + "=zlib";
    } else {
      try {
        new LibdeflateDecompressor().close();
      } catch (Throwable t) {
        // UnsatisfiedLinkError, ExceptionInInitializerError, NoClassDefFoundError...: whatever
        // kept it from loading, java.util.zip does the work.
        why = t.getClass().getSimpleName() + ": " + t.getMessage();
      }
    }
    NOT_LOADED = why;
  }

  private final LibdeflateDecompressor native_;

  private WholeInflate(LibdeflateDecompressor d) {
    this.native_ = d;
  }

  /** True when libdeflate loaded (and is not turned off). */
  public static boolean available() {
    return NOT_LOADED == null;
  }

  /** Which inflate decodes request bodies, and why, for the startup log and the README. */
  public static String describe() {
    return NOT_LOADED == null
        ? "libdeflate (native, whole bodies; java.util.zip for the rest)"
        : "java.util.zip (libdeflate not in use: " + NOT_LOADED + ")";
  }

  /** A decompressor for one thread, or null when libdeflate is not available. */
  public static WholeInflate create() {
    if (NOT_LOADED != null) return null;
    try {
      return new WholeInflate(new LibdeflateDecompressor());
    } catch (Throwable t) {
      return null;
    }
  }

  /**
   * Decodes the raw deflate stream at {@code in[off, off+len)} into {@code out[outOff, outOff+room)}.
   * Bytes after the stream's final block (a zlib trailer, say) are ignored.
   *
   * @return bytes written, or -1 when the stream does not decode completely into {@code room}
   *     bytes: corrupt, cut short, lacking a final block, or larger than {@code room}
   */
  public int inflate(byte[] in, int off, int len, byte[] out, int outOff, int room) {
    Objects.checkFromIndexSize(off, len, in.length);
    Objects.checkFromIndexSize(outOff, room, out.length);
    try {
      return native_.deflateDecompressEx(in, off, len, out, outOff, room).outputBytesProduced();
    } catch (RuntimeException e) {
      return -1;
    }
  }

  public void close() {
    native_.close();
  }
}
