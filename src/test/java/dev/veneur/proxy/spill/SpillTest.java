package dev.veneur.proxy.spill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.support.LogCapture;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The spill files on their own: what a crash leaves is exactly what was accepted and not settled. */
class SpillTest {
  @RegisterExtension final LogCapture log = LogCapture.of(Spill.class);

  private long logged(ch.qos.logback.classic.Level level, String fragment) {
    return log.count(level, fragment);
  }

  private static MetricChunk chunk(int i) {
    byte[] b = new byte[100 + i];
    for (int k = 0; k < b.length; k++) b[k] = (byte) (i * 31 + k);
    return new MetricChunk(b, 1000 + i, 7 * i, i + 1, null);
  }

  private static List<Path> files(Path dir, String suffix) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.toString().endsWith(suffix)).sorted().toList();
    }
  }

  private static List<Spill.Found> read(Path dir) throws IOException {
    List<Spill.Found> found = new ArrayList<>();
    for (Path f : Spill.open(dir).leftovers()) Spill.readLeftover(f, found::add);
    return found;
  }

  @Test
  void whatACrashLeavesIsWhatWasNotSettledAndItGoesOnceSettled(@TempDir Path dir) throws IOException {
    Spill spill = Spill.open(dir);
    SpillWriter w = spill.writer();
    List<SpillRecord> records = new ArrayList<>();
    for (int i = 0; i < 10; i++) records.add(w.append(chunk(i)));
    // Settled: 0..5 whole; 6 split in three parts of which two settled; 7..9 not at all.
    for (int i = 0; i < 6; i++) records.get(i).settled();
    records.get(6).split(3);
    records.get(6).settled();
    records.get(6).settled();
    // "Crash": the writer is never closed; a new run opens the directory.
    List<Spill.Found> left = read(dir);
    assertEquals(List.of(6, 7, 8, 9), left.stream().map(f -> f.chunk().count - 1).toList());
    for (Spill.Found f : left) {
      MetricChunk want = chunk(f.chunk().count - 1);
      assertArrayEquals(want.payload, f.chunk().payload);
      assertEquals(want.rawLength, f.chunk().rawLength);
      assertEquals(want.adler, f.chunk().adler);
    }
    // The replay settles them: the file and its marks go.
    for (Spill.Found f : left) f.record().settled();
    assertTrue(files(dir, ".spill").isEmpty(), "settled files deleted: " + files(dir, ""));
    assertTrue(files(dir, ".done").isEmpty());
  }

  /** A protobuf chunk comes back a protobuf chunk, beside JSON ones, its bytes and count intact. */
  @Test
  void protobufChunksComeBackAsProtobuf(@TempDir Path dir) throws IOException {
    SpillWriter w = Spill.open(dir).writer();
    byte[] framed = {0x0a, 3, 1, 2, 3, 0x0a, 1, 9};
    w.append(chunk(0));
    w.append(MetricChunk.protobuf(framed, 2, null));
    w.append(chunk(1));
    List<Spill.Found> left = read(dir);
    assertEquals(List.of(false, true, false), left.stream().map(f -> f.chunk().proto).toList());
    MetricChunk p = left.get(1).chunk();
    assertArrayEquals(framed, p.payload);
    assertEquals(2, p.count);
    assertEquals(framed.length, p.rawLength);
    assertArrayEquals(chunk(1).payload, left.get(2).chunk().payload);
  }

  @Test
  void wholeChunksComeBackWhole(@TempDir Path dir) throws IOException {
    SpillWriter w = Spill.open(dir).writer();
    byte[] body = {0x78, (byte) 0x9C, 1, 2, 3, 4};
    w.append(chunk(0));
    w.append(MetricChunk.whole(body, 300, 7, null));
    List<Spill.Found> left = read(dir);
    assertEquals(List.of(false, true), left.stream().map(f -> f.chunk().whole).toList());
    MetricChunk c = left.get(1).chunk();
    assertArrayEquals(body, c.payload, "kept as the local sent it");
    assertEquals(7, c.count);
    assertEquals(300, c.rawLength);
    assertEquals(false, c.proto);
  }

  @Test
  void aRecordCutShortByTheCrashEndsTheFile(@TempDir Path dir) throws IOException {
    SpillWriter w = Spill.open(dir).writer();
    for (int i = 0; i < 3; i++) assertNotNull(w.append(chunk(i)));
    Path file = files(dir, ".spill").get(0);
    long size = Files.size(file);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.truncate(size - 10); // the last record's write was interrupted
    }
    List<Spill.Found> left = read(dir);
    assertEquals(2, left.size(), "the two whole records, not the cut one");
  }

  /**
   * Damage the process did not write: settle marks pointing nowhere (a huge index once sized the
   * bit set into an OutOfMemoryError and lost the whole file), and a record whose length field
   * claims more than the file holds (never allocated). The good records are still sent again.
   */
  @Test
  void damagedSettleMarksAndLengthsCostOnlyWhatTheyDamaged(@TempDir Path dir) throws IOException {
    SpillWriter w = Spill.open(dir).writer();
    List<SpillRecord> records = new ArrayList<>();
    for (int i = 0; i < 4; i++) records.add(w.append(chunk(i)));
    records.get(1).settled();
    Path done = files(dir, ".done").get(0);
    Files.write(done, new byte[] {0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xf0, (byte) 0xff, (byte) 0xff,
        (byte) 0xff, (byte) 0xff}, StandardOpenOption.APPEND);
    List<Spill.Found> left = read(dir);
    assertEquals(List.of(0, 2, 3), left.stream().map(f -> f.chunk().count - 1).toList(),
        "every unsettled record, the settled one not, the bogus marks ignored");

    // The last record's length field now claims 200 MB: that record is lost, nothing is allocated for it.
    Path dir2 = Files.createDirectory(dir.resolve("second"));
    SpillWriter w2 = Spill.open(dir2).writer();
    for (int i = 0; i < 3; i++) w2.append(chunk(i));
    Path file = files(dir2, ".spill").get(0);
    long lastRecord = Files.size(file) - (Spill.RECORD_HEADER + chunk(2).payload.length);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      // Header: magic, index, count, rawLength, adler, length, crc.
      ch.write(java.nio.ByteBuffer.allocate(4).putInt(0, 200 << 20), lastRecord + 20);
    }
    List<Spill.Found> left2 = new ArrayList<>();
    List<Path> leftovers = Spill.open(dir2).leftovers();
    com.sun.management.ThreadMXBean threads =
        (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
    long before = threads.getCurrentThreadAllocatedBytes();
    for (Path f : leftovers) Spill.readLeftover(f, left2::add);
    long allocated = threads.getCurrentThreadAllocatedBytes() - before;
    assertEquals(List.of(0, 1), left2.stream().map(f -> f.chunk().count - 1).toList());
    assertTrue(allocated < (16 << 20), "reading the damaged file allocated " + allocated + " bytes");
  }

  @Test
  void aClosedWriterLeavesNothingOnceAllIsSettledAndSegmentsRotate(@TempDir Path dir) throws IOException {
    SpillWriter w = Spill.open(dir).writer();
    SpillRecord r = w.append(chunk(1));
    w.close();
    assertFalse(files(dir, ".spill").isEmpty(), "kept while unsettled");
    r.settled();
    assertTrue(files(dir, ".spill").isEmpty());
  }

  /**
   * Issue 21 item 5, on a real full disk (a 256 KB tmpfs): a failed write seals the writer's
   * segment, so it is deleted once its chunks are settled; the writer retries and writes again
   * once there is room; health, bytes on disk and what was not kept are counted.
   */
  @Test
  void aFullDiskIsSurvivedAndWhatWasWrittenIsDeletedOnceSettled(@TempDir Path tmp) throws Exception {
    try (dev.veneur.proxy.support.TinyFs fs = dev.veneur.proxy.support.TinyFs.mount(tmp.resolve("fs"), "256k")) {
      Spill spill = Spill.open(fs.dir.resolve("spill"));
      SpillWriter w = spill.writer();
      List<SpillRecord> kept = fillUntilFull(w);
      // The failing append was fillUntilFull's last: the backoff (250 ms) runs from about now.
      long failedAt = System.nanoTime();
      assertFalse(spill.healthy(), "the full disk is reported");
      assertTrue(spill.lastError() != null && spill.lastError().contains("No space"), spill.lastError());
      assertTrue(spill.metricsNotKept() > 0 && spill.chunksNotKept() == 1, "the chunk answered without disk is counted");
      assertTrue(kept.size() > 100 && spill.bytesOnDisk() > 200_000, kept.size() + " kept, " + spill.bytesOnDisk());
      assertEquals(1, spill.segments());
      // Within the backoff nothing is tried: counted, not written, not logged again.
      long errors = spill.errors();
      assertNull(w.append(chunk(1)));
      // Checked only if the append came well within the backoff: after a GC pause or a long
      // deschedule it may rightly have been a retry.
      if (System.nanoTime() - failedAt < 150_000_000L) assertEquals(errors, spill.errors());
      assertEquals(2, spill.chunksNotKept());
      // Attempts past the backoff fail again (the disk is still full): counted, not logged again.
      long retryUntil = System.nanoTime() + 10_000_000_000L;
      while (spill.errors() < errors + 2 && System.nanoTime() < retryUntil) {
        java.util.concurrent.locks.LockSupport.parkNanos(20_000_000L);
        assertNull(w.append(chunk(2)));
      }
      assertEquals(errors + 2, spill.errors(), "retried");
      // Everything written is settled: the failed writer's segment goes and the disk is free.
      for (SpillRecord k : kept) k.settled();
      assertEquals(List.of(), files(spill.dir(), ".spill"), "the failed writer's segment was deleted");
      assertEquals(0, spill.bytesOnDisk());
      assertEquals(0, spill.segments());
      // Past the backoff the writer writes again, into a new segment.
      long until = System.nanoTime() + 10_000_000_000L;
      SpillRecord again = null;
      while (again == null && System.nanoTime() < until) {
        java.util.concurrent.locks.LockSupport.parkNanos(20_000_000L);
        again = w.append(chunk(3));
      }
      assertNotNull(again, "spilling resumed");
      assertEquals(1, logged(ch.qos.logback.classic.Level.ERROR, "cannot write (No space left on device)"),
          "one ERROR for the episode, not one per attempt");
      assertEquals(1, logged(ch.qos.logback.classic.Level.INFO, "writing again"));
      assertTrue(spill.healthy());
      assertEquals(1, files(spill.dir(), ".spill").size());
      // And what it writes now survives a crash.
      List<Spill.Found> left = read(spill.dir());
      assertEquals(1, left.size());
      assertEquals(4, left.get(0).chunk().count);
    }
  }

  /** Appends chunks until the disk refuses one; the records of those that were written. */
  private static List<SpillRecord> fillUntilFull(SpillWriter w) {
    List<SpillRecord> kept = new ArrayList<>();
    SpillRecord r;
    int i = 0;
    while ((r = w.append(chunk(i++ % 50))) != null) kept.add(r);
    return kept;
  }

  /** A writer closed while failing (its HTTP verticle retired by a reload) leaves the spill healthy. */
  @Test
  void aFailedWriterThatIsClosedNoLongerMakesTheSpillFailing(@TempDir Path tmp) throws Exception {
    try (dev.veneur.proxy.support.TinyFs fs = dev.veneur.proxy.support.TinyFs.mount(tmp.resolve("fs"), "64k")) {
      Spill spill = Spill.open(fs.dir.resolve("spill"));
      SpillWriter w = spill.writer();
      List<SpillRecord> kept = fillUntilFull(w);
      assertFalse(spill.healthy());
      w.close();
      assertTrue(spill.healthy(), "no writer is failing any more");
      for (SpillRecord k : kept) k.settled();
      assertEquals(List.of(), files(spill.dir(), ".spill"));
    }
  }

  /**
   * A record cut short at the end of a file: the warning no longer claims it was never answered
   * 202 (a write cut by a full disk was answered 202, from memory).
   */
  @Test
  void aCutRecordIsNotCalledNeverAnswered(@TempDir Path dir) throws IOException {
    SpillWriter w = Spill.open(dir).writer();
    for (int i = 0; i < 3; i++) w.append(chunk(i));
    Path file = files(dir, ".spill").get(0);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.truncate(Files.size(file) - 10);
    }
    assertEquals(List.of(0, 1), read(dir).stream().map(f -> f.chunk().count - 1).toList());
    assertEquals(1, logged(ch.qos.logback.classic.Level.WARN, "incomplete record"));
    assertEquals(0, logged(ch.qos.logback.classic.Level.WARN, "never answered 202"), "the old, wrong claim");
    assertEquals(1, logged(ch.qos.logback.classic.Level.WARN, "answered 202 but not kept on disk"));
  }
}
