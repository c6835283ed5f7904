package dev.veneur.proxy.config;

import io.vertx.config.spi.ConfigStore;
import io.vertx.config.spi.ConfigStoreFactory;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The Vert.x Config store for the proxy's files: {@code <name>.yaml}, then {@code <name>-*.yaml},
 * then {@code <name>-*.yml} beside it, each in name order and merged deeply over the ones before
 * (as Vert.x Config's directory store merges, which this replaces). It is Vert.x Config's store
 * SPI, so scanning, change detection and {@code listen} stay the {@link io.vertx.config.ConfigRetriever}'s.
 *
 * <p>What it adds is that a file costs only what a config may cost: each is parsed by
 * {@link BoundedYaml} (size, alias, depth and node bounds), on a worker, and only when it changed.
 * A file whose size, modification time and identity are what the last scan saw, or whose bytes
 * hash the same, is not parsed again; its last result (the JSON, or the reason it was refused) is
 * reused. So a scan every few seconds reads a directory listing and a few stats, and a broken file
 * is not re-parsed (and re-reported) at every scan.
 *
 * <p>Config: {@code path} (the directory), {@code name} (the main file's name).
 */
public final class ConfigFilesStore implements ConfigStore {
  public static final String TYPE = "veneur-proxy-files";
  /** More override files than this is a mistake (a directory of something else), refused. */
  public static final int MAX_FILES = 64;

  /** Parses done, all stores of this process (for tests: a scan of unchanged files parses none). */
  static final AtomicLong PARSES = new AtomicLong();

  private final Vertx vertx;
  private final Path dir;
  private final String mainName;
  private final String base;
  /** Per file: what it looked like and what it gave. Touched on workers, one scan at a time. */
  private final Map<Path, Seen> seen = new HashMap<>();

  private record Seen(long size, long mtimeNanos, Object fileKey, long readAtNanos, byte[] hash,
      JsonObject json, RuntimeException refused) {}

  public ConfigFilesStore(Vertx vertx, JsonObject conf) {
    this.vertx = vertx;
    this.dir = Path.of(conf.getString("path"));
    this.mainName = conf.getString("name");
    this.base = mainName.replaceFirst("\\.ya?ml$", "");
  }

  @Override
  public Future<Buffer> get() {
    // Ordered on the caller's context, so one retriever's scans do not overlap; read() is also
    // synchronized, since a scan and a first getConfig may come from different contexts.
    return vertx.executeBlocking(this::read, true);
  }

  private synchronized Buffer read() throws IOException {
    List<Path> files = files();
    JsonObject merged = new JsonObject();
    Map<Path, Seen> now = new HashMap<>();
    for (Path f : files) {
      Seen s = load(f);
      now.put(f, s);
      if (s.refused != null) {
        seen.clear();
        seen.putAll(now);
        throw s.refused;
      }
      merged.mergeIn(s.json, true);
    }
    seen.clear();
    seen.putAll(now);
    return merged.toBuffer();
  }

  /** The main file (if there) and the override files, in the order they are merged. */
  private List<Path> files() throws IOException {
    List<Path> out = new ArrayList<>();
    Path main = dir.resolve(mainName);
    if (Files.isRegularFile(main)) out.add(main);
    List<Path> yaml = new ArrayList<>();
    List<Path> yml = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, base + "-*.{yaml,yml}")) {
      for (Path p : ds) {
        if (!Files.isRegularFile(p)) continue;
        (p.getFileName().toString().endsWith(".yaml") ? yaml : yml).add(p);
        if (yaml.size() + yml.size() > MAX_FILES) {
          throw new BoundedYaml.Refused("more than " + MAX_FILES + " files named " + base
              + "-*.yaml in " + dir + "; a config is a main file and a few overrides");
        }
      }
    }
    yaml.sort(null);
    yml.sort(null);
    out.addAll(yaml);
    out.addAll(yml);
    return out;
  }

  private Seen load(Path f) throws IOException {
    BasicFileAttributes a;
    try {
      a = Files.readAttributes(f, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      // Gone between the listing and now (being replaced): an empty file this scan; the watcher
      // refuses a missing main file, and the next scan sees the new one.
      return new Seen(-1, 0, null, 0, new byte[0], new JsonObject(), null);
    }
    String name = f.toString();
    if (a.size() > BoundedYaml.MAX_FILE_BYTES) {
      return refused(a, new BoundedYaml.Refused("config file " + name + " is " + a.size()
          + " bytes, over the bound of " + BoundedYaml.MAX_FILE_BYTES + " bytes a config file may have"));
    }
    long mtime = a.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS);
    Seen last = seen.get(f);
    // Same size, time and file: unchanged, unless it was rewritten within the clock tick it was
    // last read in (a file system's times can be that coarse), which is read again to be sure.
    if (last != null && last.size == a.size() && last.mtimeNanos == mtime
        && java.util.Objects.equals(last.fileKey, a.fileKey())
        && last.readAtNanos - mtime > 2_000_000_000L) {
      return last;
    }
    byte[] bytes = readBounded(f);
    byte[] hash = sha256(bytes);
    long readAt = System.currentTimeMillis() * 1_000_000L;
    if (last != null && Arrays.equals(last.hash, hash)) {
      return new Seen(a.size(), mtime, a.fileKey(), readAt, hash, last.json, last.refused);
    }
    PARSES.incrementAndGet();
    try {
      return new Seen(a.size(), mtime, a.fileKey(), readAt, hash, BoundedYaml.parse(name, bytes), null);
    } catch (BoundedYaml.Refused e) {
      return new Seen(a.size(), mtime, a.fileKey(), readAt, hash, null, e);
    }
  }

  private static Seen refused(BasicFileAttributes a, RuntimeException e) {
    return new Seen(a.size(), 0, null, 0, new byte[0], null, e);
  }

  /** Reads at most one byte past the bound, whatever the file grew to since its stat. */
  private static byte[] readBounded(Path f) throws IOException {
    try (InputStream in = Files.newInputStream(f)) {
      byte[] b = in.readNBytes(BoundedYaml.MAX_FILE_BYTES + 1);
      if (b.length > BoundedYaml.MAX_FILE_BYTES) {
        throw new BoundedYaml.Refused("config file " + f + " is over the bound of "
            + BoundedYaml.MAX_FILE_BYTES + " bytes a config file may have");
      }
      return b;
    } catch (NoSuchFileException e) {
      return new byte[0];
    }
  }

  private static byte[] sha256(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public Future<Void> close() {
    return Future.succeededFuture();
  }

  /** Found by Vert.x Config through {@code META-INF/services}. */
  public static final class Factory implements ConfigStoreFactory {
    @Override
    public String name() {
      return TYPE;
    }

    @Override
    public ConfigStore create(Vertx vertx, JsonObject configuration) {
      return new ConfigFilesStore(vertx, configuration);
    }
  }
}
