package dev.veneur.proxy.telemetry;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.text.ParseException;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code enable_profiling: true}: a Java Flight Recorder recording (the JDK's "profile" settings,
 * about 1-2% overhead) runs from start-up, keeping at most the last hour or
 * {@link #MAX_RECORDING_BYTES}. It is dumped to {@code profiling_dir} on demand
 * ({@code POST /debug/profile} on the admin listener) and at shutdown. Open a dump with JDK Mission
 * Control, or {@code jfr print --events jdk.ExecutionSample file.jfr}.
 *
 * <p>What protects it: on-demand dumps run one at a time and at most one per
 * {@code profiling_min_interval} (otherwise {@link Refused}, answered 429); a dump holds at most
 * the recording's size, and only the newest {@link #KEEP_DUMPS} dumps are kept, so the disk it
 * takes is bounded; files are written {@code 0600} in a directory created {@code 0700}; and the
 * events that copy the process's environment, system properties, command line or other
 * processes' command lines (where tokens such as {@code CONSUL_HTTP_TOKEN} live) are off.
 */
public final class Profiler {
  private static final Logger LOG = LoggerFactory.getLogger(Profiler.class);
  private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss-SSS");
  /** The recording's cap on disk, and so of each dump. */
  public static final long MAX_RECORDING_BYTES = 64L << 20;
  public static final Duration MAX_AGE = Duration.ofHours(1);
  /** Dumps kept in {@code profiling_dir}; older ones of ours are deleted after each new dump. */
  public static final int KEEP_DUMPS = 5;
  /**
   * Events that would put secrets in a dump: the environment (CONSUL_HTTP_TOKEN), system
   * properties and the JVM's command line (-D...), and the host's process list with command lines.
   */
  public static final List<String> SECRET_EVENTS = List.of("jdk.InitialEnvironmentVariable",
      "jdk.InitialSystemProperty", "jdk.JVMInformation", "jdk.SystemProcess");
  private static final Set<PosixFilePermission> OWNER_RW = PosixFilePermissions.fromString("rw-------");
  private static final Set<PosixFilePermission> OWNER_RWX = PosixFilePermissions.fromString("rwx------");

  /** An on-demand dump not made, with the reason (one line) and when to ask again. */
  public static final class Refused extends Exception {
    public final long retryAfterSeconds;

    Refused(String reason, long retryAfterSeconds) {
      super(reason);
      this.retryAfterSeconds = retryAfterSeconds;
    }
  }

  private final Recording recording;
  private final Path dir;
  private final AtomicBoolean dumping = new AtomicBoolean();
  /** When the last on-demand dump started; a long way back at first. */
  private volatile long lastOnDemandNanos = System.nanoTime() - Duration.ofDays(1).toNanos();

  private Profiler(Recording recording, Path dir) {
    this.recording = recording;
    this.dir = dir;
  }

  /** Blocking (reads the JDK's settings file, starts a disk-backed recording): not on an event loop. */
  public static Profiler start(String dir) {
    OffLoop.check("Profiler.start");
    try {
      Recording r = new Recording(settings());
      r.setName("veneur-proxy");
      r.setToDisk(true);
      r.setMaxAge(MAX_AGE);
      r.setMaxSize(MAX_RECORDING_BYTES);
      r.start();
      LOG.info("profiling on: JFR recording running (at most {} MiB, {}), dumps go to {}",
          MAX_RECORDING_BYTES >> 20, MAX_AGE, Path.of(dir).toAbsolutePath());
      return new Profiler(r, Path.of(dir));
    } catch (IOException | ParseException e) {
      throw new IllegalStateException("cannot start the JFR recording: " + e.getMessage(), e);
    }
  }

  /** The JDK's "profile" settings without the events that copy secrets. */
  static Map<String, String> settings() throws IOException, ParseException {
    Map<String, String> s = new HashMap<>(Configuration.getConfiguration("profile").getSettings());
    for (String e : SECRET_EVENTS) s.put(e + "#enabled", "false");
    return s;
  }

  /**
   * An on-demand dump: refused while another is being written, or within {@code minInterval} of
   * the last one. Blocking (file I/O).
   */
  public Path dumpOnDemand(Duration minInterval) throws IOException, Refused {
    if (!dumping.compareAndSet(false, true)) {
      throw new Refused("a profile dump is being written already; one at a time", 1);
    }
    try {
      long since = System.nanoTime() - lastOnDemandNanos;
      if (since < minInterval.toNanos()) {
        long wait = Math.max(1, (minInterval.toNanos() - since + 999_999_999L) / 1_000_000_000L);
        throw new Refused("the last profile dump was " + since / 1_000_000_000L + "s ago; at most one per "
            + "profiling_min_interval (" + minInterval.toSeconds() + "s): retry in " + wait + "s", wait);
      }
      lastOnDemandNanos = System.nanoTime();
      return dump("ondemand");
    } finally {
      dumping.set(false);
    }
  }

  /** Writes what has been recorded so far to a new file (0600); blocking (file I/O). */
  public synchronized Path dump(String why) throws IOException {
    OffLoop.check("Profiler.dump");
    if (!Files.isDirectory(dir)) {
      try {
        Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(OWNER_RWX));
      } catch (UnsupportedOperationException e) {
        Files.createDirectories(dir);
      }
    }
    String name = "veneur-proxy-" + why + "-" + LocalDateTime.now().format(STAMP) + ".jfr";
    Path part = dir.resolve(name + ".part");
    Path file = dir.resolve(name);
    Files.deleteIfExists(part);
    try {
      Files.createFile(part, PosixFilePermissions.asFileAttribute(OWNER_RW));
    } catch (UnsupportedOperationException e) {
      Files.createFile(part);
    }
    try {
      recording.dump(part);
      ownerOnly(part);
      Files.move(part, file, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(part);
    }
    LOG.info("JFR recording dumped to {} ({} KiB)", file.toAbsolutePath(), Files.size(file) >> 10);
    prune();
    return file;
  }

  private static void ownerOnly(Path f) throws IOException {
    try {
      Files.setPosixFilePermissions(f, OWNER_RW);
    } catch (UnsupportedOperationException e) {
      // not a POSIX file system: nothing to narrow
    }
  }

  /** Keeps the newest {@link #KEEP_DUMPS} of our dumps in the directory. */
  private void prune() {
    List<Path> ours = new ArrayList<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "veneur-proxy-*.jfr")) {
      for (Path f : files) ours.add(f);
    } catch (IOException e) {
      LOG.warn("could not list {} to remove old dumps: {}", dir, e.toString());
      return;
    }
    if (ours.size() <= KEEP_DUMPS) return;
    ours.sort((a, b) -> modified(b).compareTo(modified(a)));
    for (Path old : ours.subList(KEEP_DUMPS, ours.size())) {
      try {
        Files.deleteIfExists(old);
      } catch (IOException e) {
        LOG.warn("could not remove the old dump {}: {}", old, e.toString());
      }
    }
  }

  private static FileTime modified(Path f) {
    try {
      return Files.getLastModifiedTime(f);
    } catch (IOException e) {
      return FileTime.fromMillis(0);
    }
  }

  /** Dumps at shutdown and closes the recording; blocking (file I/O): not on an event loop. */
  public synchronized void stop() {
    try {
      dump("shutdown");
    } catch (IOException e) {
      LOG.error("could not dump the JFR recording at shutdown: {}", e.getMessage());
    }
    recording.close();
  }
}
