package dev.veneur.proxy.telemetry;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.ParseException;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code enable_profiling: true}: a Java Flight Recorder recording (the JDK's "profile" settings,
 * about 1-2% overhead) runs from start-up, keeping the last hour or 256 MiB on disk. It is dumped
 * to {@code profiling_dir} on demand ({@code POST /debug/profile}) and at shutdown. Open a dump
 * with JDK Mission Control, or {@code jfr print --events jdk.ExecutionSample file.jfr}.
 */
public final class Profiler {
  private static final Logger LOG = LoggerFactory.getLogger(Profiler.class);
  private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss-SSS");

  private final Recording recording;
  private final Path dir;

  private Profiler(Recording recording, Path dir) {
    this.recording = recording;
    this.dir = dir;
  }

  /** Blocking (reads the JDK's settings file, starts a disk-backed recording): not on an event loop. */
  public static Profiler start(String dir) {
    OffLoop.check("Profiler.start");
    try {
      Recording r = new Recording(Configuration.getConfiguration("profile"));
      r.setName("veneur-proxy");
      r.setToDisk(true);
      r.setMaxAge(Duration.ofHours(1));
      r.setMaxSize(256L << 20);
      r.start();
      LOG.info("profiling on: JFR recording running, dumps go to {}", Path.of(dir).toAbsolutePath());
      return new Profiler(r, Path.of(dir));
    } catch (IOException | ParseException e) {
      throw new IllegalStateException("cannot start the JFR recording: " + e.getMessage(), e);
    }
  }

  /** Writes what has been recorded so far to a new file; blocking (file I/O). */
  public synchronized Path dump(String why) throws IOException {
    OffLoop.check("Profiler.dump");
    Files.createDirectories(dir);
    Path file = dir.resolve("veneur-proxy-" + why + "-" + LocalDateTime.now().format(STAMP) + ".jfr");
    recording.dump(file);
    LOG.info("JFR recording dumped to {}", file.toAbsolutePath());
    return file;
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
