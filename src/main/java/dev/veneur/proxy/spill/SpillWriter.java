package dev.veneur.proxy.spill;

import dev.veneur.proxy.bus.MetricChunk;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Appends the chunks one HTTP event loop accepts to its current spill segment. A write goes to the
 * page cache (tens of microseconds for a request's chunks); the segment rotates by size and age.
 * If the disk fails, spilling stops (one ERROR, {@code spill.errors_total}) and the proxy goes on
 * without it rather than refuse traffic.
 *
 * <p>One per event loop: not thread-safe.
 */
public final class SpillWriter {
  private static final Logger LOG = LoggerFactory.getLogger(SpillWriter.class);

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
  private boolean broken;

  SpillWriter(Spill spill, Path dir, String name) {
    this.spill = spill;
    this.dir = dir;
    this.name = name;
  }

  /** Writes the chunk and returns its record; null if spilling is off after a disk error. */
  public SpillRecord append(MetricChunk c) {
    if (broken) return null;
    try {
      if (segment == null || segmentBytes > Spill.SEGMENT_BYTES
          || System.nanoTime() - segmentStarted > Spill.SEGMENT_NANOS) {
        rotate();
      }
      crc.reset();
      crc.update(c.deflated, 0, c.deflated.length);
      head.clear();
      head.putInt(Spill.RECORD_MAGIC).putInt(nextIndex).putInt(c.count).putInt(c.rawLength)
          .putInt(c.adler).putInt(c.deflated.length).putInt((int) crc.getValue()).flip();
      ByteBuffer[] parts = {head, ByteBuffer.wrap(c.deflated)};
      long n = 0;
      while (parts[1].hasRemaining()) n += channel.write(parts);
      segmentBytes += n;
      spill.bytesWritten.addAndGet(n);
      segment.opened();
      return new SpillRecord(segment, nextIndex++);
    } catch (IOException e) {
      broken = true;
      spill.errors.incrementAndGet();
      LOG.error("spill_dir {}: cannot write ({}); accepted metrics are no longer kept on disk until a restart",
          dir, e.getMessage());
      return null;
    }
  }

  private void rotate() throws IOException {
    close();
    Path file = dir.resolve("seg-" + name + "-" + (seq++) + ".spill");
    channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    ByteBuffer magic = ByteBuffer.wrap(Spill.FILE_MAGIC);
    while (magic.hasRemaining()) channel.write(magic);
    segment = new Segment(file);
    segmentBytes = Spill.FILE_MAGIC.length;
    segmentStarted = System.nanoTime();
    nextIndex = 0;
  }

  /** Stops writing to the current segment; it goes once its chunks are settled. */
  public void close() {
    if (channel != null) {
      try {
        channel.close();
      } catch (IOException e) {
        LOG.warn("closing a spill segment: {}", e.getMessage());
      }
      channel = null;
    }
    if (segment != null) {
      segment.seal();
      segment = null;
    }
  }
}
