package dev.veneur.proxy.spill;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One spill file: the chunks accepted while it was current ({@code <name>.spill}), and beside it
 * the indexes of those since settled ({@code <name>.done}). Once it is no longer written to and
 * every chunk in it is settled, both files go. What a crash leaves behind is exactly what was
 * accepted and not yet settled.
 *
 * <p>Appends to the data file come from one HTTP event loop; settle marks from any forwarder, so
 * those are synchronized.
 */
final class Segment {
  private static final Logger LOG = LoggerFactory.getLogger(Segment.class);

  final Path data;
  final Path done;
  private final AtomicInteger open = new AtomicInteger();
  private volatile boolean sealed;
  private FileChannel doneChannel;
  private final ByteBuffer mark = ByteBuffer.allocate(4);
  private boolean deleted;

  Segment(Path data) {
    this.data = data;
    this.done = data.resolveSibling(data.getFileName().toString().replaceFirst("\\.spill$", ".done"));
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
      while (mark.hasRemaining()) doneChannel.write(mark);
    } catch (IOException e) {
      // A lost mark only means the chunk is sent again after a crash.
      LOG.warn("could not mark a spilled chunk settled in {}: {}", done, e.getMessage());
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
    } catch (IOException e) {
      LOG.warn("could not delete settled spill file {}: {}", data, e.getMessage());
    }
  }

  int unsettled() {
    return open.get();
  }
}
