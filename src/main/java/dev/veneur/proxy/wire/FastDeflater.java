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
 * <p>Why not {@link java.util.zip.Deflater}: even at level 1 zlib keeps hash chains up to date
 * and walks them for every match. This encoder does less, in the style of Snappy's matcher and
 * Go's {@code compress/flate} BestSpeed: one hash table entry per hash of 6 bytes (no chains),
 * matches of 4 to 258 bytes within 32 KiB compared 8 bytes at a time, and a lookup step that
 * grows over incompressible stretches.
 *
 * <p>And it makes one pass: the matcher writes each literal and match as Huffman bits the moment
 * it finds it, so that work fills the time the matcher spends waiting on memory, and no tokens
 * are stored (a first version that stored them, counted them, then built exact codes took 1.3
 * to 1.4 times as long, for output 1.5-5% smaller). That needs the codes before the block is
 * parsed, so they are built from the symbol counts of an earlier block, this call's or an
 * earlier call's: JSON from the same source changes little from one block to the next. A
 * deflater with no counts yet (new, or {@link #reset}) starts with a short block in the fixed
 * Huffman codes, counting. Fixed codes are also used when the counts promise them fewer bits (a
 * small input), and a block that comes out bigger than stored is rewritten as a stored block.
 *
 * <p>Each call is self-contained: no back-reference reaches an earlier call's input (the output
 * depends on earlier calls only through the codes chosen). The output never exceeds {@link
 * #maxCompressedLength}. Not thread-safe: one instance per thread, reused from call to call (its
 * tables are allocated once).
 */
public final class FastDeflater {
  /** Little-endian views of byte arrays: one bounds check and one load for 4 or 8 bytes. */
  private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

  /** The largest distance deflate can express. */
  static final int WINDOW = 32768;
  /** The shortest match: the 4 bytes a candidate position is checked on. */
  static final int MIN_MATCH = 4;
  static final int MAX_MATCH = 258;
  /**
   * Input bytes per block at most, so a block that does not compress becomes exactly one stored
   * block (whose length field is 16 bits). Matches still reach back into earlier blocks of a
   * call.
   */
  static final int BLOCK = 65535;
  /**
   * Input bytes of the first block when there are no symbol counts to build codes from: coded
   * with the fixed codes, enough to learn the statistics of the rest from, little enough that
   * the fixed codes cost little (they are about 14% bigger than dynamic ones on Veneur JSON).
   * Also the least input whose counts are kept as statistics.
   */
  static final int FIRST_BLOCK = 8192;
  /**
   * Blocks smaller than this take the fixed codes without a look at dynamic ones, whose header
   * alone (60-100 bytes) would take more than they could save: the 1-byte block after 65535 of a
   * 64 KiB input, say.
   */
  private static final int MIN_DYNAMIC = 256;
  /** Inputs beyond this are refused: positions and the bound must stay far from int overflow. */
  static final int MAX_INPUT = 1 << 30;
  /**
   * Bytes the encoder may write past the end of its output (the bit writer stores 8 bytes at a
   * time and then advances by the whole bytes it holds). Part of {@link #maxCompressedLength}.
   */
  private static final int SLACK = 8;

  /**
   * 2^15 table entries (128 KiB): a smaller table loses matches to collisions, and the extra
   * literals and shorter matches cost more time than its better cache fit saves.
   */
  private static final int HASH_BITS = 15;
  /**
   * Bytes hashed, more than the 4 a match needs: on Veneur JSON a table hit is then more often
   * a long match, and the 4- and 5-byte matches it passes by save almost nothing over literals
   * (a long distance costs 15-20 bits). Fewer, longer matches: 12% fewer of them, output 4%
   * smaller, at no cost in speed.
   */
  private static final int HASH_BYTES = 6;
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

  /** Extra bits of each length code and each distance code (RFC 1951 3.2.5). */
  private static final int[] LEN_EXTRA = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  private static final int[] DIST_EXTRA = {
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
  /** Length code (0-28) of a match length minus 3. */
  private static final byte[] LEN_CODE = new byte[256];
  /** First length minus 3 of each length code. */
  private static final int[] LEN_BASE = new int[29];
  /** Distance code of distance-1: [0, 256) directly, from 256 on by (distance-1) >> 7. */
  private static final byte[] DIST_CODE = new byte[512];
  /** First distance minus 1 of each distance code. */
  private static final int[] DIST_BASE = new int[D_CODES];
  /**
   * The fixed Huffman codes (RFC 1951 3.2.6): literal/length codes in {@link #codes}' format,
   * and the length and distance tables the matcher writes with (see {@link #encodings}).
   */
  private static final int[] FIXED_LIT = new int[288];
  private static final int[] FIXED_LIT_LEN = new int[288];
  private static final int[] FIXED_LEN_ENC = new int[256];
  private static final int[] FIXED_DIST_ENC = new int[D_CODES];

  static {
    int length = 0;
    for (int code = 0; code < 28; code++) {
      LEN_BASE[code] = length;
      for (int n = 0; n < 1 << LEN_EXTRA[code]; n++) LEN_CODE[length++] = (byte) code;
    }
    // Length 258 has a code of its own, 285, without extra bits.
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
    // All 288 literal/length symbols take part: the unused 286 and 287 are 8-bit codes, which
    // come before the 9-bit ones in canonical order.
    for (int i = 0; i < 288; i++) FIXED_LIT_LEN[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    int[] fixedDistLen = new int[D_CODES];
    // Distances 30 and 31 are left out: all codes are 5 bits, so they are the last codes.
    Arrays.fill(fixedDistLen, 5);
    int[] scratch = new int[MAX_BITS + 1];
    codes(FIXED_LIT_LEN, 288, FIXED_LIT, scratch);
    int[] fixedDist = new int[D_CODES];
    codes(fixedDistLen, D_CODES, fixedDist, scratch);
    encodings(FIXED_LIT, fixedDist, FIXED_LEN_ENC, FIXED_DIST_ENC);
  }

  /**
   * Per hash, the virtual position (the call's {@link #next} plus the offset into its input) of
   * the last position seen with it: 0, or from an earlier call, when stale. Calls are spaced more
   * than a window apart in this position space, so an entry from an earlier call always fails
   * the distance check and the table needs no clearing between calls.
   */
  private final int[] table = new int[1 << HASH_BITS];
  /**
   * Virtual position of the first byte of the next call. Package-private so a test can start
   * near the wrap instead of compressing 2 GiB first.
   */
  int next = WINDOW + 1;

  /** Symbol counts of the block being parsed, when {@link #counting}. */
  private int[] litCount = new int[L_CODES];
  private int[] distCount = new int[D_CODES];
  /**
   * The counts dynamic codes are built from: those of the last block that counted (see {@link
   * #counting}) and parsed at least {@link #FIRST_BLOCK} bytes, this call's or an earlier one's
   * (a call's output may depend on the calls before it, never refer to their data; {@link
   * #reset} forgets them). {@link #statBytes} is how many input bytes they cover, 0 for none.
   */
  private int[] litStats = new int[L_CODES];
  private int[] distStats = new int[D_CODES];
  private int statBytes;
  /**
   * Whether the block being parsed counts its symbols. Counting costs a load and a store per
   * literal and two per match, and counts only matter to the next build of codes, which happens
   * every {@link #REUSE_BYTES} of input: so a block counts when the codes it is written with are
   * fixed (the counts decide whether dynamic ones pay), when it may be the last block before
   * codes are built again (under {@link #BLOCK} bytes of the reuse span left), or when the
   * statistics cover under half a block. A counting block under {@link #FIRST_BLOCK} bytes (a
   * small call, a tail) leaves the statistics as they were, so codes may be rebuilt from an
   * older block's counts: that costs ratio, never correctness (every symbol has a code).
   */
  private boolean counting = true;

  // The dynamic codes of the current block, and scratch to build them, reused from block to block.
  private final int[] litWeights = new int[L_CODES];
  private final int[] distWeights = new int[D_CODES];
  private final int[] litLen = new int[L_CODES];
  private final int[] distLen = new int[D_CODES];
  private final int[] litCodes = new int[L_CODES];
  private final int[] distCodes = new int[D_CODES];
  private final int[] lenEnc = new int[256];
  private final int[] distEnc = new int[D_CODES];
  private final int[] clFreq = new int[CL_CODES];
  private final int[] clLen = new int[CL_CODES];
  private final int[] clCodes = new int[CL_CODES];
  /** The run-length coded code lengths of a dynamic header: symbol | extra bits value << 8. */
  private final int[] cl = new int[L_CODES + D_CODES];
  private int clCount;
  private int hclen;
  private final int[] lengths = new int[L_CODES + D_CODES];
  private final int[] sorted = new int[L_CODES];
  private final int[] sortScratch = new int[L_CODES];
  /** Per radix digit, where its keys go next: 512 digits, one more for the counting pass. */
  private final int[] radixStart = new int[513];
  private final int[] depth = new int[L_CODES];
  private final int[] perLength = new int[MAX_BITS + 1];

  /**
   * Building dynamic codes (two package-merge length limits, the code-length header, the
   * encodings) cost about a tenth of what parsing a 64 KiB block does, and was paid for every
   * block although the counts of JSON from the same fleet barely move (issue 19). So codes, once
   * built, serve the blocks of the next {@link #REUSE_BYTES} input bytes, whichever call they come
   * in, before they are built again from the newest counts (sooner when those cover much more
   * input than the ones they were built on). Every symbol has a code in them, so
   * whatever a later block holds can be written.
   */
  static final int REUSE_BYTES = 256 * 1024;
  /** Input bytes the built codes may still serve; 0: none are built (or they were spoiled). */
  private int reuseLeft;
  /** What the built codes were chosen on: header bits, (dynamic - fixed) bits over the counts, and how many bytes those covered. */
  private long reuseHeader;
  private long reuseGain;
  private int reuseStatBytes;

  // The bit writer: bits go out least significant first, as deflate packs them.
  private byte[] out;
  private int pos;
  private long bits;
  private int nbits;

  public FastDeflater() {}

  /**
   * Forgets the symbol statistics carried from call to call, so the next output depends on its
   * input alone (as from a new instance), at the price of a first block with the fixed codes.
   */
  public void reset() {
    statBytes = 0;
    reuseLeft = 0;
  }

  /**
   * Worst-case output bytes for {@code len} input bytes: every block stored (5 bytes of header
   * per block: one of up to 8 KiB, then up to 65535 bytes each), the 5-byte sync marker, and 8
   * bytes the encoder may write past its result as scratch (it never returns them).
   *
   * @throws IllegalArgumentException if {@code len} is negative or over 1 GiB
   */
  public static int maxCompressedLength(int len) {
    if (len < 0 || len > MAX_INPUT) throw new IllegalArgumentException("input length " + len);
    int blocks = len <= FIRST_BLOCK ? 1 : 1 + (len - FIRST_BLOCK + BLOCK - 1) / BLOCK;
    return len + 5 * blocks + 5 + SLACK;
  }

  /**
   * Compresses {@code in[off, off+len)} as non-final deflate blocks followed by a sync flush (an
   * empty stored block, so the output ends byte-aligned in {@code 00 00 FF FF}) into {@code out}
   * from {@code outOff}. The caller guarantees {@link #maxCompressedLength}{@code (len)} bytes of
   * room (checked); bytes past the returned length may be overwritten. Self-contained: no
   * back-reference to earlier calls (whose symbol counts only choose the codes, see {@link
   * #reset}). An empty input gives the sync marker alone, {@code 00 00 00 FF FF}.
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
      // Without counts to build codes from, a call starts with a short block coded with the
      // fixed codes. Only one: so a call has no more blocks than maxCompressedLength counts.
      boolean learn = start == off && statBytes == 0;
      int blockEnd = start + Math.min(learn ? FIRST_BLOCK : BLOCK, end - start);
      writeBlock(in, off, start, blockEnd, delta, learn);
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

  /**
   * Writes {@code in[start, end)} as one block: Huffman coded with the fixed codes (when
   * learning, or when the dynamic codes {@link #prepareDynamic} builds promise no gain) or the
   * dynamic codes, or stored when that is smaller, which is only known for certain once the block
   * is written: then it is rewritten. So the block never takes more than a stored block would.
   */
  private void writeBlock(byte[] in, int base, int start, int end, int delta, boolean learn) {
    int n = end - start;
    int pos0 = pos;
    long bits0 = bits;
    int nbits0 = nbits;
    long storedBits = (((nbits + 3 + 7) & ~7) - nbits) + 32 + 8L * n;
    // Where a stored block would end: the matcher gives up once its output passes this.
    int limit = pos + (int) ((nbits + storedBits + 7) >>> 3);
    boolean fits;
    boolean dynamic = !learn && prepareDynamic(n, storedBits);
    counting = !dynamic || reuseLeft < BLOCK || statBytes < BLOCK / 2;
    if (dynamic) {
      putBits(2 << 1, 3); // BFINAL 0, BTYPE 10
      putBits(L_CODES - 257, 5);
      putBits(D_CODES - 1, 5);
      putBits(hclen - 4, 4);
      for (int i = 0; i < hclen; i++) putBits(clLen[CL_ORDER[i]], 3);
      for (int i = 0; i < clCount; i++) {
        int sym = cl[i] & 0xFF;
        int c = clCodes[sym];
        putBits(c & 0xFFFF, c >>> 16);
        if (sym == 16) putBits(cl[i] >>> 8, 2);
        else if (sym == 17) putBits(cl[i] >>> 8, 3);
        else if (sym == 18) putBits(cl[i] >>> 8, 7);
      }
      fits = parse(in, base, start, end, delta, litCodes, lenEnc, distEnc, limit);
      if (fits) putBits(litCodes[END_BLOCK] & 0xFFFF, litCodes[END_BLOCK] >>> 16);
    } else {
      putBits(1 << 1, 3); // BFINAL 0, BTYPE 01
      fits = parse(in, base, start, end, delta, FIXED_LIT, FIXED_LEN_ENC, FIXED_DIST_ENC, limit);
      if (fits) putBits(FIXED_LIT[END_BLOCK] & 0xFFFF, FIXED_LIT[END_BLOCK] >>> 16);
    }
    if (fits && 8L * (pos - pos0) + nbits - nbits0 <= storedBits) return;
    pos = pos0;
    bits = bits0;
    nbits = nbits0;
    putBits(0, 3); // BFINAL 0, BTYPE 00
    align();
    out[pos++] = (byte) n;
    out[pos++] = (byte) (n >>> 8);
    out[pos++] = (byte) ~n;
    out[pos++] = (byte) (~n >>> 8);
    System.arraycopy(in, start, out, pos, n);
    pos += n;
  }

  /**
   * Builds dynamic codes for the next {@code n} input bytes from {@link #litStats}/{@link
   * #distStats}, with one more of every symbol, so every symbol has a code (this block may use
   * some those did not). Returns whether they promise fewer bits than the fixed codes, header
   * included, at the rates of the statistics; false too if there are none, if the block is
   * small, or if the header alone would take more than {@code storedBits}.
   */
  private boolean prepareDynamic(int n, long storedBits) {
    if (statBytes == 0 || n < MIN_DYNAMIC) return false;
    // Codes built on a few counts (a first short block) give way as soon as counts over more than
    // twice as much input are in.
    if (reuseLeft >= n && statBytes <= 2 * reuseStatBytes) {
      // The same test as below, on the numbers the codes were built with.
      if (reuseHeader >= storedBits || (reuseHeader - 3) * reuseStatBytes + reuseGain * n >= 0) return false;
      reuseLeft -= n;
      return true;
    }
    // From here the tables are rebuilt: until that succeeds, nothing built may be reused.
    reuseLeft = 0;
    int[] litFreq = litWeights;
    int[] distFreq = distWeights;
    for (int i = 0; i < L_CODES; i++) litFreq[i] = litStats[i] + 1;
    for (int i = 0; i < D_CODES; i++) distFreq[i] = distStats[i] + 1;
    buildLengths(litFreq, L_CODES, MAX_BITS, litLen);
    buildLengths(distFreq, D_CODES, MAX_BITS, distLen);
    // Every symbol has a code, so all 286 and 30 lengths are sent.
    runLengths(L_CODES, D_CODES);
    buildLengths(clFreq, CL_CODES, MAX_CL_BITS, clLen);
    int hclen = CL_CODES;
    while (hclen > 4 && clLen[CL_ORDER[hclen - 1]] == 0) hclen--;
    this.hclen = hclen;
    long header = 3 + 5 + 5 + 4 + 3L * hclen;
    for (int i = 0; i < clCount; i++) {
      int sym = cl[i] & 0xFF;
      header += clLen[sym] + (sym == 16 ? 2 : sym == 17 ? 3 : sym == 18 ? 7 : 0);
    }
    if (header >= storedBits) return false;
    // Extra bits cost the same either way and are left out.
    long dynamic = 0;
    long fixed = 0;
    for (int i = 0; i < L_CODES; i++) {
      dynamic += (long) litFreq[i] * litLen[i];
      fixed += (long) litFreq[i] * FIXED_LIT_LEN[i];
    }
    for (int i = 0; i < D_CODES; i++) dynamic += (long) distFreq[i] * distLen[i];
    for (int i = 0; i < D_CODES; i++) fixed += (long) distFreq[i] * 5;
    // Scaled to this block's size: header + dynamic * n / statBytes < 3 + fixed * n / statBytes.
    if ((header - 3) * statBytes + (dynamic - fixed) * n >= 0) return false;
    codes(litLen, L_CODES, litCodes, perLength);
    codes(distLen, D_CODES, distCodes, perLength);
    codes(clLen, CL_CODES, clCodes, perLength);
    encodings(litCodes, distCodes, lenEnc, distEnc);
    reuseHeader = header;
    reuseGain = dynamic - fixed;
    reuseStatBytes = statBytes;
    reuseLeft = REUSE_BYTES - n;
    return true;
  }

  /**
   * The tables the matcher writes matches with, from literal/length and distance codes: for
   * each match length minus 3 its length code with the extra bits after it (low 24 bits) and
   * their total bit count (high 8); for each distance code its code (low 16 bits), code length
   * (next 8) and code length plus extra bits (high 8).
   */
  private static void encodings(int[] litCodes, int[] distCodes, int[] lenEnc, int[] distEnc) {
    for (int l = 0; l < 256; l++) {
      int lc = LEN_CODE[l];
      int c = litCodes[LITERALS + 1 + lc];
      int codeBits = c >>> 16;
      lenEnc[l] = (c & 0xFFFF) | (l - LEN_BASE[lc]) << codeBits | (codeBits + LEN_EXTRA[lc]) << 24;
    }
    for (int dc = 0; dc < D_CODES; dc++) {
      int c = distCodes[dc];
      distEnc[dc] = c | ((c >>> 16) + DIST_EXTRA[dc]) << 24;
    }
  }

  /**
   * Multiplicative hash of the first {@link #HASH_BYTES} bytes of {@code eight} (little-endian,
   * so the others are shifted out the top).
   */
  private static int hash(long eight) {
    return (int) (((eight << (64 - 8 * HASH_BYTES)) * 0xCF1BBCDCB7A56463L) >>> (64 - HASH_BITS));
  }

  /**
   * LZ77 parse of {@code in[start, end)}, writing each literal and match with the given codes as
   * it goes and, when {@link #counting}, counting symbols into {@link #litCount}/{@link
   * #distCount}, which become the statistics if the block parsed enough (see {@link #counted}).
   * Matches may start anywhere from {@code base} (the call's first byte) but end within the
   * block. Snappy's scheme: look up the hash of each position; after 32 misses in a row, look at
   * every second position, then every third... so incompressible data is skipped quickly; after
   * a match, try again right at its end.
   *
   * <p>The bit buffer is emptied to at most 7 bits by an 8-byte store before each match, whose
   * up to 48 bits (length code and extra, distance code and extra) then fit; literals (15 bits at
   * most) are added while under 48 bits.
   *
   * @return false, having given up, if the output passed {@code limit} (checked each time it
   *     grows, so nothing is written more than 8 bytes past it)
   */
  private boolean parse(
      byte[] in, int base, int start, int end, int delta, int[] litCodes, int[] lenEnc, int[] distEnc, int limit) {
    int[] table = this.table;
    int[] litCount = this.litCount;
    int[] distCount = this.distCount;
    byte[] out = this.out;
    long bits = this.bits;
    int nbits = this.nbits;
    int pos = this.pos;
    boolean counting = this.counting;
    if (counting) {
      Arrays.fill(litCount, 0);
      Arrays.fill(distCount, 0);
    }
    int emit = start;
    // The last position whose 8 bytes can be read for a hash.
    int last = end - 8;
    int s = start;
    // A candidate is usable when 1 <= dist <= WINDOW, tested as one unsigned comparison:
    // (dist - 1) >>> 15 == 0. It also turns away entries at or past s (dist <= 0), which appear
    // when a match extended backwards ends before positions already hashed.
    if (s < last) {
      // The bytes at the next position to look up, read ahead of the lookup.
      long next8 = (long) LONG.get(in, s);
      outer:
      while (true) {
        int skip = 32;
        int nextS = s;
        int dist;
        long here8;
        do {
          s = nextS;
          here8 = next8;
          int step = skip >> 5;
          nextS = s + step;
          skip += step;
          if (nextS > last) break outer;
          int h = hash(here8);
          int v = s + delta;
          dist = v - table[h];
          table[h] = v;
          next8 = (long) LONG.get(in, nextS);
        } while (((dist - 1) >>> 15) != 0 || (int) INT.get(in, s - dist) != (int) here8);
        // Extend backwards over literals the skipping passed by.
        while (s > emit && s - dist > base && in[s - 1] == in[s - 1 - dist]) s--;
        for (; emit < s; emit++) {
          int b = in[emit] & 0xFF;
          if (counting) litCount[b]++;
          int c = litCodes[b];
          bits |= (long) (c & 0xFFFF) << nbits;
          nbits += c >>> 16;
          if (nbits >= 48) {
            LONG.set(out, pos, bits);
            pos += 6;
            bits >>>= 48;
            nbits -= 48;
            if (pos > limit) return givenUp(emit, start);
          }
        }
        while (true) {
          // The 4 bytes at s equal those dist before: measure the match, 8 bytes at a time.
          int max = Math.min(MAX_MATCH, end - s);
          int len = MIN_MATCH;
          while (true) {
            if (len + 8 > max) {
              while (len < max && in[s + len] == in[s + len - dist]) len++;
              break;
            }
            long x = (long) LONG.get(in, s + len) ^ (long) LONG.get(in, s + len - dist);
            if (x != 0) {
              len += Long.numberOfTrailingZeros(x) >>> 3;
              break;
            }
            len += 8;
          }
          int d = dist - 1;
          int dc = d < 256 ? DIST_CODE[d] : DIST_CODE[256 + (d >>> 7)];
          if (counting) {
            litCount[LITERALS + 1 + LEN_CODE[len - 3]]++;
            distCount[dc]++;
          }
          LONG.set(out, pos, bits);
          pos += nbits >>> 3;
          bits >>>= nbits & ~7;
          nbits &= 7;
          if (pos > limit) return givenUp(s, start);
          int lc = lenEnc[len - 3];
          bits |= (long) (lc & 0xFFFFFF) << nbits;
          nbits += lc >>> 24;
          int de = distEnc[dc];
          bits |= (long) ((de & 0xFFFF) | (d - DIST_BASE[dc]) << ((de >>> 16) & 0xFF)) << nbits;
          nbits += de >>> 24;
          if (nbits >= 48) {
            LONG.set(out, pos, bits);
            pos += 6;
            bits >>>= 48;
            nbits -= 48;
            if (pos > limit) return givenUp(s, start);
          }
          s += len;
          emit = s;
          if (s >= last) break outer;
          // Data that just matched tends to match again right after: check the position the
          // match ends at before going back to searching, and hash the one before it too.
          int v = s + delta;
          table[hash((long) LONG.get(in, s - 1))] = v - 1;
          here8 = (long) LONG.get(in, s);
          int h = hash(here8);
          dist = v - table[h];
          table[h] = v;
          if (((dist - 1) >>> 15) != 0 || (int) INT.get(in, s - dist) != (int) here8) {
            next8 = (long) LONG.get(in, ++s);
            break;
          }
        }
      }
    }
    for (; emit < end; emit++) {
      int b = in[emit] & 0xFF;
      if (counting) litCount[b]++;
      int c = litCodes[b];
      bits |= (long) (c & 0xFFFF) << nbits;
      nbits += c >>> 16;
      if (nbits >= 48) {
        LONG.set(out, pos, bits);
        pos += 6;
        bits >>>= 48;
        nbits -= 48;
        if (pos > limit) return givenUp(emit, start);
      }
    }
    this.bits = bits;
    this.nbits = nbits;
    this.pos = pos;
    counted(end - start);
    return true;
  }

  /** The parse stopped at {@code at}: its counts cover about the bytes before. */
  private boolean givenUp(int at, int start) {
    counted(at - start);
    return false;
  }

  /**
   * The counts of a parse of {@code bytes} input bytes become the statistics, unless there were
   * too few to go by (a small call, the tail of a big one): then the statistics stay.
   */
  private void counted(int bytes) {
    if (!counting || bytes < FIRST_BLOCK) return;
    int[] t = litStats;
    litStats = litCount;
    litCount = t;
    t = distStats;
    distStats = distCount;
    distCount = t;
    statBytes = bytes;
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
    int maxFreq = 0;
    for (int i = 0; i < n; i++) {
      lengths[i] = 0;
      // Frequencies are below 2^17 (a block is at most 65535 bytes), leaving 9 bits for symbol.
      if (freq[i] != 0) {
        sorted[used++] = freq[i] << 9 | i;
        maxFreq = Math.max(maxFreq, freq[i]);
      }
    }
    if (used < 2) {
      int sym = used == 0 ? 0 : sorted[0] & 511;
      lengths[sym] = 1;
      lengths[sym == 0 ? 1 : 0] = 1;
      return;
    }
    // Arrays.sort is an insertion sort at this size for distance and code-length codes; for the
    // ~200 literal/length symbols of a block a radix sort is three times as fast.
    if (used < 64) Arrays.sort(sorted, 0, used);
    else radixSort(used, maxFreq);
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
   * Sorts {@link #sorted}{@code [0, used)} by frequency (bits 9 and up), ties in symbol order:
   * least significant digit first, 9 bits then the 8 above if any frequency has them.
   */
  private void radixSort(int used, int maxFreq) {
    int[] a = sorted;
    int[] b = sortScratch;
    int[] start = radixStart;
    Arrays.fill(start, 0);
    for (int i = 0; i < used; i++) start[((a[i] >>> 9) & 511) + 1]++;
    for (int d = 1; d < 512; d++) start[d] += start[d - 1];
    for (int i = 0; i < used; i++) b[start[(a[i] >>> 9) & 511]++] = a[i];
    if (maxFreq < 512) {
      System.arraycopy(b, 0, a, 0, used);
      return;
    }
    Arrays.fill(start, 0, 257, 0);
    for (int i = 0; i < used; i++) start[(b[i] >>> 18) + 1]++;
    for (int d = 1; d < 256; d++) start[d] += start[d - 1];
    for (int i = 0; i < used; i++) a[start[b[i] >>> 18]++] = b[i];
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
    for (int node = 1; node < n - 1; node++) {
      if (leaf >= n || a[root] < a[leaf]) {
        a[node] = a[root];
        a[root++] = node;
      } else {
        a[node] = a[leaf++];
      }
      if (leaf >= n || (root < node && a[root] < a[leaf])) {
        a[node] += a[root];
        a[root++] = node;
      } else {
        a[node] += a[leaf++];
      }
    }
    // Second pass, right to left: depths of internal nodes from parent pointers.
    a[n - 2] = 0;
    for (int node = n - 3; node >= 0; node--) a[node] = a[a[node]] + 1;
    // Third pass, right to left: leaf depths from the number of internal nodes at each depth.
    int avail = 1;
    int usedNodes = 0;
    int d = 0;
    root = n - 2;
    int node = n - 1;
    while (avail > 0) {
      while (root >= 0 && a[root] == d) {
        usedNodes++;
        root--;
      }
      while (avail > usedNodes) {
        a[node--] = d;
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
