package dev.veneur.proxy.spill;

import dev.veneur.proxy.bus.MetricChunk;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code spill_dir}: every chunk the proxy accepts is appended to a file in this directory before
 * its request is answered 202, and marked settled once a global confirms it (or it is dropped for
 * good). Files whose chunks are all settled are deleted. After a crash ({@code kill -9}, an
 * OutOfMemoryError, a host's OOM killer), the next start finds what was accepted and never
 * settled and sends it again; after a stop, what {@code shutdown_timeout} left undelivered too.
 *
 * <p>Writes go to the page cache without fsync: the data survives the process, not the host.
 * Delivery across a crash is at least once: a chunk a global confirmed just before the crash,
 * before its settle mark was written, is sent twice.
 */
public final class Spill {
  private static final Logger LOG = LoggerFactory.getLogger(Spill.class);
  static final byte[] FILE_MAGIC = "VPSPILL1".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
  static final int RECORD_MAGIC = 0x56505243; // "VPRC": a JSON chunk
  /** A protobuf chunk (framed {@code metricpb.Metric}s); the header's raw length and Adler-32 are unused. */
  static final int RECORD_MAGIC_PROTO = 0x56505250; // "VPRP"
  /** A whole chunk: a body kept as its local sent it (MetricChunk.whole). */
  static final int RECORD_MAGIC_WHOLE = 0x56505257; // "VPRW"
  static final int RECORD_HEADER = 28;
  /** A segment stops taking chunks past this size or age, so settled data can be deleted. */
  static final long SEGMENT_BYTES = 64L << 20;
  static final long SEGMENT_NANOS = 10_000_000_000L;

  /**
   * After a failed write, a writer tries again (a new segment) after this, doubling up to
   * {@link #RETRY_MAX_NANOS}: a full disk frees itself as settled segments are deleted, within
   * about two segment lifetimes, and a retry costs one file creation.
   */
  static final long RETRY_FIRST_NANOS = 250_000_000L;
  static final long RETRY_MAX_NANOS = 5_000_000_000L;
  /** Settle marks and deletions that fail, per kind: one line a minute, not one per chunk. */
  static final Throttled MARKS_LOG = new Throttled(LOG, 60_000);
  /** Write failures: one ERROR when spilling starts failing, then a line a minute while it goes on. */
  private static final Throttled FAILURES_LOG = new Throttled(LOG, 60_000);

  private final Path dir;
  private final List<Path> leftovers;
  private final String runId = Long.toString(System.currentTimeMillis(), 36) + "-" + ProcessHandle.current().pid();
  private final AtomicInteger writers = new AtomicInteger();
  final AtomicLong bytesWritten = new AtomicLong();
  final AtomicLong errors = new AtomicLong();
  /** Bytes of the .spill and .done files this process knows of (its own and the leftovers). */
  final AtomicLong bytesOnDisk = new AtomicLong();
  /** .spill files not yet deleted (its own and the leftovers). */
  final AtomicInteger segments = new AtomicInteger();
  /** Metrics (and chunks) answered 202 while their writer could not write them: not durable. */
  private final AtomicLong metricsNotKept = new AtomicLong();
  private final AtomicLong chunksNotKept = new AtomicLong();
  /** Writers whose last attempt failed; spilling is "failing" while any is. */
  private final AtomicInteger failingWriters = new AtomicInteger();
  private volatile String lastError;
  private volatile long failingSinceMillis;
  /** Sizes of the leftover files, counted until their replay deletes them. */
  private final java.util.Map<Path, Long> leftoverBytes;

  private Spill(Path dir, List<Path> leftovers, java.util.Map<Path, Long> leftoverBytes) {
    this.dir = dir;
    this.leftovers = leftovers;
    this.leftoverBytes = leftoverBytes;
    segments.set(leftovers.size());
    bytesOnDisk.set(leftoverBytes.values().stream().mapToLong(Long::longValue).sum());
  }

  /** Opens (creating) the directory and notes the files a previous run left there. */
  public static Spill open(Path dir) throws IOException {
    Files.createDirectories(dir);
    List<Path> old = new ArrayList<>();
    try (Stream<Path> files = Files.list(dir)) {
      files.filter(p -> p.getFileName().toString().endsWith(".spill")).sorted().forEach(old::add);
    }
    java.util.Map<Path, Long> sizes = new java.util.concurrent.ConcurrentHashMap<>();
    for (Path p : old) {
      Segment s = new Segment(null, p, 0);
      long size = Files.size(p) + (Files.exists(s.done) ? Files.size(s.done) : 0);
      sizes.put(p, size);
    }
    return new Spill(dir, old, sizes);
  }

  /** False while a writer's last attempt to write failed (a full disk, say). */
  public boolean healthy() {
    return failingWriters.get() == 0;
  }

  public long bytesOnDisk() {
    return bytesOnDisk.get();
  }

  public int segments() {
    return segments.get();
  }

  /** The last write error's cause, or null if none since start. */
  public String lastError() {
    return lastError;
  }

  /** When spilling last started failing (epoch ms), 0 if it is healthy. */
  public long failingSinceMillis() {
    return healthy() ? 0 : failingSinceMillis;
  }

  /** Metrics answered 202 without being written to disk, since start. */
  public long metricsNotKept() {
    return metricsNotKept.get();
  }

  public long chunksNotKept() {
    return chunksNotKept.get();
  }

  void notKept(int metrics) {
    metricsNotKept.addAndGet(metrics);
    chunksNotKept.incrementAndGet();
  }

  /** A write failed; {@code wasFailing}: its writer's previous attempt had failed too. */
  void failed(String cause, boolean wasFailing) {
    errors.incrementAndGet();
    lastError = cause;
    if (!wasFailing && failingWriters.getAndIncrement() == 0) {
      failingSinceMillis = System.currentTimeMillis();
      FAILURES_LOG.quiet("still");
      FAILURES_LOG.error("failing", "spill_dir " + dir + ": cannot write (" + cause + "); accepted metrics are "
          + "answered 202 without being kept on disk until it can write again (retried within "
          + RETRY_MAX_NANOS / 1_000_000_000L + " s; spill.failing, /debug/state)");
    } else {
      FAILURES_LOG.warn("still", "spill_dir " + dir + ": still cannot write (" + cause + "); "
          + metricsNotKept.get() + " metric(s) answered 202 without being kept on disk since start");
    }
  }

  /** A writer whose last attempt failed was closed: it no longer makes the spill failing. */
  void writerGone() {
    failingWriters.decrementAndGet();
  }

  /** A writer whose previous attempt failed wrote again. */
  void recovered() {
    if (failingWriters.decrementAndGet() == 0) {
      LOG.info("spill_dir {}: writing again after {} s; accepted metrics are kept on disk again ({} metric(s) "
          + "were answered 202 without being kept since start)", dir,
          (System.currentTimeMillis() - failingSinceMillis) / 1000, metricsNotKept.get());
    }
  }

  public Path dir() {
    return dir;
  }

  public long bytesWritten() {
    return bytesWritten.get();
  }

  public long errors() {
    return errors.get();
  }

  /** A writer for one HTTP event loop. */
  public SpillWriter writer() {
    return new SpillWriter(this, dir, runId + "-" + writers.incrementAndGet());
  }

  /** Files left by a previous run, oldest first. */
  public List<Path> leftovers() {
    return leftovers;
  }

  /** A chunk found in a leftover file, with the record that settles it there. */
  public record Found(MetricChunk chunk, SpillRecord record) {}

  /**
   * Reads the unsettled chunks of one leftover file, in order. A record cut short or damaged (the
   * write a crash interrupted) ends the file. Once every chunk read from it is settled, the file
   * is deleted.
   */
  public static void readLeftover(Path file, Consumer<Found> each) throws IOException {
    readLeftover(null, file, each);
  }

  /** {@link #readLeftover(Path, Consumer)}, the file counted in this spill until it is deleted. */
  public void replay(Path file, Consumer<Found> each) throws IOException {
    Long size = leftoverBytes.remove(file);
    readLeftover(this, file, each, size == null ? 0 : size);
  }

  private static void readLeftover(Spill owner, Path file, Consumer<Found> each) throws IOException {
    readLeftover(owner, file, each, 0);
  }

  private static void readLeftover(Spill owner, Path file, Consumer<Found> each, long counted) throws IOException {
    Segment seg = new Segment(owner, file, counted);
    BitSet settled = new BitSet();
    // A record takes at least its header, so no index can reach this: a mark past it (or below 0)
    // is damage, and trusting it would size the bit set by garbage or lose the whole file.
    long fileSize = Files.size(file);
    long maxIndex = fileSize / RECORD_HEADER + 1;
    if (Files.exists(seg.done)) {
      ByteBuffer marks = ByteBuffer.wrap(Files.readAllBytes(seg.done));
      int damaged = 0;
      while (marks.remaining() >= 4) {
        int mark = marks.getInt();
        if (mark >= 0 && mark <= maxIndex) settled.set(mark);
        else damaged++;
      }
      if (damaged > 0) {
        LOG.warn("{}: {} damaged settle mark(s) ignored; the records they would settle are sent again", seg.done,
            damaged);
      }
    }
    int found = 0;
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer magic = ByteBuffer.allocate(FILE_MAGIC.length);
      if (!readFully(ch, magic) || !java.util.Arrays.equals(magic.array(), FILE_MAGIC)) {
        LOG.warn("{} is not a spill file; left alone", file);
        return;
      }
      ByteBuffer head = ByteBuffer.allocate(RECORD_HEADER);
      CRC32 crc = new CRC32();
      while (true) {
        head.clear();
        if (!readFully(ch, head)) break;
        head.flip();
        int kind = head.getInt();
        if (kind != RECORD_MAGIC && kind != RECORD_MAGIC_PROTO && kind != RECORD_MAGIC_WHOLE) {
          LOG.warn("{}: a damaged record ends what can be read of it", file);
          break;
        }
        int index = head.getInt();
        int count = head.getInt();
        int rawLength = head.getInt();
        int adler = head.getInt();
        int length = head.getInt();
        int sum = head.getInt();
        if (length < 0 || count <= 0 || length > (256 << 20)) {
          LOG.warn("{}: a damaged record ends what can be read of it", file);
          break;
        }
        // Never allocate more than the file still holds: a length the file cannot back is a record
        // cut short, or damage.
        if (length > fileSize - ch.position()) {
          // Cut short by a crash during the write (its request was never answered 202), or by a
          // write error such as a full disk (its request was answered 202, its metrics kept only
          // in memory and counted in spill.metrics_not_kept), or a truncated file.
          LOG.warn("{}: its last {} bytes are an incomplete record: a write cut short by a crash (before its "
              + "request was answered) or by a write error such as a full disk (its metrics were answered 202 "
              + "but not kept on disk), or the file was truncated (as a power loss can do); what precedes it is "
              + "sent again", file, fileSize - ch.position() + RECORD_HEADER);
          break;
        }
        ByteBuffer payload = ByteBuffer.allocate(length);
        if (!readFully(ch, payload)) {
          LOG.warn("{}: it ends inside a record (the file shrank while read?); what precedes it is sent again", file);
          break;
        }
        crc.reset();
        crc.update(payload.array(), 0, length);
        if ((int) crc.getValue() != sum) {
          LOG.warn("{}: a record fails its checksum; it and what follows are skipped", file);
          break;
        }
        if (settled.get(index)) continue;
        seg.opened();
        found++;
        MetricChunk chunk = kind == RECORD_MAGIC_PROTO ? MetricChunk.protobuf(payload.array(), count, null)
            : kind == RECORD_MAGIC_WHOLE ? MetricChunk.whole(payload.array(), rawLength, count, null)
            : new MetricChunk(payload.array(), rawLength, adler, count, null);
        each.accept(new Found(chunk,
            new SpillRecord(seg, index)));
      }
    } catch (EOFException e) {
      // the end
    }
    // Nothing more will be added to it: it goes once what was found in it is settled.
    seg.seal();
    if (found == 0) LOG.debug("{} held nothing unsettled", file);
  }

  private static boolean readFully(FileChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      if (ch.read(b) < 0) return false;
    }
    return true;
  }
}
