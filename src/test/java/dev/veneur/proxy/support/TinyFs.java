package dev.veneur.proxy.support;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * A small file system of its own (a size-capped tmpfs mounted on a directory), so a test can
 * fill a disk for real and get ENOSPC from the kernel, not from a mock. Needs root (or
 * CAP_SYS_ADMIN); where mounting is not permitted the test is skipped with the reason.
 */
public final class TinyFs implements AutoCloseable {
  public final Path dir;
  private Path ballast;

  private TinyFs(Path dir) {
    this.dir = dir;
  }

  public static TinyFs mount(Path dir, String size) throws IOException, InterruptedException {
    Files.createDirectories(dir);
    Process p = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir.toString())
        .redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes()).strip();
    boolean ok = p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    Assumptions.assumeTrue(ok, "skipped: cannot mount a " + size + " tmpfs to fill a disk for real (" + out + ")");
    return new TinyFs(dir);
  }

  /** Bytes still free. */
  public long free() throws IOException {
    return Files.getFileStore(dir).getUsableSpace();
  }

  /** Fills the file system with one file until only about {@code leave} bytes are free. */
  public void fillLeaving(long leave) throws IOException {
    ballast = dir.resolve("ballast");
    byte[] block = new byte[64 * 1024];
    try (OutputStream out = Files.newOutputStream(ballast)) {
      long toWrite = free() - leave;
      while (toWrite > 0) {
        int n = (int) Math.min(block.length, toWrite);
        out.write(block, 0, n);
        toWrite -= n;
      }
    }
  }

  /** Frees what {@link #fillLeaving} took. */
  public void freeBallast() throws IOException {
    if (ballast != null) Files.deleteIfExists(ballast);
  }

  @Override
  public void close() throws IOException, InterruptedException {
    new ProcessBuilder("umount", "-l", dir.toString()).redirectErrorStream(true).start().waitFor(30, TimeUnit.SECONDS);
  }
}
