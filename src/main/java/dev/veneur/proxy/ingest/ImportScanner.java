package dev.veneur.proxy.ingest;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import java.io.IOException;
import java.util.Base64;
import java.util.zip.CRC32;

/**
 * Finds each metric object of an {@code /import} body without building it: a streaming pass that
 * reports every object's byte span and the CRC-32 of its key ({@code name + type + tagstring}),
 * reading only those three strings and checking the types of {@code tags} and {@code value}.
 * {@code value} is never decoded; its bytes are only checked to be base64, because one bad value
 * would make the global refuse the whole batch it travels in.
 *
 * <p>Not thread-safe: one per event loop, reused across requests.
 */
public final class ImportScanner {

  /** Receives the metrics a scan finds, in body order. */
  public interface Sink {
    /** A well-formed metric at {@code [start, end)} with key hash {@code keyHash}. */
    void metric(int start, int end, int keyHash);
  }

  /** What a scan found besides the spans it reported. */
  public static final class Result {
    public int metrics;
    public int invalid;
  }

  private static final JsonFactory FACTORY = JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxNestingDepth(64)
          .maxStringLength(16 * 1024 * 1024)
          .build())
      .build();

  private static final boolean[] BASE64 = new boolean[256];

  static {
    for (char c = 'A'; c <= 'Z'; c++) BASE64[c] = true;
    for (char c = 'a'; c <= 'z'; c++) BASE64[c] = true;
    for (char c = '0'; c <= '9'; c++) BASE64[c] = true;
    BASE64['+'] = true;
    BASE64['/'] = true;
  }

  private final CRC32 crc = new CRC32();
  private final Utf8Field name = new Utf8Field();
  private final Utf8Field type = new Utf8Field();
  private final Utf8Field tagstring = new Utf8Field();

  /**
   * Scans {@code buf[0, len)}.
   *
   * @throws ImportRefusal for anything that is not a non-empty JSON array of objects
   */
  public Result scan(byte[] buf, int len, Sink sink) {
    Result result = new Result();
    int nonEmpty = 0;
    int elements = 0;
    try (JsonParser p = FACTORY.createParser(buf, 0, len)) {
      JsonToken t = p.nextToken();
      if (t == null) {
        throw new ImportRefusal(400, "json", "empty body: expected a JSON array of metrics");
      }
      if (t == JsonToken.VALUE_NULL) {
        throw new ImportRefusal(400, "empty", "Received empty /import request");
      }
      if (t != JsonToken.START_ARRAY) {
        throw new ImportRefusal(400, "json", "body is not a JSON array of metrics");
      }
      while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
        if (t == null) {
          throw new ImportRefusal(400, "json", "malformed JSON: unexpected end of input");
        }
        elements++;
        if (t == JsonToken.VALUE_NULL) {
          result.invalid++;
          continue;
        }
        if (t != JsonToken.START_OBJECT) {
          throw new ImportRefusal(400, "json",
              "malformed JSON: element " + (elements - 1) + " is " + describe(t) + ", not a metric object");
        }
        int start = (int) p.currentTokenLocation().getByteOffset();
        int verdict = metricBody(p, buf, len);
        int end = (int) p.currentLocation().getByteOffset();
        if (verdict != EMPTY) nonEmpty++;
        if (verdict == VALID) {
          result.metrics++;
          crc.reset();
          name.crcInto(crc);
          type.crcInto(crc);
          tagstring.crcInto(crc);
          sink.metric(start, end, (int) crc.getValue());
        } else {
          result.invalid++;
        }
      }
      if (p.nextToken() != null) {
        throw new ImportRefusal(400, "json", "malformed JSON: data after the end of the array");
      }
    } catch (JsonProcessingException e) {
      throw new ImportRefusal(400, "json", "malformed JSON: " + firstLine(e.getOriginalMessage()));
    } catch (IOException e) {
      throw new ImportRefusal(400, "json", "unreadable body: " + firstLine(e.getMessage()));
    }
    if (elements == 0) {
      throw new ImportRefusal(400, "empty", "Received empty /import request");
    }
    if (nonEmpty == 0) {
      throw new ImportRefusal(400, "empty_metrics", "Received empty or improperly-formed metrics");
    }
    return result;
  }

  private static final int VALID = 0;
  private static final int INVALID = 1;
  private static final int EMPTY = 2;

  /** Reads one object's fields; leaves the parser on its END_OBJECT. */
  private int metricBody(JsonParser p, byte[] buf, int len) throws IOException {
    name.clear();
    type.clear();
    tagstring.clear();
    boolean anyField = false;
    boolean wrongType = false;
    JsonToken t;
    while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
      String field = p.currentName();
      JsonToken v = p.nextToken();
      switch (field) {
        case "name":
          wrongType |= !readString(p, v, name);
          anyField |= name.length > 0;
          break;
        case "type":
          wrongType |= !readString(p, v, type);
          anyField |= type.length > 0;
          break;
        case "tagstring":
          wrongType |= !readString(p, v, tagstring);
          anyField |= tagstring.length > 0;
          break;
        case "tags":
          if (v == JsonToken.START_ARRAY) {
            JsonToken e;
            while ((e = p.nextToken()) != JsonToken.END_ARRAY) {
              if (e != JsonToken.VALUE_STRING) {
                wrongType = true;
                p.skipChildren();
              }
            }
            anyField = true;
          } else if (v != JsonToken.VALUE_NULL) {
            wrongType = true;
            p.skipChildren();
          }
          break;
        case "value":
          if (v == JsonToken.VALUE_STRING) {
            wrongType |= !isBase64(p, buf, len);
            anyField = true;
          } else if (v != JsonToken.VALUE_NULL) {
            wrongType = true;
            p.skipChildren();
          }
          break;
        default:
          p.skipChildren();
      }
    }
    if (t != JsonToken.END_OBJECT) {
      throw new ImportRefusal(400, "json", "malformed JSON: unterminated metric object");
    }
    if (!anyField && !wrongType) return EMPTY;
    if (wrongType || name.length == 0 || type.length == 0) return INVALID;
    return VALID;
  }

  private static boolean readString(JsonParser p, JsonToken v, Utf8Field into) throws IOException {
    if (v == JsonToken.VALUE_STRING) {
      into.set(p.getTextCharacters(), p.getTextOffset(), p.getTextLength());
      return true;
    }
    if (v == JsonToken.VALUE_NULL) {
      return true;
    }
    p.skipChildren();
    return false;
  }

  /**
   * Checks the string token the parser is on is standard padded base64, as Go's encoding/json
   * needs for a []byte. Scans the raw bytes in place; only a string with escapes or line breaks
   * (which no Veneur writes) is decoded to be checked.
   */
  private static boolean isBase64(JsonParser p, byte[] buf, int len) throws IOException {
    int q = (int) p.currentTokenLocation().getByteOffset();
    if (q < 0 || q >= len || buf[q] != '"') {
      return slowBase64(p.getText());
    }
    int i = q + 1;
    while (i < len && BASE64[buf[i] & 0xff]) i++;
    int pad = 0;
    while (i < len && buf[i] == '=' && pad < 2) {
      i++;
      pad++;
    }
    if (i < len && buf[i] == '"') {
      int chars = i - (q + 1);
      return chars % 4 == 0;
    }
    return slowBase64(p.getText());
  }

  private static boolean slowBase64(String s) {
    try {
      Base64.getDecoder().decode(s.replace("\r", "").replace("\n", ""));
      return true;
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static String describe(JsonToken t) {
    switch (t) {
      case START_ARRAY: return "an array";
      case VALUE_STRING: return "a string";
      case VALUE_NUMBER_INT: case VALUE_NUMBER_FLOAT: return "a number";
      case VALUE_TRUE: case VALUE_FALSE: return "a boolean";
      default: return t.toString();
    }
  }

  private static String firstLine(String s) {
    if (s == null) return "unknown error";
    int nl = s.indexOf('\n');
    String line = nl < 0 ? s : s.substring(0, nl);
    return line.length() > 200 ? line.substring(0, 200) + "..." : line;
  }

  /** A string field's UTF-8 bytes in a reused buffer: the key hash is over UTF-8, as in Go. */
  private static final class Utf8Field {
    byte[] bytes = new byte[256];
    int length;

    void clear() {
      length = 0;
    }

    void set(char[] chars, int off, int n) {
      if (bytes.length < n * 3) bytes = new byte[Math.max(n * 3, bytes.length * 2)];
      int o = 0;
      int end = off + n;
      for (int i = off; i < end; i++) {
        char c = chars[i];
        if (c < 0x80) {
          bytes[o++] = (byte) c;
        } else if (c < 0x800) {
          bytes[o++] = (byte) (0xc0 | (c >> 6));
          bytes[o++] = (byte) (0x80 | (c & 0x3f));
        } else if (Character.isHighSurrogate(c) && i + 1 < end && Character.isLowSurrogate(chars[i + 1])) {
          int cp = Character.toCodePoint(c, chars[++i]);
          bytes[o++] = (byte) (0xf0 | (cp >> 18));
          bytes[o++] = (byte) (0x80 | ((cp >> 12) & 0x3f));
          bytes[o++] = (byte) (0x80 | ((cp >> 6) & 0x3f));
          bytes[o++] = (byte) (0x80 | (cp & 0x3f));
        } else {
          // A lone surrogate is what Go writes as U+FFFD (EF BF BD) when it builds the key.
          if (Character.isSurrogate(c)) c = '\uFFFD';
          bytes[o++] = (byte) (0xe0 | (c >> 12));
          bytes[o++] = (byte) (0x80 | ((c >> 6) & 0x3f));
          bytes[o++] = (byte) (0x80 | (c & 0x3f));
        }
      }
      length = o;
    }

    void crcInto(CRC32 crc) {
      crc.update(bytes, 0, length);
    }
  }
}
