package dev.veneur.proxy.forward;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.bus.MetricChunk;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonArray;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.zip.Adler32;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;

/**
 * The body a global receives is built by joining independently deflated chunks. A strict zlib
 * reader (the JDK's, which checks the Adler-32 trailer, unlike Go's decoder in the global) must
 * read it as the JSON array of all the chunks' metrics.
 */
class BatchBodyTest {

  /** A chunk as the HTTP verticles make it: raw deflate ending in a sync flush, with its Adler-32. */
  static MetricChunk chunk(String commaJoined, int count, int level) {
    byte[] raw = commaJoined.getBytes(StandardCharsets.UTF_8);
    Deflater d = new Deflater(level, true);
    d.setInput(raw);
    byte[] out = new byte[raw.length + 1024];
    int n = 0;
    while (!d.needsInput()) n += d.deflate(out, n, out.length - n, Deflater.NO_FLUSH);
    int k;
    do {
      k = d.deflate(out, n, out.length - n, Deflater.SYNC_FLUSH);
      n += k;
    } while (k > 0 && n == out.length);
    d.end();
    Adler32 a = new Adler32();
    a.update(raw);
    return new MetricChunk(Arrays.copyOf(out, n), raw.length, (int) a.getValue(), count, null);
  }

  static String inflateStrict(Buffer body) throws DataFormatException {
    Inflater inf = new Inflater();
    inf.setInput(body.getBytes());
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[8192];
    while (!inf.finished()) {
      int n = inf.inflate(buf);
      if (n == 0 && inf.needsInput()) throw new AssertionError("truncated body");
      out.write(buf, 0, n);
    }
    assertEquals(0, inf.getRemaining(), "nothing after the zlib stream");
    inf.end();
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void joinedChunksInflateToOneArrayWithAValidChecksum() throws Exception {
    Random r = new Random(42);
    for (int round = 0; round < 50; round++) {
      List<MetricChunk> chunks = new ArrayList<>();
      List<String> all = new ArrayList<>();
      int nChunks = 1 + r.nextInt(6);
      for (int c = 0; c < nChunks; c++) {
        List<String> metrics = new ArrayList<>();
        int n = 1 + r.nextInt(40);
        for (int i = 0; i < n; i++) {
          byte[] v = new byte[r.nextInt(300)];
          r.nextBytes(v);
          metrics.add("{\"name\":\"m." + round + "." + c + "." + i + "\",\"type\":\"counter\",\"value\":\""
              + java.util.Base64.getEncoder().encodeToString(v) + "\"}");
        }
        all.addAll(metrics);
        chunks.add(chunk(String.join(",", metrics), n, r.nextInt(10)));
      }
      Buffer body = BatchBody.of(chunks);
      assertEquals(BatchBody.length(chunks), body.length());
      String json = inflateStrict(body);
      assertEquals("[" + String.join(",", all) + "]", json);
      assertEquals(all.size(), new JsonArray(json).size());
    }
  }

  static MetricChunk whole(String json, int count) {
    byte[] raw = json.getBytes(StandardCharsets.UTF_8);
    return MetricChunk.whole(dev.veneur.proxy.support.Bodies.deflate(raw), raw.length, count, null);
  }

  @Test
  void aWholeChunkAloneIsSentAsItCameAndAmongOthersAsItsJson() throws Exception {
    String a = "{\"name\":\"a\",\"type\":\"counter\",\"value\":\"BQAAAAAAAAA=\"}";
    String b = "{\"name\":\"b\",\"type\":\"gauge\",\"value\":\"AAAAAAAA8D8=\"}";
    MetricChunk w = whole(" [" + a + ", " + b + "] ", 2);
    Buffer alone = BatchBody.of(List.of(w));
    assertTrue(Arrays.equals(w.payload, alone.getBytes()), "the body as the local sent it");
    assertEquals(w.payload.length, BatchBody.length(List.of(w)));
    // Joined with a JSON chunk (a whole chunk re-batched with others, as after a ring change).
    Buffer joined = BatchBody.of(List.of(chunk(a, 1, 1), w, chunk(b, 1, 6)));
    String json = inflateStrict(joined);
    assertEquals("[" + a + "," + a + ", " + b + "," + b + "]", json);
    assertEquals(4, new JsonArray(json).size());
  }

  @Test
  void adlerCombineMatchesAdlerOverTheWhole() {
    Random r = new Random(7);
    for (int i = 0; i < 200; i++) {
      byte[] x = new byte[r.nextInt(i < 100 ? 100 : 200_000)];
      byte[] y = new byte[r.nextInt(i % 2 == 0 ? 10 : 300_000)];
      r.nextBytes(x);
      r.nextBytes(y);
      Adler32 ax = new Adler32();
      ax.update(x);
      Adler32 ay = new Adler32();
      ay.update(y);
      Adler32 whole = new Adler32();
      whole.update(x);
      whole.update(y);
      assertEquals((int) whole.getValue(), dev.veneur.proxy.wire.Adler.combine((int) ax.getValue(), (int) ay.getValue(), y.length));
    }
  }


  /**
   * A protobuf chunk that reaches an HTTP global (they are made for gRPC globals only) is sent as
   * the JSON its metrics translate to, in its place among the others.
   */
  @Test
  void aProtobufChunkIsSentAsItsJson() throws Exception {
    ByteArrayOutputStream framed = new ByteArrayOutputStream();
    byte[] m = dev.veneur.proxy.wire.MetricPb.metric("p", List.of("a:b", "c:d"), dev.veneur.proxy.wire.MetricPb.COUNTER,
        dev.veneur.proxy.wire.MetricPb.GLOBAL, dev.veneur.proxy.wire.MetricPb.F_COUNTER,
        dev.veneur.proxy.wire.MetricPb.counterValue(5));
    dev.veneur.proxy.wire.MetricPb.listEntry(framed, m, 0, m.length);
    dev.veneur.proxy.wire.MetricPb.listEntry(framed, m, 0, m.length);
    MetricChunk proto = MetricChunk.protobuf(framed.toByteArray(), 2, null);
    String first = "{\"name\":\"x\",\"type\":\"gauge\",\"tagstring\":\"\",\"tags\":[],\"value\":\"AAAAAAAA+D8=\"}";
    int[] lost = {0};
    Buffer body = BatchBody.of(List.of(chunk(first, 1, 1), proto), n -> lost[0] += n);
    assertEquals(0, lost[0], "counters keep their scope in JSON");
    JsonArray all = new JsonArray(inflateStrict(body));
    assertEquals(3, all.size());
    assertEquals("x", all.getJsonObject(0).getString("name"));
    for (int i = 1; i < 3; i++) {
      assertEquals("p", all.getJsonObject(i).getString("name"));
      assertEquals("counter", all.getJsonObject(i).getString("type"));
      assertEquals("a:b,c:d", all.getJsonObject(i).getString("tagstring"));
      assertEquals("BQAAAAAAAAA=", all.getJsonObject(i).getString("value"));
    }
  }
}
