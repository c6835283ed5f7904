package dev.veneur.proxy.forward;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.wire.Bridge;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * The body a gRPC global receives, a {@code forwardrpc.MetricList}. A protobuf chunk (metrics
 * that came in by gRPC) is already a run of framed {@code Metric}s and is copied as it is. A JSON
 * chunk (metrics that came in by {@code /import}, or were routed again) is translated: it is inflated (its raw
 * length is known, so into one array of that size), its metrics read with a streaming parser and
 * translated one by one ({@link Bridge#toProto}), each written as field 1 of the list. A metric
 * that cannot be translated (a value that is not what its type says) is left out alone and
 * counted by cause; its neighbours go.
 */
final class MetricListBody {
  private static final JsonFactory JSON = new JsonFactory();

  /** The list, and what was left out of it. */
  record Built(Buffer body, int metrics, Map<String, Integer> untranslated, String firstProblem) {
    int left() {
      int n = 0;
      for (int v : untranslated.values()) n += v;
      return n;
    }
  }

  private MetricListBody() {}

  static Built of(List<MetricChunk> chunks) {
    boolean allProto = !chunks.isEmpty();
    for (MetricChunk c : chunks) allProto &= c.proto;
    if (allProto) {
      // gRPC in, gRPC out: the list is the chunks' bytes one after another. They are wrapped, not
      // copied: vertx-grpc copies the message once more behind its 5-byte prefix anyway, and a
      // copy here cost an array as large as the batch (allocated, zeroed, filled) on every POST.
      // Chunks are never mutated once built (MetricChunk), so the wrapper shares them safely.
      byte[][] parts = new byte[chunks.size()][];
      int metrics = 0;
      for (int i = 0; i < parts.length; i++) {
        parts[i] = chunks.get(i).payload;
        metrics += chunks.get(i).count;
      }
      return new Built(io.vertx.core.internal.buffer.BufferInternal.buffer(io.netty.buffer.Unpooled.wrappedBuffer(parts)),
          metrics, Map.of(), null);
    }
    long raw = 0;
    for (MetricChunk c : chunks) raw += c.rawLength;
    // Protobuf is a little smaller than the JSON it comes from (base64 values, quoted keys).
    Buffer out = Buffer.buffer((int) Math.min(Integer.MAX_VALUE - 16, raw + 64));
    Map<String, Integer> left = new LinkedHashMap<>();
    String[] first = {null};
    int metrics = 0;
    Inflater inf = new Inflater(true);
    try {
      for (MetricChunk c : chunks) {
        if (c.proto) {
          out.appendBytes(c.payload);
          metrics += c.count;
        } else {
          // A whole chunk reaches a gRPC global only after a ring change: the JSON form, then on.
          metrics += translate(c.asJson(), inf, out, left, first);
        }
      }
    } finally {
      inf.end();
    }
    return new Built(out, metrics, left, first[0]);
  }

  private static int translate(MetricChunk c, Inflater inf, Buffer out, Map<String, Integer> left, String[] first) {
    byte[] json = new byte[c.rawLength + 2];
    json[0] = '[';
    inf.reset();
    inf.setInput(c.payload);
    try {
      int n = 1;
      while (n < c.rawLength + 1) {
        int k = inf.inflate(json, n, c.rawLength + 1 - n);
        if (k == 0 && (inf.needsInput() || inf.finished() || inf.needsDictionary())) break;
        n += k;
      }
      if (n != c.rawLength + 1) throw new IllegalStateException("a chunk inflated to " + (n - 1) + " bytes, not " + c.rawLength);
    } catch (DataFormatException e) {
      throw new IllegalStateException("a chunk of ours does not inflate: " + e.getMessage(), e);
    }
    json[c.rawLength + 1] = ']';
    int written = 0;
    try (JsonParser p = JSON.createParser(json)) {
      if (p.nextToken() != JsonToken.START_ARRAY) throw new IllegalStateException("a chunk that is not a JSON list");
      while (p.nextToken() == JsonToken.START_OBJECT) {
        String name = null;
        String type = null;
        List<String> tags = new ArrayList<>();
        byte[] value = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
          String field = p.currentName();
          JsonToken t = p.nextToken();
          switch (field) {
            case "name" -> name = t == JsonToken.VALUE_STRING ? p.getText() : null;
            case "type" -> type = t == JsonToken.VALUE_STRING ? p.getText() : null;
            case "tags" -> {
              if (t == JsonToken.START_ARRAY) {
                while (p.nextToken() == JsonToken.VALUE_STRING) tags.add(p.getText());
              } else {
                p.skipChildren();
              }
            }
            case "value" -> {
              if (t == JsonToken.VALUE_STRING) {
                try {
                  value = p.getBinaryValue();
                } catch (IOException notBase64) {
                  value = null;
                }
              } else {
                p.skipChildren();
              }
            }
            default -> p.skipChildren();
          }
        }
        try {
          if (name == null || type == null || value == null) {
            throw new Bridge.Untranslatable("bad_value", "a metric without a name, type or base64 value");
          }
          byte[] m = Bridge.toProto(name, type, tags, value);
          out.appendByte((byte) 0x0a);
          appendVarint(out, m.length);
          out.appendBytes(m);
          written++;
        } catch (Bridge.Untranslatable u) {
          left.merge(u.cause, 1, Integer::sum);
          if (first[0] == null) first[0] = u.getMessage();
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException("a chunk of ours is not JSON: " + e.getMessage(), e);
    }
    return written;
  }

  private static void appendVarint(Buffer out, int v) {
    while ((v & ~0x7f) != 0) {
      out.appendByte((byte) ((v & 0x7f) | 0x80));
      v >>>= 7;
    }
    out.appendByte((byte) v);
  }
}
