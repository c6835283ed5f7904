package dev.veneur.proxy.spill;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One spill file: the chunks accepted while it was current ({@code <name>.spill}), and beside it
 * the indexes of those since settled ({@code <name>.done}). Once it is no longer written to and
 * every chunk in it is settled, both files go. What a crash leaves behind is exactly what was
 * accepted and not yet settled.
 *
 * <p>Appends to the data file come from one HTTP event loop; settle marks from any forwarder, so
 * those are synchronized. Its bytes on disk are counted in its {@link Spill} (when it has one), so
 * {@code spill.bytes_on_disk} follows the files without listing the directory.
 */
final class Segment {
  final Path data;
  final Path done;
  /** The spill it is counted in; null for a file read by a test without one. */
  private final Spill owner;
  private final AtomicInteger open = new AtomicInteger();
  private volatile boolean sealed;
  private FileChannel doneChannel;
  private final ByteBuffer mark = ByteBuffer.allocate(4);
  private boolean deleted;
  /** Bytes of both files counted in {@code owner}, given back when they are deleted. */
  private long bytes;

  Segment(Spill owner, Path data, long bytesOnDisk) {
    this.owner = owner;
    this.data = data;
    this.done = data.resolveSibling(data.getFileName().toString().replaceFirst("\\.spill$", ".done"));
    this.bytes = bytesOnDisk;
  }

  /** {@code n} bytes were appended to the data file (negative: cut back). */
  synchronized void wrote(long n) {
    bytes += n;
    if (owner != null) owner.bytesOnDisk.addAndGet(n);
  }

  /** A chunk was written here and is not settled yet. */
  void opened() {
    open.incrementAndGet();
  }

  /** No more chunks will be written here. */
  void seal() {
    sealed = true;
    maybeDelete();
  }

  boolean sealed() {
    return sealed;
  }

  /** Chunk {@code index} of this segment is settled (delivered, or dropped for good). */
  synchronized void settled(int index) {
    if (deleted) return;
    try {
      if (doneChannel == null) {
        doneChannel = FileChannel.open(done, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.APPEND);
      }
      mark.clear();
      mark.putInt(index).flip();
      while (mark.hasRemaining()) wrote(doneChannel.write(mark));
    } catch (IOException e) {
      // A lost mark only means the chunk is sent again after a crash. On a full disk every settle
      // fails: one line per period, not one per chunk.
      Spill.MARKS_LOG.warn("mark", "could not mark a spilled chunk settled in " + done + " (" + e.getMessage()
          + "); after a crash it would be sent again");
    }
    open.decrementAndGet();
    maybeDelete();
  }

  private synchronized void maybeDelete() {
    if (deleted || !sealed || open.get() > 0) return;
    deleted = true;
    try {
      if (doneChannel != null) doneChannel.close();
      Files.deleteIfExists(data);
      Files.deleteIfExists(done);
      if (owner != null) {
        owner.bytesOnDisk.addAndGet(-bytes);
        owner.segments.decrementAndGet();
      }
      bytes = 0;
    } catch (IOException e) {
      Spill.MARKS_LOG.warn("delete", "could not delete settled spill file " + data + ": " + e.getMessage());
    }
  }

  int unsettled() {
    return open.get();
  }
}
