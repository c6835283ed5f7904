package dev.veneur.proxy.ingest;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.zip.DataFormatException;
import java.util.zip.GZIPInputStream;
import java.util.zip.Inflater;
import java.util.zip.ZipException;

/**
 * Turns a request body into JSON bytes, inflating at most {@code maxInflated} bytes so that a
 * small zlib bomb costs a bounded buffer, never gigabytes of heap. Output goes to a scratch array
 * reused across requests (the caller copies out what it keeps before the next call).
 *
 * <p>Not thread-safe: one per event loop.
 */
public final class BodyDecoder {
  private static final int KEEP_SCRATCH = 8 * 1024 * 1024;

  private final long maxInflated;
  private final Inflater zlib = new Inflater();
  private final Inflater raw = new Inflater(true);
  private byte[] scratch = new byte[256 * 1024];
  private int length;

  public BodyDecoder(long maxInflated) {
    this.maxInflated = maxInflated;
  }

  /** The decoded bytes of the last {@link #decode} call, valid until the next call. */
  public byte[] bytes() {
    return scratch;
  }

  public long limit() {
    return maxInflated;
  }

  public int length() {
    return length;
  }

  /**
   * Decodes {@code body[0, len)} as the given {@code Content-Encoding}.
   *
   * @throws ImportRefusal 415 for an unknown encoding, 400 for a corrupt stream, 413 past the limit
   */
  public void decode(String encoding, byte[] body, int len) {
    String enc = encoding == null ? "" : encoding.trim().toLowerCase(java.util.Locale.ROOT);
    switch (enc) {
      case "":
      case "identity":
        if (len > maxInflated) throw tooLarge();
        ensure(len);
        System.arraycopy(body, 0, scratch, 0, len);
        length = len;
        return;
      case "deflate":
        // RFC 9110 says zlib; a few clients send a bare deflate stream, which we accept too.
        inflate(looksLikeZlib(body, len) ? zlib : raw, body, len);
        return;
      case "gzip":
      case "x-gzip":
        gunzip(body, len);
        return;
      default:
        throw new ImportRefusal(415, "unknown_content_encoding",
            "unsupported Content-Encoding '" + shorten(encoding) + "': use deflate, gzip or identity");
    }
  }

  /** Sheds a scratch buffer grown by one exceptional body so it is not held forever. */
  public void trim() {
    if (scratch.length > KEEP_SCRATCH) scratch = new byte[256 * 1024];
  }

  private void inflate(Inflater inf, byte[] body, int len) {
    inf.reset();
    inf.setInput(body, 0, len);
    int out = 0;
    try {
      while (!inf.finished()) {
        if (out == scratch.length) {
          if (out >= maxInflated) throw tooLarge();
          grow(out + 1);
        }
        int room = (int) Math.min(scratch.length - out, maxInflated - out + 1);
        int n = inf.inflate(scratch, out, room);
        out += n;
        if (out > maxInflated) throw tooLarge();
        if (n == 0) {
          if (inf.needsDictionary()) {
            throw new ImportRefusal(400, "deflate", "deflate stream needs a preset dictionary");
          }
          if (inf.needsInput()) {
            throw new ImportRefusal(400, "deflate", "deflate stream is truncated");
          }
        }
      }
    } catch (DataFormatException e) {
      throw new ImportRefusal(400, "deflate", "corrupt deflate stream: " + e.getMessage());
    }
    length = out;
  }

  private void gunzip(byte[] body, int len) {
    int out = 0;
    try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(body, 0, len), 8192)) {
      while (true) {
        if (out == scratch.length) {
          if (out >= maxInflated) throw tooLarge();
          grow(out + 1);
        }
        int room = (int) Math.min(scratch.length - out, maxInflated - out + 1);
        int n = in.read(scratch, out, room);
        if (n < 0) break;
        out += n;
        if (out > maxInflated) throw tooLarge();
      }
    } catch (ZipException e) {
      throw new ImportRefusal(400, "gzip", "corrupt gzip stream: " + e.getMessage());
    } catch (IOException e) {
      throw new ImportRefusal(400, "gzip", "unreadable gzip stream: " + e.getMessage());
    }
    length = out;
  }

  private static boolean looksLikeZlib(byte[] b, int len) {
    if (len < 2) return true;
    int cmf = b[0] & 0xff;
    int flg = b[1] & 0xff;
    return (cmf & 0x0f) == 8 && ((cmf << 8) | flg) % 31 == 0;
  }

  private void ensure(int n) {
    if (scratch.length < n) grow(n);
  }

  private void grow(int atLeast) {
    long next = Math.max((long) scratch.length * 2, atLeast);
    next = Math.min(next, maxInflated + 1);
    byte[] bigger = new byte[(int) Math.max(next, atLeast)];
    System.arraycopy(scratch, 0, bigger, 0, scratch.length);
    scratch = bigger;
  }

  private ImportRefusal tooLarge() {
    return new ImportRefusal(413, "too_large",
        "decoded body exceeds max_inflated_bytes (" + maxInflated + " bytes)");
  }

  private static String shorten(String s) {
    return s.length() > 40 ? s.substring(0, 40) + "..." : s;
  }
}
