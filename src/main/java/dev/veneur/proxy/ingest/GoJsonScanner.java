package dev.veneur.proxy.ingest;

import java.util.zip.CRC32;

/**
 * Reads an {@code /import} body the way a Veneur global's Go decoder will: {@code encoding/json}
 * decoding a JSON array into {@code []samplers.JSONMetric}. It never builds the metrics; it walks
 * the bytes once and, for each element, reports its byte span, whether the global would accept
 * it, and the CRC-32 of its ring key {@code name + type + tagstring} as Go assigns those fields.
 *
 * <p>What "as Go reads it" means here (each rule is pinned by a test vector produced with Go):
 * <ul>
 *   <li>Syntax is JSON as Go's scanner checks it; any syntax error fails the whole body.
 *   <li>Keys match the struct's fields case-insensitively under Unicode simple folding, so
 *       {@code "Value"}, {@code "TAGS"} and {@code "tagſ"} (long s) all land on fields. Other keys
 *       are ignored, whatever their value.
 *   <li>{@code name}, {@code type}, {@code tagstring} take a string; {@code null} leaves the field
 *       as it was; any other type is an error. A key seen twice assigns twice: the last string
 *       wins.
 *   <li>{@code tags} takes an array of strings (null elements allowed) or null.
 *   <li>{@code value} is a {@code []byte}: a string holding standard padded base64 (CR and LF
 *       ignored, JSON escapes decoded first), an array of integers 0..255 (null elements allowed),
 *       or null.
 *   <li>Strings with invalid UTF-8 or lone surrogate escapes are accepted; Go turns each bad byte
 *       (each bad escape) into U+FFFD, and so does the key hash here.
 * </ul>
 * A type or base64 error makes Go fail the whole request at the global; here it marks only that
 * metric as one the global would refuse, so the caller can drop it and forward the rest.
 *
 * <p>The caller feeds a window of the (inflated) body. An element is scanned whole or not at all:
 * when the window ends inside one, {@link #next} answers {@link #NEED_MORE} and the caller refills
 * the window keeping the bytes from {@link #resumeAt()}, then calls again. Not thread-safe: one per
 * event loop, reused across bodies.
 */
public final class GoJsonScanner {
  /** {@link #next} found a metric object: see {@link #start}, {@link #end}, {@link #verdict}. */
  public static final int METRIC = 1;
  /** The window ended inside an element; refill keeping bytes from {@link #resumeAt()}. */
  public static final int NEED_MORE = 2;
  /** The closing bracket of the array was read. */
  public static final int END = 3;

  /**
   * The global would accept the metric and it has a type. Its name may be empty (absent, null or
   * {@code ""}): a Veneur v2 global imports and flushes such a metric (a series named {@code ""})
   * and the Go proxy v2 forwards it, its ring key then {@code "" + type + tagstring}.
   */
  public static final int VALID = 0;
  /** The global's decoder would refuse the metric (a type or base64 error). */
  public static final int REFUSED = 1;
  /**
   * The global would decode it, but it has no type (an empty name does not matter): a global's
   * import has no aggregation for it and discards it.
   */
  public static final int INCOMPLETE = 2;
  /** {@code null} or an object with no field of the metric set at all. */
  public static final int EMPTY = 3;

  private static final int NEED = -1;
  /**
   * Go's scanner refuses nesting deeper than 10,000, counting the body's array and the metric
   * object: a value inside a metric may nest 9,998 levels (one fewer inside tags or value).
   */
  private static final int MAX_DEPTH = 10_000 - 2;

  private static final int F_OTHER = 0;
  private static final int F_NAME = 1;
  private static final int F_TYPE = 2;
  private static final int F_TAGSTRING = 3;
  private static final int F_TAGS = 4;
  private static final int F_VALUE = 5;

  private static final int S_BEFORE_ARRAY = 0;
  private static final int S_FIRST = 1;
  private static final int S_AFTER_ELEMENT = 2;
  private static final int S_AFTER_COMMA = 3;
  private static final int S_DONE = 4;

  private static final byte[] B64 = new byte[256];
  /** Bytes that continue a plain ASCII run inside a string: printable, not '"' nor '\\'. */
  private static final boolean[] PLAIN_ASCII = new boolean[256];
  /** Bytes that continue a run Go's scanner accepts inside a string: the above, and any >= 0x80. */
  private static final boolean[] PLAIN_ANY = new boolean[256];

  static {
    for (int c = 0x20; c < 256; c++) {
      boolean plain = c != '"' && c != '\\';
      PLAIN_ANY[c] = plain;
      PLAIN_ASCII[c] = plain && c < 0x80;
    }
    java.util.Arrays.fill(B64, (byte) -1);
    String a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < a.length(); i++) B64[a.charAt(i)] = (byte) i;
  }

  // ---- results of the last METRIC ----
  /** Span of the element in the caller's buffer: {@code [start, end)}. */
  public int start;
  public int end;
  /** {@link #VALID}, {@link #REFUSED}, {@link #INCOMPLETE} or {@link #EMPTY}. */
  public int verdict;
  /** CRC-32 of the UTF-8 of name + type + tagstring, when {@link #VALID}. */
  public int keyHash;
  /**
   * v14's {@code ignore_tags}: tags (the {@code tagstring}'s comma-separated parts) left out of
   * {@link #keyHash}. Empty (the usual case): the key is hashed from the spans, nothing built.
   */
  public dev.veneur.proxy.config.IgnoreTags ignore = dev.veneur.proxy.config.IgnoreTags.NONE;

  /**
   * False when every key has the same owner (one way to split): {@link #keyHash} is then left 0
   * and no key is hashed.
   */
  public boolean hashKeys = true;
  /** Why the global would refuse it, when {@link #REFUSED}; a constant, for logs. */
  public String refusal;
  /** Elements seen so far (metric objects and nulls). */
  public int elements;

  private final int maxString;
  private int state;
  private int resumeAt;
  private final Utf8Field name = new Utf8Field();
  private final Utf8Field type = new Utf8Field();
  private final Utf8Field tagstring = new Utf8Field();
  private final byte[] key = new byte[32];
  private int keyLen;
  private boolean keyOverflow;
  private final CRC32 crc = new CRC32();
  /** Where a key is gathered to be hashed in one call; keys longer than this are hashed part by part. */
  private final byte[] gather = new byte[1024];
  /** Whether tags / value end up non-nil: the last occurrence decides (null makes them nil). */
  private boolean tagsSet;
  private boolean valueSet;
  private long[] depthBits = new long[4];

  /** @param maxString the longest string accepted anywhere in a metric, in bytes as sent */
  public GoJsonScanner(int maxString) {
    this.maxString = maxString;
  }

  /** Starts a new body. */
  public void reset() {
    state = S_BEFORE_ARRAY;
    elements = 0;
    resumeAt = 0;
  }

  /** The first byte the caller must keep when it refills the window. */
  public int resumeAt() {
    return resumeAt;
  }

  /** Shrinks field buffers that grew for one exceptional metric. */
  public void trim() {
    name.trim();
    type.trim();
    tagstring.trim();
    keyCapture.trim();
    if (depthBits.length > 4) depthBits = new long[4];
  }

  /**
   * Reads from {@code b[pos, limit)}: separators, then one element.
   *
   * @param eof no byte follows {@code limit}: an element cut short is an error, not a refill
   * @return {@link #METRIC}, {@link #NEED_MORE} or {@link #END}
   * @throws ImportRefusal 400 for a body Go could not decode at all
   */
  public int next(byte[] b, int pos, int limit, boolean eof) {
    int i = pos;
    while (true) {
      i = skipWs(b, i, limit);
      resumeAt = i;
      if (i >= limit) {
        if (!eof) return NEED_MORE;
        if (state == S_BEFORE_ARRAY) {
          throw new ImportRefusal(400, "json", "empty body: expected a JSON array of metrics");
        }
        throw syntax("unexpected end of JSON input");
      }
      byte c = b[i];
      switch (state) {
        case S_BEFORE_ARRAY:
          if (c == '[') {
            state = S_FIRST;
            i++;
            continue;
          }
          if (c == 'n') {
            int e = literal(b, i, limit, "null");
            if (e == NEED) return needOrEnd(eof);
            // Go decodes null into a nil slice without error: an empty request.
            state = S_DONE;
            resumeAt = e;
            throw new ImportRefusal(400, "empty", "Received empty /import request");
          }
          throw syntax(c == '{' ? "body is a JSON object, not an array of metrics"
              : "invalid character " + describe(c) + " looking for beginning of value");
        case S_FIRST:
          if (c == ']') {
            state = S_DONE;
            resumeAt = i + 1;
            return END;
          }
          return element(b, i, limit, eof);
        case S_AFTER_ELEMENT:
          if (c == ',') {
            state = S_AFTER_COMMA;
            i++;
            continue;
          }
          if (c == ']') {
            state = S_DONE;
            resumeAt = i + 1;
            return END;
          }
          throw syntax("invalid character " + describe(c) + " after array element");
        case S_AFTER_COMMA:
          return element(b, i, limit, eof);
        default:
          throw new IllegalStateException("scan after the end of the array");
      }
    }
  }

  private int needOrEnd(boolean eof) {
    if (eof) throw syntax("unexpected end of JSON input");
    return NEED_MORE;
  }

  /** One array element at {@code b[i]} (not whitespace). */
  private int element(byte[] b, int i, int limit, boolean eof) {
    byte c = b[i];
    int e;
    if (c == '{') {
      e = object(b, i, limit);
    } else if (c == 'n') {
      e = literal(b, i, limit, "null");
      if (e != NEED) {
        verdict = EMPTY;
        refusal = null;
      }
    } else {
      // Go would fail the whole request with a type error for a non-object element.
      int v = skipValue(b, i, limit);
      if (v == NEED) return needOrEnd(eof);
      throw new ImportRefusal(400, "json", "json: cannot unmarshal " + kind(c)
          + " into Go value of type samplers.JSONMetric (element " + elements + ")");
    }
    if (e == NEED) return needOrEnd(eof);
    start = i;
    end = e;
    resumeAt = e;
    elements++;
    state = S_AFTER_ELEMENT;
    return METRIC;
  }

  // ---------------------------------------------------------------- metric objects

  /** A metric object at {@code b[p] == '{'}; returns its end or NEED. Sets the verdict fields. */
  private int object(byte[] b, int p, int limit) {
    name.clear();
    type.clear();
    tagstring.clear();
    tagsSet = false;
    valueSet = false;
    refusal = null;
    int i = skipWs(b, p + 1, limit);
    if (i >= limit) return NEED;
    if (b[i] == '}') {
      verdict = EMPTY;
      return i + 1;
    }
    while (true) {
      if (b[i] != '"') throw syntax("invalid character " + describe(b[i]) + " looking for beginning of object key string");
      i = key(b, i, limit);
      if (i == NEED) return NEED;
      int field = keyField;
      i = skipWs(b, i, limit);
      if (i >= limit) return NEED;
      if (b[i] != ':') throw syntax("invalid character " + describe(b[i]) + " after object key");
      i = skipWs(b, i + 1, limit);
      if (i >= limit) return NEED;
      switch (field) {
        case F_NAME:
          i = stringField(b, i, limit, name, "name");
          break;
        case F_TYPE:
          i = stringField(b, i, limit, type, "type");
          break;
        case F_TAGSTRING:
          i = stringField(b, i, limit, tagstring, "tagstring");
          break;
        case F_TAGS:
          i = tagsField(b, i, limit);
          break;
        case F_VALUE:
          i = valueField(b, i, limit);
          break;
        default:
          i = skipValue(b, i, limit);
      }
      if (i == NEED) return NEED;
      i = skipWs(b, i, limit);
      if (i >= limit) return NEED;
      byte c = b[i];
      if (c == ',') {
        i = skipWs(b, i + 1, limit);
        if (i >= limit) return NEED;
        continue;
      }
      if (c == '}') {
        i++;
        break;
      }
      throw syntax("invalid character " + describe(c) + " after object key:value pair");
    }
    if (refusal != null) {
      verdict = REFUSED;
    } else if (name.length == 0 && type.length == 0 && tagstring.length == 0 && !tagsSet && !valueSet) {
      // Go's zero JSONMetric: what the Go proxy calls "empty or improperly-formed".
      verdict = EMPTY;
    } else if (type.length == 0) {
      verdict = INCOMPLETE;
    } else {
      verdict = VALID;
      keyHash = 0;
      if (!hashKeys) return i;
      crc.reset();
      int n = name.length + type.length + tagstring.length;
      if (ignore.isEmpty() && n <= gather.length) {
        // One CRC-32 call over the key gathered: each call of the JDK's intrinsic pays a
        // byte-at-a-time head and tail and a final reduction, which for keys of ~150 bytes cost
        // more than the bytes between (perf, 3 globals: 8% of the proxy's CPU in three calls).
        tagstring.copyTo(gather, type.copyTo(gather, name.copyTo(gather, 0)));
        crc.update(gather, 0, n);
      } else {
        // Longer keys (rare, hostile ones among them) part by part: the same CRC, no scratch grown.
        name.crcInto(crc);
        type.crcInto(crc);
        if (ignore.isEmpty()) tagstring.crcInto(crc);
        else tagstring.crcIntoWithout(crc, ignore);
      }
      keyHash = (int) crc.getValue();
    }
    return i;
  }

  private void refuse(String why) {
    if (refusal == null) refusal = why;
  }

  /** name / type / tagstring: a string (last one wins), null (no change), else a type error. */
  private int stringField(byte[] b, int i, int limit, Utf8Field into, String what) {
    byte c = b[i];
    if (c == '"') {
      into.clear();
      return string(b, i, limit, into);
    }
    if (c == 'n') return literal(b, i, limit, "null");
    refuse("'" + what + "' is not a string");
    return skipValue(b, i, limit);
  }

  /** tags ([]string): an array of strings or nulls, or null. */
  private int tagsField(byte[] b, int i, int limit) {
    byte c = b[i];
    if (c == 'n') {
      tagsSet = false;
      return literal(b, i, limit, "null");
    }
    if (c != '[') {
      refuse("'tags' is not an array of strings");
      return skipValue(b, i, limit);
    }
    tagsSet = true;
    i = skipWs(b, i + 1, limit);
    if (i >= limit) return NEED;
    if (b[i] == ']') return i + 1;
    while (true) {
      c = b[i];
      if (c == '"') {
        i = skipString(b, i, limit);
      } else if (c == 'n') {
        i = literal(b, i, limit, "null");
      } else {
        refuse("'tags' has an element that is not a string");
        i = skipValue(b, i, limit, MAX_DEPTH - 1);
      }
      if (i == NEED) return NEED;
      i = skipWs(b, i, limit);
      if (i >= limit) return NEED;
      c = b[i];
      if (c == ']') return i + 1;
      if (c != ',') throw syntax("invalid character " + describe(c) + " after array element");
      i = skipWs(b, i + 1, limit);
      if (i >= limit) return NEED;
    }
  }

  /** value ([]byte): base64 string, array of integers 0..255, or null. */
  private int valueField(byte[] b, int i, int limit) {
    byte c = b[i];
    if (c == '"') {
      valueSet = true;
      return base64String(b, i, limit);
    }
    if (c == 'n') {
      valueSet = false;
      return literal(b, i, limit, "null");
    }
    if (c != '[') {
      refuse("'value' is not a base64 string");
      return skipValue(b, i, limit);
    }
    valueSet = true;
    i = skipWs(b, i + 1, limit);
    if (i >= limit) return NEED;
    if (b[i] == ']') return i + 1;
    while (true) {
      c = b[i];
      if (c == '-' || (c >= '0' && c <= '9')) {
        int e = number(b, i, limit);
        if (e == NEED) return NEED;
        if (!isByte(b, i, e)) refuse("'value' has an element that is not an integer from 0 to 255");
        i = e;
      } else if (c == 'n') {
        i = literal(b, i, limit, "null");
      } else {
        refuse("'value' has an element that is not an integer from 0 to 255");
        i = skipValue(b, i, limit, MAX_DEPTH - 1);
      }
      if (i == NEED) return NEED;
      i = skipWs(b, i, limit);
      if (i >= limit) return NEED;
      c = b[i];
      if (c == ']') return i + 1;
      if (c != ',') throw syntax("invalid character " + describe(c) + " after array element");
      i = skipWs(b, i + 1, limit);
      if (i >= limit) return NEED;
    }
  }

  /** Go's strconv.ParseUint(s, 10, 8): digits only, no sign, no fraction, at most 255. */
  private static boolean isByte(byte[] b, int s, int e) {
    int v = 0;
    for (int k = s; k < e; k++) {
      byte d = b[k];
      if (d < '0' || d > '9') return false;
      v = v * 10 + (d - '0');
      if (v > 255) return false;
    }
    return e > s;
  }

  // ---------------------------------------------------------------- keys

  /**
   * Reads a key and sets {@link #keyField} to the field it lands on. A plain ASCII key (all of them
   * in practice) is matched where it lies; any other is decoded into {@link #key} (up to its size;
   * longer keys match no field) and folded.
   */
  private int key(byte[] b, int i, int limit) {
    int q = i + 1;
    while (q < limit && PLAIN_ASCII[b[q] & 0xff]) q++;
    if (q >= limit) return NEED;
    if (b[q] == '"') {
      checkLength(q - i - 1);
      keyField = matchAscii(b, i + 1, q);
      return q + 1;
    }
    keyLen = 0;
    keyOverflow = false;
    keyCapture.clear();
    int e = string(b, i, limit, keyCapture);
    if (e == NEED) return NEED;
    keyCapture.materialize();
    if (keyCapture.length <= key.length) {
      System.arraycopy(keyCapture.bytes, 0, key, 0, keyCapture.length);
      keyLen = keyCapture.length;
    } else {
      keyOverflow = true;
    }
    keyField = matchField();
    return e;
  }

  /** The field of the last key read. */
  private int keyField;

  /** A plain ASCII key: the field whose name it equals, letters compared in either case. */
  private static int matchAscii(byte[] b, int s, int e) {
    int f;
    switch (e - s) {
      case 4:
        f = (b[s] | 0x20) == 'n' ? F_NAME : (b[s + 3] | 0x20) == 'e' ? F_TYPE : F_TAGS;
        break;
      case 5:
        f = F_VALUE;
        break;
      case 9:
        f = F_TAGSTRING;
        break;
      default:
        return F_OTHER;
    }
    byte[] want = FIELDS[f];
    for (int j = 0; j < want.length; j++) {
      if ((b[s + j] | 0x20) != want[j]) return F_OTHER;
    }
    return f;
  }

  private final Utf8Field keyCapture = new Utf8Field();

  private static final byte[][] FIELDS = {
      null, "name".getBytes(), "type".getBytes(), "tagstring".getBytes(), "tags".getBytes(),
      "value".getBytes()};

  /**
   * Which field the last key lands on, as Go's EqualFold decides: ASCII letters match either
   * case, U+017F (long s) matches 's', U+212A (Kelvin sign) matches 'k', nothing else folds onto
   * these ASCII names.
   */
  private int matchField() {
    if (keyOverflow || keyLen < 4) return F_OTHER;
    // Fold into a small ASCII form; any rune that cannot fold to ASCII ends the match.
    byte[] folded = foldScratch;
    int n = 0;
    int k = 0;
    while (k < keyLen) {
      int c = key[k] & 0xff;
      if (c < 0x80) {
        if (c >= 'A' && c <= 'Z') c += 32;
        folded[n++] = (byte) c;
        k++;
      } else if (c == 0xC5 && k + 1 < keyLen && (key[k + 1] & 0xff) == 0xBF) {
        folded[n++] = 's';
        k += 2;
      } else if (c == 0xE2 && k + 2 < keyLen && (key[k + 1] & 0xff) == 0x84 && (key[k + 2] & 0xff) == 0xAA) {
        folded[n++] = 'k';
        k += 3;
      } else {
        return F_OTHER;
      }
    }
    outer:
    for (int f = 1; f < FIELDS.length; f++) {
      byte[] want = FIELDS[f];
      if (want.length != n) continue;
      for (int j = 0; j < n; j++) if (folded[j] != want[j]) continue outer;
      return f;
    }
    return F_OTHER;
  }

  private final byte[] foldScratch = new byte[32];

  // ---------------------------------------------------------------- strings

  /**
   * A string at {@code b[i] == '"'} decoded as Go's unquote does into {@code into}; returns the
   * index after the closing quote, or NEED.
   */
  private int string(byte[] b, int i, int limit, Utf8Field into) {
    int q = i + 1;
    // Plain ASCII to the closing quote (almost every name, type and tagstring): Go's string is
    // these very bytes, kept where they lie.
    while (q < limit && PLAIN_ASCII[b[q] & 0xff]) q++;
    if (q >= limit) return NEED;
    if (b[q] == '"') {
      checkLength(q - i - 1);
      into.span(b, i + 1, q);
      return q + 1;
    }
    into.clear();
    q = i + 1;
    int runStart = q;
    while (true) {
      // Plain run: valid bytes copied as-is (UTF-8 checked when the run is flushed).
      while (q < limit && PLAIN_ANY[b[q] & 0xff]) q++;
      if (q >= limit) return NEED;
      checkLength(q - i - 1);
      into.appendUtf8(b, runStart, q);
      byte c = b[q];
      if (c == '"') return q + 1;
      if (c != '\\') throw syntax("invalid character " + describe(c) + " in string literal");
      if (q + 1 >= limit) return NEED;
      byte esc = b[q + 1];
      switch (esc) {
        case '"': case '\\': case '/':
          into.append(esc);
          q += 2;
          break;
        case 'b': into.append((byte) '\b'); q += 2; break;
        case 'f': into.append((byte) '\f'); q += 2; break;
        case 'n': into.append((byte) '\n'); q += 2; break;
        case 'r': into.append((byte) '\r'); q += 2; break;
        case 't': into.append((byte) '\t'); q += 2; break;
        case 'u': {
          if (q + 6 > limit) return NEED;
          int r = hex4(b, q + 2);
          if (r < 0) throw syntax("invalid character in \\u hexadecimal character escape");
          q += 6;
          if (r >= 0xD800 && r < 0xE000) {
            // Go pairs a high surrogate with an immediately following \\u low surrogate; anything
            // else becomes U+FFFD and the next escape is read on its own.
            if (r < 0xDC00) {
              if (q + 6 > limit && q + 1 < limit && b[q] == '\\' && b[q + 1] == 'u') return NEED;
              if (q + 1 >= limit && (q >= limit || b[q] == '\\')) return NEED;
              if (q + 6 <= limit && b[q] == '\\' && b[q + 1] == 'u') {
                int r2 = hex4(b, q + 2);
                if (r2 >= 0xDC00 && r2 < 0xE000) {
                  into.appendCodePoint(0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00));
                  q += 6;
                  break;
                }
              }
            }
            into.appendCodePoint(0xFFFD);
          } else {
            into.appendCodePoint(r);
          }
          break;
        }
        default:
          throw syntax("invalid character " + describe(esc) + " in string escape code");
      }
      runStart = q;
    }
  }

  /** Skips a string at {@code b[i] == '"'}, checking its syntax only. */
  private int skipString(byte[] b, int i, int limit) {
    int q = i + 1;
    while (true) {
      while (q < limit && PLAIN_ANY[b[q] & 0xff]) q++;
      if (q >= limit) return NEED;
      checkLength(q - i - 1);
      byte c = b[q];
      if (c == '"') return q + 1;
      if (c != '\\') throw syntax("invalid character " + describe(c) + " in string literal");
      if (q + 1 >= limit) return NEED;
      byte esc = b[q + 1];
      switch (esc) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          q += 2;
          break;
        case 'u':
          if (q + 6 > limit) return NEED;
          if (hex4(b, q + 2) < 0) throw syntax("invalid character in \\u hexadecimal character escape");
          q += 6;
          break;
        default:
          throw syntax("invalid character " + describe(esc) + " in string escape code");
      }
    }
  }

  /**
   * A {@code value} string: checks what Go's base64.StdEncoding.Decode makes of the unquoted
   * bytes (padding required, CR and LF skipped anywhere, nothing after the padding); marks the
   * metric refused if it would fail. Returns the index after the closing quote, or NEED.
   */
  private int base64String(byte[] b, int i, int limit) {
    int q = i + 1;
    // Fast path: plain alphabet, optional padding, closing quote, no escapes.
    while (q < limit && B64[b[q] & 0xff] >= 0) q++;
    int data = q - i - 1;
    if (q < limit && b[q] == '"') {
      checkLength(data);
      if ((data & 3) != 0) refuse("'value' is not padded base64");
      return q + 1;
    }
    if (q + 2 < limit && b[q] == '=' && (b[q + 1] == '"' || b[q + 1] == '=' && b[q + 2] == '"')) {
      int pad = b[q + 1] == '"' ? 1 : 2;
      checkLength(data + pad);
      if (((data + pad) & 3) != 0) refuse("'value' is not padded base64");
      return q + pad + 1;
    }
    // Slow path: decode escapes and run Go's quantum rules byte by byte.
    int j = data & 3; // position in the current quantum
    int padState = 0; // 0 data, 1 one '=' seen at j==2 (need another), 2 padding complete
    boolean bad = false;
    while (true) {
      if (q >= limit) return NEED;
      checkLength(q - i - 1);
      byte c = b[q];
      int ch;
      if (c == '"') break;
      if (c >= 0 && c < 0x20) throw syntax("invalid character " + describe(c) + " in string literal");
      if (c == '\\') {
        if (q + 1 >= limit) return NEED;
        byte esc = b[q + 1];
        switch (esc) {
          case '"': case '\\': case '/': ch = esc; q += 2; break;
          case 'b': ch = '\b'; q += 2; break;
          case 'f': ch = '\f'; q += 2; break;
          case 'n': ch = '\n'; q += 2; break;
          case 'r': ch = '\r'; q += 2; break;
          case 't': ch = '\t'; q += 2; break;
          case 'u': {
            if (q + 6 > limit) return NEED;
            int r = hex4(b, q + 2);
            if (r < 0) throw syntax("invalid character in \\u hexadecimal character escape");
            // A non-ASCII rune is never base64; surrogate pairs need no special care here.
            ch = r < 0x80 ? r : 0x100;
            q += 6;
            break;
          }
          default:
            throw syntax("invalid character " + describe(esc) + " in string escape code");
        }
      } else {
        ch = c & 0xff;
        q++;
      }
      if (bad) continue;
      if (ch == '\r' || ch == '\n') continue;
      if (padState == 2) {
        bad = true; // data after the padding
        continue;
      }
      if (ch == '=') {
        if (padState == 1) {
          padState = 2;
        } else if (j == 2) {
          padState = 1;
        } else if (j == 3) {
          padState = 2;
        } else {
          bad = true;
        }
        continue;
      }
      if (padState == 1 || ch >= 0x100 || B64[ch] < 0) {
        bad = true;
        continue;
      }
      j = (j + 1) & 3;
    }
    if (!bad && (padState == 1 || padState == 0 && j != 0)) bad = true;
    if (bad) refuse("'value' is not padded base64");
    return q + 1;
  }

  private void checkLength(int n) {
    if (n > maxString) {
      throw new ImportRefusal(400, "too_long",
          "a string in metric " + elements + " is longer than max_string_length (" + maxString + " bytes)");
    }
  }

  private static int hex4(byte[] b, int p) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
      int c = b[p + k];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return -1;
      v = (v << 4) | d;
    }
    return v;
  }

  // ---------------------------------------------------------------- other values

  /** Skips any JSON value, checking its syntax; iterative so depth costs no stack. */
  private int skipValue(byte[] b, int i, int limit) {
    return skipValue(b, i, limit, MAX_DEPTH);
  }

  /** @param maxDepth how many levels of arrays and objects may still open inside this value */
  private int skipValue(byte[] b, int i, int limit, int maxDepth) {
    int depth = 0;
    // Per level: true inside an object (expecting keys), false inside an array.
    while (true) {
      i = skipWs(b, i, limit);
      if (i >= limit) return NEED;
      byte c = b[i];
      // A value.
      switch (c) {
        case '"':
          i = skipString(b, i, limit);
          break;
        case '{': {
          if (depth >= maxDepth) throw syntax("exceeded max depth");
          setLevel(depth++, true);
          i = skipWs(b, i + 1, limit);
          if (i >= limit) return NEED;
          if (b[i] == '}') {
            depth--;
            i++;
            break;
          }
          i = objectKey(b, i, limit);
          if (i == NEED) return NEED;
          continue;
        }
        case '[': {
          if (depth >= maxDepth) throw syntax("exceeded max depth");
          setLevel(depth++, false);
          i = skipWs(b, i + 1, limit);
          if (i >= limit) return NEED;
          if (b[i] == ']') {
            depth--;
            i++;
            break;
          }
          continue;
        }
        case 't':
          i = literal(b, i, limit, "true");
          break;
        case 'f':
          i = literal(b, i, limit, "false");
          break;
        case 'n':
          i = literal(b, i, limit, "null");
          break;
        default:
          if (c == '-' || (c >= '0' && c <= '9')) {
            i = number(b, i, limit);
          } else {
            throw syntax("invalid character " + describe(c) + " looking for beginning of value");
          }
      }
      if (i == NEED) return NEED;
      // After a value: close containers or move to the next element/member.
      while (true) {
        if (depth == 0) return i;
        i = skipWs(b, i, limit);
        if (i >= limit) return NEED;
        c = b[i];
        boolean inObject = level(depth - 1);
        if (c == ',') {
          i++;
          if (inObject) {
            i = skipWs(b, i, limit);
            if (i >= limit) return NEED;
            i = objectKey(b, i, limit);
            if (i == NEED) return NEED;
          }
          break;
        }
        if (c == (inObject ? '}' : ']')) {
          depth--;
          i++;
          continue;
        }
        throw syntax("invalid character " + describe(c) + (inObject ? " after object key:value pair" : " after array element"));
      }
    }
  }

  /** A member's key and colon inside a skipped object; returns the index after the colon. */
  private int objectKey(byte[] b, int i, int limit) {
    if (b[i] != '"') throw syntax("invalid character " + describe(b[i]) + " looking for beginning of object key string");
    i = skipString(b, i, limit);
    if (i == NEED) return NEED;
    i = skipWs(b, i, limit);
    if (i >= limit) return NEED;
    if (b[i] != ':') throw syntax("invalid character " + describe(b[i]) + " after object key");
    return i + 1;
  }

  private void setLevel(int d, boolean object) {
    int word = d >>> 6;
    if (word >= depthBits.length) depthBits = java.util.Arrays.copyOf(depthBits, Math.max(word + 1, depthBits.length * 2));
    if (object) depthBits[word] |= 1L << d;
    else depthBits[word] &= ~(1L << d);
  }

  private boolean level(int d) {
    return (depthBits[d >>> 6] & (1L << d)) != 0;
  }

  /** A JSON number as Go's scanner accepts it; returns its end or NEED (it may continue). */
  private static int number(byte[] b, int i, int limit) {
    int q = i;
    if (b[q] == '-') {
      q++;
      if (q >= limit) return NEED;
    }
    byte c = b[q];
    if (c == '0') {
      q++;
    } else if (c >= '1' && c <= '9') {
      q++;
      while (q < limit && b[q] >= '0' && b[q] <= '9') q++;
    } else {
      throw syntax("invalid character " + describe(c) + " in numeric literal");
    }
    if (q >= limit) return NEED;
    if (b[q] == '.') {
      q++;
      if (q >= limit) return NEED;
      if (b[q] < '0' || b[q] > '9') throw syntax("invalid character " + describe(b[q]) + " after decimal point in numeric literal");
      while (q < limit && b[q] >= '0' && b[q] <= '9') q++;
      if (q >= limit) return NEED;
    }
    if (b[q] == 'e' || b[q] == 'E') {
      q++;
      if (q >= limit) return NEED;
      if (b[q] == '+' || b[q] == '-') {
        q++;
        if (q >= limit) return NEED;
      }
      if (b[q] < '0' || b[q] > '9') throw syntax("invalid character " + describe(b[q]) + " in exponent of numeric literal");
      while (q < limit && b[q] >= '0' && b[q] <= '9') q++;
      if (q >= limit) return NEED;
    }
    return q;
  }

  private static int literal(byte[] b, int i, int limit, String word) {
    int n = word.length();
    for (int k = 0; k < n; k++) {
      if (i + k >= limit) return NEED;
      if (b[i + k] != word.charAt(k)) {
        throw syntax("invalid character " + describe(b[i + k]) + " in literal " + word + " (expecting '" + word.charAt(k) + "')");
      }
    }
    return i + n;
  }

  private static int skipWs(byte[] b, int i, int limit) {
    while (i < limit) {
      byte c = b[i];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return i;
      i++;
    }
    return i;
  }

  private static ImportRefusal syntax(String what) {
    return new ImportRefusal(400, "json", "malformed JSON: " + what);
  }

  private static String describe(byte c) {
    int u = c & 0xff;
    if (u >= 0x20 && u < 0x7f) return "'" + (char) u + "'";
    return String.format("byte 0x%02x", u);
  }

  private static String kind(byte c) {
    switch (c) {
      case '"': return "string";
      case '[': return "array";
      case 't': case 'f': return "bool";
      default: return "number";
    }
  }

  /** A string field's bytes as Go holds them: UTF-8, each invalid byte replaced by U+FFFD. */
  static final class Utf8Field {
    private static final int BASE = 256;
    byte[] bytes = new byte[BASE];
    int length;
    /** When set, the value is {@code span[spanStart, spanStart + length)} (not copied). */
    private byte[] span;
    private int spanStart;

    void clear() {
      length = 0;
      span = null;
    }

    /** The value is these bytes of the caller's buffer, valid until the element is done. */
    void span(byte[] src, int start, int end) {
      span = src;
      spanStart = start;
      length = end - start;
    }

    /** Copies a span into the field's own buffer (before appending to it). */
    void materialize() {
      if (span == null) return;
      byte[] src = span;
      int n = length;
      span = null;
      length = 0;
      ensure(n);
      System.arraycopy(src, spanStart, bytes, 0, n);
      length = n;
    }

    /** Copies the value to {@code dst} at {@code at}; returns where it ends there. */
    int copyTo(byte[] dst, int at) {
      if (span != null) System.arraycopy(span, spanStart, dst, at, length);
      else System.arraycopy(bytes, 0, dst, at, length);
      return at + length;
    }

    void crcInto(CRC32 crc) {
      if (span != null) crc.update(span, spanStart, length);
      else crc.update(bytes, 0, length);
    }

    /** As v14 keys a metric with ignore rules: the parts that no rule matches, rejoined with commas. */
    void crcIntoWithout(CRC32 crc, dev.veneur.proxy.config.IgnoreTags ignore) {
      byte[] b = span != null ? span : bytes;
      int from = span != null ? spanStart : 0;
      int end = from + length;
      boolean first = true;
      int start = from;
      for (int i = from; i <= end; i++) {
        if (i < end && b[i] != ',') continue;
        String tag = new String(b, start, i - start, java.nio.charset.StandardCharsets.UTF_8);
        if (!ignore.ignored(tag)) {
          if (!first) crc.update(',');
          crc.update(b, start, i - start);
          first = false;
        }
        start = i + 1;
      }
    }

    void trim() {
      if (bytes.length > 64 * 1024) bytes = new byte[BASE];
    }

    private void ensure(int extra) {
      if (length + extra > bytes.length) {
        bytes = java.util.Arrays.copyOf(bytes, Math.max(length + extra, bytes.length * 2));
      }
    }

    void append(byte c) {
      ensure(1);
      bytes[length++] = c;
    }

    void appendCodePoint(int cp) {
      ensure(4);
      if (cp < 0x80) {
        bytes[length++] = (byte) cp;
      } else if (cp < 0x800) {
        bytes[length++] = (byte) (0xC0 | (cp >> 6));
        bytes[length++] = (byte) (0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        bytes[length++] = (byte) (0xE0 | (cp >> 12));
        bytes[length++] = (byte) (0x80 | ((cp >> 6) & 0x3F));
        bytes[length++] = (byte) (0x80 | (cp & 0x3F));
      } else {
        bytes[length++] = (byte) (0xF0 | (cp >> 18));
        bytes[length++] = (byte) (0x80 | ((cp >> 12) & 0x3F));
        bytes[length++] = (byte) (0x80 | ((cp >> 6) & 0x3F));
        bytes[length++] = (byte) (0x80 | (cp & 0x3F));
      }
    }

    /** Appends raw string bytes, replacing each byte of an invalid UTF-8 sequence by U+FFFD. */
    void appendUtf8(byte[] b, int s, int e) {
      int n = e - s;
      if (n == 0) return;
      ensure(n);
      int k = s;
      while (k < e) {
        int c = b[k] & 0xff;
        if (c < 0x80) {
          // ASCII run.
          int r = k;
          while (r < e && b[r] >= 0) r++;
          System.arraycopy(b, k, bytes, length, r - k);
          length += r - k;
          k = r;
          continue;
        }
        int size = validSequence(b, k, e);
        if (size > 0) {
          ensure(size);
          System.arraycopy(b, k, bytes, length, size);
          length += size;
          k += size;
        } else {
          ensure(3 + (e - k));
          bytes[length++] = (byte) 0xEF;
          bytes[length++] = (byte) 0xBF;
          bytes[length++] = (byte) 0xBD;
          k++;
        }
      }
    }

    /** Length of the valid UTF-8 sequence at b[k] (as Go's utf8.DecodeRune accepts), or 0. */
    private static int validSequence(byte[] b, int k, int e) {
      int c = b[k] & 0xff;
      if (c < 0xC2) return 0;
      if (c < 0xE0) {
        return k + 1 < e && cont(b[k + 1]) ? 2 : 0;
      }
      if (c < 0xF0) {
        if (k + 2 >= e) return 0;
        int c1 = b[k + 1] & 0xff;
        int lo = c == 0xE0 ? 0xA0 : 0x80;
        int hi = c == 0xED ? 0x9F : 0xBF;
        return c1 >= lo && c1 <= hi && cont(b[k + 2]) ? 3 : 0;
      }
      if (c < 0xF5) {
        if (k + 3 >= e) return 0;
        int c1 = b[k + 1] & 0xff;
        int lo = c == 0xF0 ? 0x90 : 0x80;
        int hi = c == 0xF4 ? 0x8F : 0xBF;
        return c1 >= lo && c1 <= hi && cont(b[k + 2]) && cont(b[k + 3]) ? 4 : 0;
      }
      return 0;
    }

    private static boolean cont(byte x) {
      return (x & 0xC0) == 0x80;
    }
  }
}
