package dev.veneur.proxy.ingest;

import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.wire.WholeInflate;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Locale;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * A request body decoded as it is read: identity, zlib (or raw) deflate, or gzip, delivered
 * window by window into the caller's buffer. Nothing is decoded ahead of the caller, so a
 * decompression bomb costs one window, and the caller counts what comes out against
 * {@code max_inflated_bytes}.
 *
 * <p>The body arrives as the network delivered it: a list of buffers, read in place (no copy into
 * one array). One instance per event loop, reused: its inflaters hold native memory.
 *
 * <p>A deflate body that decodes completely in one call is first given to libdeflate ({@link
 * WholeInflate}, 2-3 times zlib's speed), into a scratch buffer the caller then reads from window
 * by window. The scratch is bounded ({@link #WHOLE_MAX}, and {@code maxOut}) and its growth is
 * reserved in the memory budget (when it does not fit, the body is streamed). Anything libdeflate
 * does not decode to completion (corrupt, cut short, bigger than the room) is decoded again from
 * its start by zlib's streaming inflate, as if libdeflate had not been tried: the answers, and
 * how far a body is read before a fault counts, are zlib's.
 */
public final class BodySource {
  /**
   * Scratch for a whole decoded body, allocated once and kept (a Veneur body of 1000 metrics
   * decodes to ~300 KB); a larger body gets a scratch of its own, reserved, dropped after it.
   */
  static final int WHOLE_BASE = 1024 * 1024;
  /** Scratch for a compressed body that came in several buffers, kept likewise. */
  static final int PACKED_BASE = 128 * 1024;
  /**
   * The largest body decoded whole (compressed, and decoded): larger ones are streamed, a window
   * at a time. Decoding one is a single call on the event loop: 4 MiB takes about 1.5 ms.
   */
  static final int WHOLE_MAX = 4 * 1024 * 1024;

  private final Inflater raw = new Inflater(true);
  private final CRC32 crc = new CRC32();
  private final MemoryBudget budget;
  /** libdeflate, or null: streaming zlib only. */
  private final WholeInflate whole;
  /** The whole decoded body (mode WHOLE), {@link #wholeLen} bytes, read from {@link #wholePos}. */
  private byte[] decoded;
  private int wholeLen;
  private int wholePos;
  /** The compressed body in one array, when the network delivered it in several buffers. */
  private byte[] packed;

  /** Streaming zlib only, nothing reserved: for tools and tests. */
  public BodySource() {
    this(null, false);
  }

  /**
   * @param budget where the whole-body scratch's growth is reserved
   * @param nativeInflate try libdeflate first (when it loaded)
   */
  public BodySource(MemoryBudget budget, boolean nativeInflate) {
    this.budget = budget;
    this.whole = nativeInflate && budget != null ? WholeInflate.create() : null;
  }

  private List<ByteBuffer> parts;
  private int part;
  private Mode mode;
  private Inflater inflater;
  private long produced;
  private long limit;
  private boolean ended;
  /** A chunk: its deflate blocks end with a sync flush, not a final block; its end is the input's. */
  private boolean unterminated;
  /** gzip: the current member's output is checksummed for its trailer. */
  private long memberBytes;
  /** Bytes wrapped around the decoded stream (the brackets around a chunk's metrics). */
  private byte[] prefix;
  private byte[] suffix;
  private int prefixPos;
  private int suffixPos;

  private enum Mode { IDENTITY, INFLATE, GZIP, WHOLE }

  /**
   * Starts decoding a request body.
   *
   * @param encoding the request's Content-Encoding
   * @param maxOut the most bytes it may decode to ({@code max_inflated_bytes})
   * @throws ImportRefusal 415 for an encoding it does not know
   */
  public void open(String encoding, List<ByteBuffer> body, long maxOut) {
    String enc = encoding == null ? "" : encoding.trim().toLowerCase(Locale.ROOT);
    begin(body, maxOut, null, null);
    switch (enc) {
      case "":
      case "identity":
        mode = Mode.IDENTITY;
        break;
      case "deflate":
        // RFC 9110 says zlib; a few clients send a bare deflate stream, which is accepted too.
        mode = Mode.INFLATE;
        inflater = raw;
        inflater.reset();
        if (looksLikeZlib()) zlibHeader();
        if (whole != null) tryWhole();
        break;
      case "gzip":
      case "x-gzip":
        mode = Mode.GZIP;
        inflater = raw;
        gzipHeader();
        break;
      default:
        throw new ImportRefusal(415, "unknown_content_encoding",
            "unsupported Content-Encoding '" + shorten(encoding) + "': use deflate, gzip or identity");
    }
  }

  /**
   * Starts decoding a queued chunk (raw deflate of comma-joined metric objects) as the array
   * {@code [<metrics>]}, for re-routing or splitting it.
   */
  public void openChunk(byte[] deflated, int length) {
    begin(List.of(ByteBuffer.wrap(deflated, 0, length)), Long.MAX_VALUE, OPEN, CLOSE);
    unterminated = true;
    mode = Mode.INFLATE;
    inflater = raw;
    inflater.reset();
  }

  private static final byte[] OPEN = {'['};
  private static final byte[] CLOSE = {']'};

  private void begin(List<ByteBuffer> body, long maxOut, byte[] pre, byte[] post) {
    parts = body;
    part = 0;
    produced = 0;
    limit = maxOut;
    ended = false;
    prefix = pre;
    suffix = post;
    prefixPos = 0;
    suffixPos = 0;
    memberBytes = 0;
    unterminated = false;
  }

  /** Bytes decoded so far. */
  public long produced() {
    return produced;
  }

  /** Drops references to the body, and scratch grown for an exceptional one. */
  public void close() {
    parts = null;
    if (decoded != null && decoded.length > WHOLE_BASE) {
      budget.release(decoded.length - WHOLE_BASE);
      decoded = null;
    }
    if (packed != null && packed.length > PACKED_BASE) {
      budget.release(packed.length - PACKED_BASE);
      packed = null;
    }
  }

  /** True when the body being read was decoded whole by libdeflate. */
  boolean decodedWhole() {
    return mode == Mode.WHOLE;
  }

  /**
   * The body decoded whole, handed over instead of copied out window by window, if it was and
   * none of it has been read and it is at most {@code most} bytes: its array (this source's,
   * valid until the next {@link #open} or {@link #close}), {@link #wholeLength()} bytes of it.
   * The body then reads as ended. Null otherwise.
   *
   * @throws ImportRefusal 413 when it is longer than the limit, as reading it would
   */
  byte[] takeWhole(long most) {
    if (mode != Mode.WHOLE || wholePos != 0 || wholeLen > most) return null;
    wholePos = wholeLen;
    produced = wholeLen;
    if (produced > limit) throw tooLarge();
    return decoded;
  }

  int wholeLength() {
    return wholeLen;
  }

  /**
   * Decodes the rest of the body (past the zlib header) with libdeflate, if it fits. On success
   * reads come from {@link #decoded}; otherwise nothing has changed and zlib streams it.
   */
  private void tryWhole() {
    long compressed = 0;
    ByteBuffer only = null;
    int withBytes = 0;
    for (int p = part; p < parts.size(); p++) {
      ByteBuffer b = parts.get(p);
      if (!b.hasRemaining()) continue;
      compressed += b.remaining();
      only = b;
      withBytes++;
    }
    if (compressed == 0 || compressed > WHOLE_MAX) return;
    // One more than the limit may come out, as with zlib: the reader then meets the 413.
    int most = limit >= WHOLE_MAX ? WHOLE_MAX : (int) limit + 1;
    byte[] in;
    int inOff;
    int inLen = (int) compressed;
    if (withBytes == 1 && only.hasArray()) {
      in = only.array();
      inOff = only.arrayOffset() + only.position();
    } else {
      if (!scratch(true, inLen)) return;
      in = packed;
      inOff = 0;
      int at = 0;
      for (int p = part; p < parts.size(); p++) {
        ByteBuffer b = parts.get(p);
        int n = b.remaining();
        b.get(b.position(), packed, at, n);
        at += n;
      }
    }
    // The kept scratch first: a body that does not fit costs that much decoding twice, where a
    // guess from the compressed size would allocate (and zero) a new array for every body.
    int first = Math.min(most, WHOLE_BASE);
    int n = inflateWhole(in, inOff, inLen, first);
    if (n < 0 && first < most) n = inflateWhole(in, inOff, inLen, most);
    if (n < 0) return;
    mode = Mode.WHOLE;
    wholeLen = n;
    wholePos = 0;
  }

  private int inflateWhole(byte[] in, int off, int len, int room) {
    if (!scratch(false, room)) return -1;
    return whole.inflate(in, off, len, decoded, 0, room);
  }

  /**
   * Makes {@link #packed} or {@link #decoded} hold {@code need} bytes: the kept base size, or
   * exactly {@code need} past it, that growth reserved in the budget (false when it is full).
   */
  private boolean scratch(boolean input, int need) {
    byte[] have = input ? packed : decoded;
    int base = input ? PACKED_BASE : WHOLE_BASE;
    int size = have == null ? 0 : have.length;
    if (size >= need) return true;
    int want = Math.max(base, need);
    long beyondBase = Math.max(0, want - base) - Math.max(0, size - base);
    if (beyondBase > 0 && !budget.tryReserve(beyondBase)) return false;
    if (input) packed = new byte[want];
    else decoded = new byte[want];
    return true;
  }

  /**
   * Decodes up to {@code len} bytes into {@code dst[off...]}.
   *
   * @return bytes written (&gt; 0), or -1 at the end of the body
   * @throws ImportRefusal 400 for a corrupt or truncated stream, 413 past {@code maxOut}
   */
  public int read(byte[] dst, int off, int len) {
    if (prefix != null && prefixPos < prefix.length) {
      int n = Math.min(len, prefix.length - prefixPos);
      System.arraycopy(prefix, prefixPos, dst, off, n);
      prefixPos += n;
      return n;
    }
    int n = ended ? -1
        : mode == Mode.WHOLE ? fromWhole(dst, off, len)
        : mode == Mode.IDENTITY ? copy(dst, off, len) : inflate(dst, off, len);
    if (n < 0) {
      ended = true;
      if (suffix != null && suffixPos < suffix.length) {
        int s = Math.min(len, suffix.length - suffixPos);
        System.arraycopy(suffix, suffixPos, dst, off, s);
        suffixPos += s;
        return s;
      }
      return -1;
    }
    produced += n;
    if (produced > limit) throw tooLarge();
    return n;
  }

  private ImportRefusal tooLarge() {
    return new ImportRefusal(413, "too_large", "decoded body exceeds max_inflated_bytes (" + limit + " bytes)");
  }

  private int fromWhole(byte[] dst, int off, int len) {
    // At most one byte past the limit was decoded (the room was the limit + 1), as zlib is asked.
    int n = Math.min(len, wholeLen - wholePos);
    if (n <= 0) return -1;
    System.arraycopy(decoded, wholePos, dst, off, n);
    wholePos += n;
    return n;
  }

  private int copy(byte[] dst, int off, int len) {
    while (part < parts.size()) {
      ByteBuffer p = parts.get(part);
      if (p.hasRemaining()) {
        int n = Math.min(len, p.remaining());
        p.get(dst, off, n);
        return n;
      }
      part++;
    }
    return -1;
  }

  private int inflate(byte[] dst, int off, int len) {
    try {
      boolean drainedInput = false;
      while (true) {
        if (inflater.finished()) {
          if (mode == Mode.GZIP && gzipTrailerThenNext()) continue;
          return -1;
        }
        if (inflater.needsInput()) {
          ByteBuffer next = nextInput();
          if (next != null) {
            inflater.setInput(next);
          } else if (drainedInput) {
            // All input consumed and nothing more comes out: the end of a chunk (it has no final
            // block by design), or a request body cut short.
            if (unterminated) return -1;
            throw new ImportRefusal(400, mode == Mode.GZIP ? "gzip" : "deflate",
                (mode == Mode.GZIP ? "gzip" : "deflate") + " stream is truncated");
          } else {
            // Output can still be pending with no input left (a match being copied when the last
            // call's output was full): ask once more before calling it the end.
            drainedInput = true;
          }
        }
        if (inflater.needsDictionary()) {
          throw new ImportRefusal(400, "deflate", "deflate stream needs a preset dictionary");
        }
        // Never ask for more than one past the limit: a bomb stops here, not after it expanded.
        // (Long.MAX_VALUE means no limit: limit - produced + 1 must not wrap to a room of 1.)
        long left = limit - produced;
        int room = left >= len ? len : (int) Math.max(1, left + 1);
        int n = inflater.inflate(dst, off, room);
        if (n > 0) {
          if (mode == Mode.GZIP) {
            crc.update(dst, off, n);
            memberBytes += n;
          }
          return n;
        }
      }
    } catch (DataFormatException e) {
      String kind = mode == Mode.GZIP ? "gzip" : "deflate";
      throw new ImportRefusal(400, kind, "corrupt " + kind + " stream: " + e.getMessage());
    }
  }

  /**
   * The next body buffer with bytes in it. The inflater advances its position as it consumes it,
   * so after a gzip member ends the trailer is read from where the inflater stopped.
   */
  private ByteBuffer nextInput() {
    while (part < parts.size()) {
      ByteBuffer p = parts.get(part);
      if (p.hasRemaining()) return p;
      part++;
    }
    return null;
  }

  /**
   * The zlib header is read here and the stream inflated raw, so its Adler-32 trailer is never
   * checked: Go's decoder in the global stops reading once the JSON array is complete, so a body
   * whose trailer is damaged (or missing) is accepted there, and must be here.
   */
  private void zlibHeader() {
    if (peek(0) < 0 || peek(1) < 0) {
      throw new ImportRefusal(400, "deflate", "deflate stream is truncated");
    }
    readByte();
    int flg = readByte();
    if ((flg & 0x20) != 0) throw new ImportRefusal(400, "deflate", "deflate stream needs a preset dictionary");
  }

  private boolean looksLikeZlib() {
    int b0 = peek(0);
    int b1 = peek(1);
    if (b0 < 0 || b1 < 0) return true;
    return (b0 & 0x0f) == 8 && ((b0 << 8) | b1) % 31 == 0;
  }

  /** Byte {@code k} of the unread body without consuming it, or -1. */
  private int peek(int k) {
    for (int p = part; p < parts.size(); p++) {
      ByteBuffer b = parts.get(p);
      if (k < b.remaining()) return b.get(b.position() + k) & 0xff;
      k -= b.remaining();
    }
    return -1;
  }

  // ---------------------------------------------------------------- gzip (RFC 1952)

  private int readByte() {
    while (part < parts.size()) {
      ByteBuffer p = parts.get(part);
      if (p.hasRemaining()) return p.get() & 0xff;
      part++;
    }
    throw new ImportRefusal(400, "gzip", "gzip stream is truncated");
  }

  private void skip(long n) {
    for (long k = 0; k < n; k++) readByte();
  }

  private void gzipHeader() {
    if (readByte() != 0x1f || readByte() != 0x8b) {
      throw new ImportRefusal(400, "gzip", "corrupt gzip stream: not in GZIP format");
    }
    if (readByte() != 8) throw new ImportRefusal(400, "gzip", "corrupt gzip stream: unsupported compression method");
    int flags = readByte();
    skip(6); // mtime, xfl, os
    if ((flags & 4) != 0) skip(readByte() | (readByte() << 8)); // FEXTRA
    if ((flags & 8) != 0) while (readByte() != 0) { } // FNAME
    if ((flags & 16) != 0) while (readByte() != 0) { } // FCOMMENT
    if ((flags & 2) != 0) skip(2); // FHCRC
    inflater.reset();
    crc.reset();
    memberBytes = 0;
  }

  /** Checks the member trailer; returns true when another member follows (concatenated gzip). */
  private boolean gzipTrailerThenNext() {
    long want = readByte() | (readByte() << 8) | (readByte() << 16) | ((long) readByte() << 24);
    long size = readByte() | (readByte() << 8) | (readByte() << 16) | ((long) readByte() << 24);
    if (want != crc.getValue()) throw new ImportRefusal(400, "gzip", "corrupt gzip stream: CRC mismatch");
    if (size != (memberBytes & 0xffffffffL)) throw new ImportRefusal(400, "gzip", "corrupt gzip stream: size mismatch");
    int more = peek(0);
    if (more < 0) return false;
    if (more != 0x1f) return false; // trailing bytes that are not a member are ignored, as Go does
    gzipHeader();
    return true;
  }

  private static String shorten(String s) {
    return s.length() > 40 ? s.substring(0, 40) + "..." : s;
  }
}
