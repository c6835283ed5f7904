package dev.veneur.proxy.ingest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.routing.Owners;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;

/**
 * Bodies queued together are merged into one chunk per destination (issue 21: with 100 globals a
 * body made 100 chunks of ~10 metrics, each a fresh deflate stream, a bus message and a POST); a
 * body that fails or is given back takes only its own metrics with it, and a body that would
 * reach a deflater starts a new group, so every chunk still holds whole bodies' metrics.
 */
class IngesterMergeTest {
  private final ArrayDeque<Runnable> later = new ArrayDeque<>();
  private final MemoryBudget budget = new MemoryBudget(() -> 1L << 30);
  private final List<List<Ingester.Task>> groupTasks = new ArrayList<>();
  private final List<MetricChunk[]> groupChunks = new ArrayList<>();
  private final List<String> events = new ArrayList<>();
  private final Object ring = new Object();

  private final Ingester ingester = new Ingester(later::add, budget, new FixedLimits(8 << 20, 8 << 20, 1), new Ingester.Groups() {
    @Override
    public void done(List<Ingester.Task> tasks, List<Ingester.Result> results, MetricChunk[] chunks) {
      groupTasks.add(tasks);
      groupChunks.add(chunks);
      events.add("group of " + tasks.size());
    }

    @Override
    public void abandoned(List<Ingester.Task> tasks, List<Ingester.Result> results) {
      events.add("abandoned " + tasks.size());
    }
  });

  /** Two destinations: even-numbered metrics (by position) to slot 0, odd to slot 1. */
  private static final Owners TWO_WAYS = new Owners() {
    @Override
    public int ways() {
      return 2;
    }

    @Override
    public int slot(int index, int keyHash) {
      return index % 2;
    }
  };

  private final class Body implements Ingester.Task {
    final String name;
    final byte[] body;
    final Object key;
    final boolean keep;
    Ingester.Result result;
    ImportRefusal refusal;

    Body(String name, byte[] body, Object key, boolean keep) {
      this.name = name;
      this.body = body;
      this.key = key;
      this.keep = keep;
    }

    @Override
    public void open(BodySource source) {
      source.open(null, List.of(ByteBuffer.wrap(body)), 64 << 20);
    }

    @Override
    public Owners router() {
      return TWO_WAYS;
    }

    @Override
    public dev.veneur.proxy.bus.RequestTrace trace() {
      return null;
    }

    @Override
    public Object mergeKey() {
      return key;
    }

    @Override
    public boolean scanned(Ingester.Result r) {
      result = r;
      events.add("scanned " + name);
      return keep;
    }

    @Override
    public void done(Ingester.Result r) {
      result = r;
      events.add("done " + name);
    }

    @Override
    public void failed(ImportRefusal r) {
      refusal = r;
      events.add("failed " + name);
    }
  }

  private static String metric(String name, int pad) {
    return "{\"name\":\"" + name + "\",\"type\":\"counter\",\"tagstring\":\"" + "x".repeat(pad)
        + "\",\"value\":\"BQAAAAAAAAA=\"}";
  }

  /** A body of {@code n} metrics named prefix0..prefix(n-1). */
  private static byte[] body(String prefix, int n, int pad) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < n; i++) sb.append(i > 0 ? "," : "").append(metric(prefix + i, pad));
    return sb.append(']').toString().getBytes(StandardCharsets.US_ASCII);
  }

  private Body submit(String name, byte[] body, Object key, boolean keep) {
    Body b = new Body(name, body, key, keep);
    ingester.submit(b);
    return b;
  }

  private void drain() {
    Runnable r;
    while ((r = later.poll()) != null) r.run();
  }

  /** The metric names in a chunk, in order, checking that it inflates to comma-joined JSON. */
  private static List<String> names(MetricChunk c) throws Exception {
    Inflater inf = new Inflater(true);
    inf.setInput(c.payload);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[1 << 16];
    while (true) {
      int n = inf.inflate(buf);
      if (n == 0) break;
      out.write(buf, 0, n);
    }
    inf.end();
    byte[] raw = out.toByteArray();
    assertEquals(c.rawLength, raw.length);
    java.util.zip.Adler32 a = new java.util.zip.Adler32();
    a.update(raw);
    assertEquals((int) a.getValue(), c.adler, "Adler-32 of the chunk's JSON");
    String json = new String(raw, StandardCharsets.US_ASCII);
    io.vertx.core.json.JsonArray arr = new io.vertx.core.json.JsonArray("[" + json + "]");
    List<String> names = new ArrayList<>();
    for (int i = 0; i < arr.size(); i++) names.add(arr.getJsonObject(i).getString("name"));
    assertEquals(c.count, names.size());
    return names;
  }

  private void releaseAll() {
    for (MetricChunk[] cs : groupChunks) for (MetricChunk c : cs) if (c != null) budget.release(c.bytes());
  }

  @Test
  void queuedBodiesShareOneChunkPerDestination() throws Exception {
    Body a = submit("a", body("a", 4, 10), ring, true);
    Body b = submit("b", body("b", 4, 10), ring, true);
    Body c = submit("c", body("c", 3, 10), ring, true);
    drain();
    assertEquals(List.of("scanned a", "scanned b", "scanned c", "group of 3"), events);
    MetricChunk[] chunks = groupChunks.get(0);
    assertEquals(List.of("a0", "a2", "b0", "b2", "c0", "c2"), names(chunks[0]));
    assertEquals(List.of("a1", "a3", "b1", "b3", "c1"), names(chunks[1]));
    assertEquals(4, a.result.valid);
    assertEquals(3, c.result.valid);
    assertNull(a.refusal);
    releaseAll();
    assertEquals(0, budget.used(), "the writers' scratch and the chunks given back");
  }

  @Test
  void aBodyGivenBackOrFailingTakesOnlyItsOwnMetrics() throws Exception {
    submit("a", body("a", 2, 10), ring, true);
    submit("b", body("b", 2, 10), ring, false); // e.g. its sender left: scanned, then given back
    byte[] bad = body("c", 2, 10);
    bad[bad.length - 1] = '!'; // not JSON after its metrics were scanned...
    byte[] cut = java.util.Arrays.copyOf(bad, bad.length - 30); // ...and cut inside the last one
    submit("c", cut, ring, true);
    submit("d", body("d", 2, 10), ring, true);
    drain();
    MetricChunk[] chunks = groupChunks.get(0);
    List<String> all = new ArrayList<>(names(chunks[0]));
    all.addAll(names(chunks[1]));
    assertEquals(List.of("a0", "d0", "a1", "d1"), all);
    assertEquals(1, groupChunks.size());
    assertEquals(2, groupTasks.get(0).size());
    assertTrue(events.contains("failed c"), events.toString());
    releaseAll();
    assertEquals(0, budget.used());
  }

  @Test
  void aBodyThatWouldReachTheDeflaterStartsANewGroup() throws Exception {
    // Each body puts ~40 KB on each destination: the second one's metrics would overflow the
    // 64 KB stage, so the first body's chunks are cut before and the second starts afresh.
    Body a = submit("a", body("a", 200, 300), ring, true);
    Body b = submit("b", body("b", 200, 300), ring, true);
    Body c = submit("c", body("c", 200, 300), ring, true);
    drain();
    assertEquals(3, groupChunks.size(), events.toString());
    for (int g = 0; g < 3; g++) {
      String p = String.valueOf((char) ('a' + g));
      assertEquals(1, groupTasks.get(g).size());
      List<String> even = names(groupChunks.get(g)[0]);
      List<String> odd = names(groupChunks.get(g)[1]);
      assertEquals(100, even.size());
      assertEquals(100, odd.size());
      for (String n : even) assertTrue(n.startsWith(p), n);
      for (String n : odd) assertTrue(n.startsWith(p), n);
      assertEquals(p + "0", even.get(0));
      assertEquals(p + "198", even.get(99));
    }
    assertNotNull(a.result);
    assertNotNull(b.result);
    assertNotNull(c.result);
    releaseAll();
    assertEquals(0, budget.used());
  }

  @Test
  void onlyBodiesOfTheSameRingAreMergedAndOthersEndTheGroup() throws Exception {
    Object otherRing = new Object();
    submit("a", body("a", 2, 10), ring, true);
    submit("b", body("b", 2, 10), otherRing, true);
    Body plain = submit("p", body("p", 2, 10), null, true); // a re-routed chunk: never merged
    submit("c", body("c", 2, 10), ring, true);
    drain();
    assertEquals(List.of("scanned a", "group of 1", "scanned b", "group of 1", "done p", "scanned c",
        "group of 1"), events);
    assertEquals(List.of("p0"), names(plain.result.chunks[0]));
    budget.release(plain.result.chunks[0].bytes());
    budget.release(plain.result.chunks[1].bytes());
    releaseAll();
    assertEquals(0, budget.used());
  }

  @Test
  void closingWithAGroupOpenAnswersItsBodies() {
    submit("a", body("a", 2, 10), ring, true);
    submit("b", body("b", 2, 10), ring, true);
    // Run only until a has been scanned and b is being worked on, then close.
    while (!events.contains("scanned a")) later.poll().run();
    ingester.close();
    drain();
    assertTrue(events.contains("abandoned 1") || events.contains("abandoned 2"), events.toString());
  }
}
