package dev.veneur.proxy.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Fields of /proc/&lt;pid&gt;/status (Linux), in KiB. */
public final class ProcStatus {
  private ProcStatus() {}

  /** {@code field} (e.g. {@code VmHWM}, peak resident set; {@code VmRSS}, current), or -1 if unreadable. */
  public static long kib(long pid, String field) {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
        if (l.startsWith(field + ":")) return Long.parseLong(l.replaceAll("[^0-9]", ""));
      }
    } catch (IOException | RuntimeException e) {
      return -1;
    }
    return -1;
  }

  /** Peak resident set size of the process so far, in KiB (-1 once it is gone). */
  public static long peakRssKib(long pid) {
    return kib(pid, "VmHWM");
  }
}
