package dev.veneur.proxy.spill;

import dev.veneur.proxy.bus.MetricChunk;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32;

/**
 * Appends the chunks one HTTP event loop accepts to its current spill segment. A write goes to the
 * page cache (tens of microseconds for a request's chunks); the segment rotates by size and age.
 *
 * <p>If a write fails (a full disk, say), the proxy goes on without spilling rather than refuse
 * traffic: the chunk is answered 202 from memory and counted not kept
 * ({@code spill.metrics_not_kept}). The failed segment is sealed at once (cut back to its last
 * whole record), so it is deleted as soon as what it holds is settled: that is what frees a full
 * disk. The writer then tries again with a new segment after a backoff (250 ms, doubling to 5 s),
 * on the next chunk past it, and spills again as soon as a write succeeds.
 *
 * <p>One per event loop: not thread-safe.
 */
public final class SpillWriter {
  private final Spill spill;
  private final Path dir;
  private final String name;
  private final ByteBuffer head = ByteBuffer.allocate(Spill.RECORD_HEADER);
  private final CRC32 crc = new CRC32();
  private Segment segment;
  private FileChannel channel;
  private long segmentBytes;
  private long segmentStarted;
  private int nextIndex;
  private int seq;
  /** The last attempt failed; no attempt before {@link #retryAt}. */
  private boolean failing;
  private long retryAt;
  private long retryDelay = Spill.RETRY_FIRST_NANOS;

  SpillWriter(Spill spill, Path dir, String name) {
    this.spill = spill;
    this.dir = dir;
    this.name = name;
  }

  /** Writes the chunk and returns its record; null if it could not be written (it is counted). */
  public SpillRecord append(MetricChunk c) {
    long now = System.nanoTime();
    if (failing && now - retryAt < 0) {
      spill.notKept(c.count);
      return null;
    }
    long recordStart = -1;
    try {
      if (segment == null || segmentBytes > Spill.SEGMENT_BYTES || now - segmentStarted > Spill.SEGMENT_NANOS) {
        rotate(now);
      }
      recordStart = segmentBytes;
      crc.reset();
      crc.update(c.payload, 0, c.payload.length);
      head.clear();
      head.putInt(c.proto ? Spill.RECORD_MAGIC_PROTO : c.whole ? Spill.RECORD_MAGIC_WHOLE : Spill.RECORD_MAGIC).putInt(nextIndex).putInt(c.count).putInt(c.rawLength)
          .putInt(c.adler).putInt(c.payload.length).putInt((int) crc.getValue()).flip();
      ByteBuffer[] parts = {head, ByteBuffer.wrap(c.payload)};
      while (parts[1].hasRemaining()) {
        long n = channel.write(parts);
        segmentBytes += n;
        segment.wrote(n);
        spill.bytesWritten.addAndGet(n);
      }
      segment.opened();
      if (failing) {
        failing = false;
        retryDelay = Spill.RETRY_FIRST_NANOS;
        spill.recovered();
      }
      return new SpillRecord(segment, nextIndex++);
    } catch (IOException e) {
      spill.failed(e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage(), failing);
      if (failing) retryDelay = Math.min(Spill.RETRY_MAX_NANOS, retryDelay * 2);
      failing = true;
      retryAt = now + retryDelay;
      abandon(recordStart);
      spill.notKept(c.count);
      return null;
    }
  }

  /**
   * After a failed write: cuts what was written of the record off (a partial record would end
   * what the replay reads of the file, with a misleading warning) and seals the segment, so it is
   * deleted once its chunks are settled, even though this writer failed.
   */
  private void abandon(long recordStart) {
    if (channel != null && recordStart >= 0 && segmentBytes > recordStart) {
      try {
        channel.truncate(recordStart);
        segment.wrote(recordStart - segmentBytes);
        segmentBytes = recordStart;
      } catch (IOException ignored) {
        // The replay stops at the cut record: what precedes it is still read.
      }
    }
    seal();
  }

  private void rotate(long now) throws IOException {
    seal();
    Path file = dir.resolve("seg-" + name + "-" + (seq++) + ".spill");
    FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    Segment seg = new Segment(spill, file, 0);
    spill.segments.incrementAndGet();
    try {
      ByteBuffer magic = ByteBuffer.wrap(Spill.FILE_MAGIC);
      while (magic.hasRemaining()) seg.wrote(ch.write(magic));
    } catch (IOException e) {
      // Not even the header fits: the file holds nothing, and goes now.
      try {
        ch.close();
      } catch (IOException ignored) {
        // closing a file we are about to delete
      }
      seg.seal();
      throw e;
    }
    channel = ch;
    segment = seg;
    segmentBytes = Spill.FILE_MAGIC.length;
    segmentStarted = now;
    nextIndex = 0;
  }

  /**
   * Seals the current segment if it is past its age though no chunk came to rotate it, so an idle
   * event loop does not keep settled data on disk. Called by its event loop's periodic timer.
   */
  public void tick() {
    if (segment != null && System.nanoTime() - segmentStarted > Spill.SEGMENT_NANOS) seal();
  }

  /**
   * This writer is done (its event loop's verticle stops): its segment goes once its chunks are
   * settled, and a failure of its own no longer counts against the spill's health.
   */
  public void close() {
    seal();
    if (failing) {
      failing = false;
      spill.writerGone();
    }
  }

  /** Stops writing to the current segment; it goes once its chunks are settled. */
  private void seal() {
    if (channel != null) {
      try {
        channel.close();
      } catch (IOException e) {
        Spill.MARKS_LOG.warn("close", "closing a spill segment: " + e.getMessage());
      }
      channel = null;
    }
    if (segment != null) {
      segment.seal();
      segment = null;
    }
  }
}
