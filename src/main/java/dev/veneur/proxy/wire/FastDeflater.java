package dev.veneur.proxy.wire;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;

/**
 * A fast raw-DEFLATE encoder (RFC 1951) in pure Java, for chunks that are later joined without
 * recompression: every call writes non-final blocks ending in a sync flush, so outputs can be
 * concatenated (and closed by a final empty stored block) into one deflate stream.
 *
 * <p>Why not {@link java.util.zip.Deflater}: at level 1 it still walks hash chains and inserts
 * short matches, and each call crosses JNI. This encoder trades a little ratio for speed, in the
 * style of Snappy's matcher and Go's {@code compress/flate} BestSpeed: one hash table entry per
 * 4-byte hash (no chains), matches of 4 to 258 bytes within 32 KiB compared 8 bytes at a time, a
 * lookup step that grows over incompressible stretches, and per block the cheapest of a dynamic
 * Huffman, fixed Huffman or stored block, chosen from exact bit counts.
 *
 * <p>Each call is self-contained (no back-reference reaches an earlier call's input), and the
 * output never exceeds {@link #maxCompressedLength}. Not thread-safe: one instance per thread,
 * reused from call to call (its tables are allocated once).
 */
public final class FastDeflater {
  /** Little-endian views of byte arrays: one bounds check and one load for 4 or 8 bytes. */
  private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

  /** The largest distance deflate can express. */
  static final int WINDOW = 32768;
  static final int MIN_MATCH = 4;
  static final int MAX_MATCH = 258;
  /**
   * Input bytes per block, so an incompressible block falls back to exactly one stored block
   * (whose length field is 16 bits). Matches still reach back into earlier blocks of a call.
   */
  static final int BLOCK = 65535;
  /** Inputs beyond this are refused: positions and the bound must stay far from int overflow. */
  static final int MAX_INPUT = 1 << 30;
  /**
   * Bytes the encoder may write past the end of its output (the bit writer stores 8 bytes at a
   * time and then advances by the whole bytes it holds). Part of {@link #maxCompressedLength}.
   */
  private static final int SLACK = 8;

  private static final int HASH_BITS = 15;
  private static final int LITERALS = 256;
  private static final int END_BLOCK = 256;
  /** Literal/length symbols in use: 256 literals, end of block, 29 length codes. */
  private static final int L_CODES = 286;
  private static final int D_CODES = 30;
  /** Code length alphabet (RFC 1951 3.2.7): lengths 0-15, and 16, 17, 18 for runs. */
  private static final int CL_CODES = 19;
  private static final int MAX_BITS = 15;
  private static final int MAX_CL_BITS = 7;
  /** The order code-length code lengths are sent in. */
  private static final int[] CL_ORDER = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

  private static final int[] LEN_EXTRA = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  private static final int[] DIST_EXTRA = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
  /** Length code (0-28) of a match length minus 3. */
  private static final byte[] LEN_CODE = new byte[256];
  /** First length minus 3 of each length code. */
  private static final int[] LEN_BASE = new int[29];
  /** Distance code of distance-1: [0, 256) directly, from 256 on by (distance-1) >> 7. */
  private static final byte[] DIST_CODE = new byte[512];
  /** First distance minus 1 of each distance code. */
  private static final int[] DIST_BASE = new int[D_CODES];
  /** Fixed Huffman codes (RFC 1951 3.2.6) in this class's code table format, see {@link #codes}. */
  private static final int[] FIXED_LIT = new int[L_CODES];
  private static final int[] FIXED_DIST = new int[D_CODES];
  private static final int[] FIXED_LIT_LEN = new int[L_CODES];

  static {
    int length = 0;
    for (int code = 0; code < 28; code++) {
      LEN_BASE[code] = length;
      for (int n = 0; n < 1 << LEN_EXTRA[code]; n++) LEN_CODE[length++] = (byte) code;
    }
    // Length 258 has a code of its own (285) although 284's range would cover it with 31 extra.
    LEN_BASE[28] = 255;
    LEN_CODE[255] = 28;
    int dist = 0;
    for (int code = 0; code < 16; code++) {
      DIST_BASE[code] = dist;
      for (int n = 0; n < 1 << DIST_EXTRA[code]; n++) DIST_CODE[dist++] = (byte) code;
    }
    dist >>= 7;
    for (int code = 16; code < D_CODES; code++) {
      DIST_BASE[code] = dist << 7;
      for (int n = 0; n < 1 << (DIST_EXTRA[code] - 7); n++) DIST_CODE[256 + dist++] = (byte) code;
    }
    for (int i = 0; i < L_CODES; i++) FIXED_LIT_LEN[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    int[] fixedDistLen = new int[D_CODES];
    Arrays.fill(fixedDistLen, 5);
    // Symbols 286, 287 (and distances 30, 31) are left out: they are the last of their length,
    // so leaving them out changes no other symbol's canonical code.
    int[] scratch = new int[MAX_BITS + 1];
    codes(FIXED_LIT_LEN, L_CODES, FIXED_LIT, scratch);
    codes(fixedDistLen, D_CODES, FIXED_DIST, scratch);
  }

  /**
   * Virtual position (input index + {@link #delta}) of the last input seen with each hash, 0 or
   * from an earlier call when stale. Calls are spaced more than a window apart in this position
   * space, so an entry from an earlier call is always rejected by the distance check and the
   * table never needs clearing between calls.
   */
  private final int[] table = new int[1 << HASH_BITS];
  /**
   * Virtual position of the first byte of the next call. Package-private so a test can start
   * near the wrap instead of compressing 2 GiB first.
   */
  int next = WINDOW + 1;

  /** Per block: the literal run before each match, and the match (see {@link #addMatch}). */
  private final int[] runs = new int[BLOCK / MIN_MATCH + 1];
  private final int[] matches = new int[BLOCK / MIN_MATCH + 1];
  private int count;
  private final int[] litFreq = new int[L_CODES];
  private final int[] distFreq = new int[D_CODES];

  // Huffman construction scratch, reused from block to block.
  private final int[] litLen = new int[L_CODES];
  private final int[] distLen = new int[D_CODES];
  private final int[] litCodes = new int[L_CODES];
  private final int[] distCodes = new int[D_CODES];
  /** Combined length code and extra bits of each match length minus 3, see {@link #writeTokens}. */
  private final int[] lenCodes = new int[256];
  private final int[] clFreq = new int[CL_CODES];
  private final int[] clLen = new int[CL_CODES];
  private final int[] clCodes = new int[CL_CODES];
  /** The run-length coded code lengths of a dynamic header: symbol | extra bits value << 8. */
  private final int[] cl = new int[L_CODES + D_CODES];
  private int clCount;
  private final int[] lengths = new int[L_CODES + D_CODES];
  private final int[] sorted = new int[L_CODES];
  private final int[] depth = new int[L_CODES];
  private final int[] perLength = new int[MAX_BITS + 1];

  // The bit writer: bits go out least significant first, as deflate packs them.
  private byte[] out;
  private int pos;
  private long bits;
  private int nbits;

  public FastDeflater() {}

  /**
   * Worst-case output bytes for {@code len} input bytes: every block stored (5 bytes of header
   * per 65535 input bytes), the 5-byte sync marker, and 8 bytes the encoder may write past its
   * result as scratch (it never returns them).
   *
   * @throws IllegalArgumentException if {@code len} is negative or over 1 GiB
   */
  public static int maxCompressedLength(int len) {
    if (len < 0 || len > MAX_INPUT) throw new IllegalArgumentException("input length " + len);
    int blocks = Math.max(1, (len + BLOCK - 1) / BLOCK);
    return len + 5 * blocks + 5 + SLACK;
  }

  /**
   * Compresses {@code in[off, off+len)} as non-final deflate blocks followed by a sync flush (an
   * empty stored block, {@code 00 00 00 FF FF} once aligned) into {@code out} from {@code outOff}.
   * The caller guarantees {@link #maxCompressedLength}{@code (len)} bytes of room; bytes past the
   * returned length may be overwritten. Self-contained: no back-reference to earlier calls. An
   * empty input gives the 5-byte sync marker alone.
   *
   * @return bytes written
   */
  public int deflateSync(byte[] in, int off, int len, byte[] out, int outOff) {
    Objects.checkFromIndexSize(off, len, in.length);
    Objects.checkFromIndexSize(outOff, maxCompressedLength(len), out.length);
    if (next > Integer.MAX_VALUE - WINDOW - 1 - len) {
      // Virtual positions are about to overflow (after ~2 GiB of input): start over, which is
      // the one time the table is cleared.
      Arrays.fill(table, 0);
      next = WINDOW + 1;
    }
    int delta = next - off;
    this.out = out;
    pos = outOff;
    bits = 0;
    nbits = 0;
    for (int start = off, end = off + len; start < end; ) {
      int blockEnd = start + Math.min(BLOCK, end - start);
      findMatches(in, off, start, blockEnd, delta);
      writeBlock(in, start, blockEnd);
      start = blockEnd;
    }
    // Sync flush: an empty stored block, leaving the stream byte-aligned.
    putBits(0, 3);
    align();
    out[pos++] = 0;
    out[pos++] = 0;
    out[pos++] = (byte) 0xFF;
    out[pos++] = (byte) 0xFF;
    next += len + WINDOW + 1;
    this.out = null;
    return pos - outOff;
  }

  private static int hash(int fourBytes) {
    return (fourBytes * 0x1E35A7BD) >>> (32 - HASH_BITS);
  }

  /**
   * LZ77 parse of {@code in[start, end)} into {@link #runs}/{@link #matches}, counting symbol
   * frequencies. Matches may start anywhere from {@code base} (the call's first byte) but end
   * within the block. Snappy's scheme: look up the hash of each position; after 32 misses in a
   * row, look at every second position, then every third... so incompressible data is skipped
   * quickly; after a match, try again right at its end.
   */
  private void findMatches(byte[] in, int base, int start, int end, int delta) {
    int[] table = this.table;
    int[] litFreq = this.litFreq;
    Arrays.fill(litFreq, 0);
    Arrays.fill(distFreq, 0);
    count = 0;
    int emit = start;
    // The last position whose 4 bytes can be read for a hash or a comparison.
    int last = end - MIN_MATCH;
    int s = start;
    // A candidate is usable when 1 <= dist <= WINDOW, tested as one unsigned comparison:
    // (dist - 1) >>> 15 == 0. It also turns away entries at or past s (dist <= 0), which appear
    // when a match extended backwards ends before positions already hashed.
    if (s < last) {
      int nextHash = hash((int) INT.get(in, s));
      outer:
      while (true) {
        int skip = 32;
        int nextS = s;
        int dist;
        do {
          s = nextS;
          int step = skip >> 5;
          nextS = s + step;
          skip += step;
          if (nextS > last) break outer;
          int v = s + delta;
          dist = v - table[nextHash];
          table[nextHash] = v;
          nextHash = hash((int) INT.get(in, nextS));
        } while (((dist - 1) >>> 15) != 0 || (int) INT.get(in, s - dist) != (int) INT.get(in, s));
        // Extend backwards over literals the skipping passed by.
        while (s > emit && s - dist > base && in[s - 1] == in[s - 1 - dist]) s--;
        for (int i = emit; i < s; i++) litFreq[in[i] & 0xFF]++;
        runs[count] = s - emit;
        s += addMatch(in, s, dist, end);
        emit = s;
        // Data that just matched tends to match again right after: check the position the match
        // ends at before going back to skipping, and hash the one before it too.
        while (true) {
          if (s >= last) break outer;
          int v = s + delta;
          table[hash((int) INT.get(in, s - 1))] = v - 1;
          int h = hash((int) INT.get(in, s));
          dist = v - table[h];
          table[h] = v;
          if (((dist - 1) >>> 15) != 0 || (int) INT.get(in, s - dist) != (int) INT.get(in, s)) {
            nextHash = hash((int) INT.get(in, ++s));
            break;
          }
          runs[count] = 0;
          s += addMatch(in, s, dist, end);
          emit = s;
        }
      }
    }
    for (int i = emit; i < end; i++) litFreq[in[i] & 0xFF]++;
  }

  /**
   * Records the match at {@code s} with {@code dist}, its first 4 bytes known equal, as one int:
   * distance-1 in bits 0-14, length-3 in bits 15-22, distance code from bit 23.
   *
   * @return the match length
   */
  private int addMatch(byte[] in, int s, int dist, int end) {
    int len = MIN_MATCH + matchLength(in, s + MIN_MATCH, s + MIN_MATCH - dist, Math.min(MAX_MATCH, end - s) - MIN_MATCH);
    int d = dist - 1;
    int dc = d < 256 ? DIST_CODE[d] : DIST_CODE[256 + (d >>> 7)];
    litFreq[LITERALS + 1 + LEN_CODE[len - 3]]++;
    distFreq[dc]++;
    matches[count++] = d | (len - 3) << 15 | dc << 23;
    return len;
  }

  /** How many of the {@code limit} bytes from {@code a} equal those from {@code b}. */
  private static int matchLength(byte[] in, int a, int b, int limit) {
    int n = 0;
    while (n + 8 <= limit) {
      long x = (long) LONG.get(in, a + n) ^ (long) LONG.get(in, b + n);
      if (x != 0) return n + (Long.numberOfTrailingZeros(x) >>> 3);
      n += 8;
    }
    while (n < limit && in[a + n] == in[b + n]) n++;
    return n;
  }

  /** Writes the parsed block {@code in[start, end)} as the smallest of dynamic, fixed, stored. */
  private void writeBlock(byte[] in, int start, int end) {
    litFreq[END_BLOCK] = 1;
    buildLengths(litFreq, L_CODES, MAX_BITS, litLen);
    buildLengths(distFreq, D_CODES, MAX_BITS, distLen);
    int hlit = L_CODES;
    while (hlit > 257 && litLen[hlit - 1] == 0) hlit--;
    int hdist = D_CODES;
    while (hdist > 1 && distLen[hdist - 1] == 0) hdist--;
    runLengths(hlit, hdist);
    buildLengths(clFreq, CL_CODES, MAX_CL_BITS, clLen);
    int hclen = CL_CODES;
    while (hclen > 4 && clLen[CL_ORDER[hclen - 1]] == 0) hclen--;

    // Exact sizes in bits. Length and distance extra bits cost the same in both Huffman kinds.
    long extra = 0;
    for (int c = 0; c < 29; c++) extra += (long) litFreq[LITERALS + 1 + c] * LEN_EXTRA[c];
    for (int c = 0; c < D_CODES; c++) extra += (long) distFreq[c] * DIST_EXTRA[c];
    long dynamic = 3 + 5 + 5 + 4 + 3L * hclen + extra;
    for (int i = 0; i < clCount; i++) {
      int sym = cl[i] & 0xFF;
      dynamic += clLen[sym] + (sym == 16 ? 2 : sym == 17 ? 3 : sym == 18 ? 7 : 0);
    }
    long fixed = 3 + extra;
    for (int i = 0; i < L_CODES; i++) {
      dynamic += (long) litFreq[i] * litLen[i];
      fixed += (long) litFreq[i] * FIXED_LIT_LEN[i];
    }
    for (int i = 0; i < D_CODES; i++) {
      dynamic += (long) distFreq[i] * distLen[i];
      fixed += (long) distFreq[i] * 5;
    }
    long stored = (((nbits + 3 + 7) & ~7) - nbits) + 32 + 8L * (end - start);

    if (stored <= fixed && stored <= dynamic) {
      putBits(0, 3); // BFINAL 0, BTYPE 00
      align();
      int n = end - start;
      out[pos++] = (byte) n;
      out[pos++] = (byte) (n >>> 8);
      out[pos++] = (byte) ~n;
      out[pos++] = (byte) (~n >>> 8);
      System.arraycopy(in, start, out, pos, n);
      pos += n;
    } else if (fixed <= dynamic) {
      putBits(1 << 1, 3); // BFINAL 0, BTYPE 01
      writeTokens(in, start, end, FIXED_LIT, FIXED_DIST);
    } else {
      putBits(2 << 1, 3); // BFINAL 0, BTYPE 10
      putBits(hlit - 257, 5);
      putBits(hdist - 1, 5);
      putBits(hclen - 4, 4);
      for (int i = 0; i < hclen; i++) putBits(clLen[CL_ORDER[i]], 3);
      codes(clLen, CL_CODES, clCodes, perLength);
      for (int i = 0; i < clCount; i++) {
        int sym = cl[i] & 0xFF;
        int c = clCodes[sym];
        putBits(c & 0xFFFF, c >>> 16);
        if (sym == 16) putBits(cl[i] >>> 8, 2);
        else if (sym == 17) putBits(cl[i] >>> 8, 3);
        else if (sym == 18) putBits(cl[i] >>> 8, 7);
      }
      codes(litLen, L_CODES, litCodes, perLength);
      codes(distLen, D_CODES, distCodes, perLength);
      writeTokens(in, start, end, litCodes, distCodes);
    }
  }

  /**
   * Run-length codes the literal/length then distance code lengths as one sequence (RFC 1951
   * 3.2.7: runs may cross from one to the other) into {@link #cl}, counting {@link #clFreq}.
   */
  private void runLengths(int hlit, int hdist) {
    int[] lengths = this.lengths;
    System.arraycopy(litLen, 0, lengths, 0, hlit);
    System.arraycopy(distLen, 0, lengths, hlit, hdist);
    int total = hlit + hdist;
    Arrays.fill(clFreq, 0);
    int n = 0;
    for (int i = 0; i < total; ) {
      int len = lengths[i];
      int run = 1;
      while (i + run < total && lengths[i + run] == len) run++;
      i += run;
      if (len == 0) {
        for (; run >= 11; ) {
          int r = Math.min(run, 138);
          cl[n++] = 18 | (r - 11) << 8;
          run -= r;
        }
        if (run >= 3) {
          cl[n++] = 17 | (run - 3) << 8;
          run = 0;
        }
      } else {
        cl[n++] = len;
        run--;
        for (; run >= 3; ) {
          int r = Math.min(run, 6);
          cl[n++] = 16 | (r - 3) << 8;
          run -= r;
        }
      }
      for (; run > 0; run--) cl[n++] = len;
    }
    for (int i = 0; i < n; i++) clFreq[cl[i] & 0xFF]++;
    clCount = n;
  }

  /**
   * Huffman codes the block's tokens with the given code tables, then the end-of-block code.
   * Literal codes come from the input (they were never copied). The bit buffer is emptied to at
   * most 7 bits by an 8-byte store before each match, whose up to 48 bits (length code and extra,
   * distance code and extra) then fit; literals (15 bits at most) are added while under 48 bits.
   */
  private void writeTokens(byte[] in, int start, int end, int[] litCodes, int[] distCodes) {
    int[] lenCodes = this.lenCodes;
    for (int l = 0; l < 256; l++) {
      int lc = LEN_CODE[l];
      int c = litCodes[LITERALS + 1 + lc];
      int codeBits = c >>> 16;
      lenCodes[l] = (c & 0xFFFF | (l - LEN_BASE[lc]) << codeBits) | (codeBits + LEN_EXTRA[lc]) << 24;
    }
    byte[] out = this.out;
    long bits = this.bits;
    int nbits = this.nbits;
    int pos = this.pos;
    int[] runs = this.runs;
    int[] matches = this.matches;
    int p = start;
    for (int k = 0, n = count; k < n; k++) {
      for (int e = p + runs[k]; p < e; p++) {
        int c = litCodes[in[p] & 0xFF];
        bits |= (long) (c & 0xFFFF) << nbits;
        nbits += c >>> 16;
        if (nbits >= 48) {
          LONG.set(out, pos, bits);
          pos += 6;
          bits >>>= 48;
          nbits -= 48;
        }
      }
      LONG.set(out, pos, bits);
      pos += nbits >>> 3;
      bits >>>= nbits & ~7;
      nbits &= 7;
      int m = matches[k];
      int l = (m >>> 15) & 0xFF;
      int lc = lenCodes[l];
      bits |= (long) (lc & 0xFFFFFF) << nbits;
      nbits += lc >>> 24;
      int dc = m >>> 23;
      int c = distCodes[dc];
      bits |= (long) (c & 0xFFFF) << nbits;
      nbits += c >>> 16;
      bits |= (long) ((m & 0x7FFF) - DIST_BASE[dc]) << nbits;
      nbits += DIST_EXTRA[dc];
      if (nbits >= 48) {
        LONG.set(out, pos, bits);
        pos += 6;
        bits >>>= 48;
        nbits -= 48;
      }
      p += l + 3;
    }
    for (; p < end; p++) {
      int c = litCodes[in[p] & 0xFF];
      bits |= (long) (c & 0xFFFF) << nbits;
      nbits += c >>> 16;
      if (nbits >= 48) {
        LONG.set(out, pos, bits);
        pos += 6;
        bits >>>= 48;
        nbits -= 48;
      }
    }
    this.bits = bits;
    this.nbits = nbits;
    this.pos = pos;
    int c = litCodes[END_BLOCK];
    putBits(c & 0xFFFF, c >>> 16);
  }

  /** Adds {@code n} (at most 16) bits; keeps fewer than 48 bits buffered. */
  private void putBits(int value, int n) {
    bits |= (long) value << nbits;
    nbits += n;
    if (nbits >= 48) {
      LONG.set(out, pos, bits);
      pos += 6;
      bits >>>= 48;
      nbits -= 48;
    }
  }

  /** Writes out the buffered bits, padding the last byte with zeros. */
  private void align() {
    LONG.set(out, pos, bits);
    pos += (nbits + 7) >>> 3;
    bits = 0;
    nbits = 0;
  }

  /**
   * Code lengths of at most {@code limit} bits for symbols {@code [0, n)} with {@code freq}, into
   * {@code lengths} (0 for unused symbols). A code always has at least two symbols, so it is
   * complete (every decoder takes it; zlib and Go accept a lone one-bit code, but need not).
   * Package-private for a direct test of the length limit.
   */
  void buildLengths(int[] freq, int n, int limit, int[] lengths) {
    int[] sorted = this.sorted;
    int used = 0;
    for (int i = 0; i < n; i++) {
      lengths[i] = 0;
      // Frequencies are below 2^17 (a block is at most 65535 bytes), leaving 9 bits for symbol.
      if (freq[i] != 0) sorted[used++] = freq[i] << 9 | i;
    }
    if (used < 2) {
      int sym = used == 0 ? 0 : sorted[0] & 511;
      lengths[sym] = 1;
      lengths[sym == 0 ? 1 : 0] = 1;
      return;
    }
    Arrays.sort(sorted, 0, used);
    int[] depth = this.depth;
    for (int i = 0; i < used; i++) depth[i] = sorted[i] >>> 9;
    minimumRedundancy(depth, used);
    // Count codes per length with overlong ones cut to the limit, then repair the Kraft sum: take
    // a code off the limit and move one of the longest shorter codes a level down (which frees a
    // place for it and another), until the code fits exactly (as miniz does).
    int[] perLength = this.perLength;
    Arrays.fill(perLength, 0);
    for (int i = 0; i < used; i++) perLength[Math.min(depth[i], limit)]++;
    long kraft = 0;
    for (int l = 1; l <= limit; l++) kraft += (long) perLength[l] << (limit - l);
    for (; kraft > 1L << limit; kraft--) {
      perLength[limit]--;
      for (int l = limit - 1; l > 0; l--) {
        if (perLength[l] != 0) {
          perLength[l]--;
          perLength[l + 1] += 2;
          break;
        }
      }
    }
    // Longest codes to the rarest symbols (sorted ascending by frequency).
    int k = 0;
    for (int l = limit; l > 0; l--) {
      for (int c = perLength[l]; c > 0; c--) lengths[sorted[k++] & 511] = l;
    }
  }

  /**
   * Moffat and Katajainen's in-place minimum-redundancy code ("In-Place Calculation of
   * Minimum-Redundancy Codes", 1995): {@code a[0, n)}, weights ascending, n at least 2, becomes
   * the code length of each. Linear, no heap and no tree nodes.
   */
  private static void minimumRedundancy(int[] a, int n) {
    // First pass, left to right: pair the two lightest of leaves and internal nodes, leaving
    // parent pointers behind.
    a[0] += a[1];
    int root = 0;
    int leaf = 2;
    for (int next = 1; next < n - 1; next++) {
      if (leaf >= n || a[root] < a[leaf]) {
        a[next] = a[root];
        a[root++] = next;
      } else {
        a[next] = a[leaf++];
      }
      if (leaf >= n || (root < next && a[root] < a[leaf])) {
        a[next] += a[root];
        a[root++] = next;
      } else {
        a[next] += a[leaf++];
      }
    }
    // Second pass, right to left: depths of internal nodes from parent pointers.
    a[n - 2] = 0;
    for (int next = n - 3; next >= 0; next--) a[next] = a[a[next]] + 1;
    // Third pass, right to left: leaf depths from the number of internal nodes at each depth.
    int avail = 1;
    int usedNodes = 0;
    int d = 0;
    root = n - 2;
    int next = n - 1;
    while (avail > 0) {
      while (root >= 0 && a[root] == d) {
        usedNodes++;
        root--;
      }
      while (avail > usedNodes) {
        a[next--] = d;
        avail--;
      }
      avail = 2 * usedNodes;
      d++;
      usedNodes = 0;
    }
  }

  /**
   * Canonical Huffman codes (RFC 1951 3.2.2) from code lengths, into {@code codes} as the code
   * bit-reversed (deflate sends codes most significant bit first, this writer least first) in
   * the low 16 bits and its length above. {@code scratch} holds at least 16 ints.
   */
  private static void codes(int[] lengths, int n, int[] codes, int[] scratch) {
    Arrays.fill(scratch, 0, MAX_BITS + 1, 0);
    for (int i = 0; i < n; i++) scratch[lengths[i]]++;
    // Counts per length become the first code of each length, in place.
    for (int l = 1, code = 0, shorter = 0; l <= MAX_BITS; l++) {
      int here = scratch[l];
      code = (code + shorter) << 1;
      scratch[l] = code;
      shorter = here;
    }
    for (int i = 0; i < n; i++) {
      int l = lengths[i];
      codes[i] = l == 0 ? 0 : Integer.reverse(scratch[l]++) >>> (32 - l) | l << 16;
    }
  }
}
