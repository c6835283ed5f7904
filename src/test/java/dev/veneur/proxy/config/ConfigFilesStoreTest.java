package dev.veneur.proxy.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The store under the config retriever: what it merges, and that an unchanged file is not parsed again. */
@ExtendWith(VertxExtension.class)
class ConfigFilesStoreTest {
  @TempDir Path dir;

  private ConfigFilesStore store(Vertx vertx) {
    return new ConfigFilesStore(vertx, new JsonObject().put("path", dir.toString()).put("name", "proxy.yaml"));
  }

  /** Written with a modification time well in the past, as a file left alone for a while is. */
  private Path write(String name, String text) throws Exception {
    Path f = dir.resolve(name);
    Files.writeString(f, text);
    Files.setLastModifiedTime(f, FileTime.from(Instant.now().minusSeconds(60)));
    return f;
  }

  @Test
  void overridesMergeInNameOrderAndOtherFilesAreNotRead(Vertx vertx) throws Exception {
    write("proxy.yaml", "a: 1\nb: 1\nnested: {x: 1, y: 1}\n");
    write("proxy-20-late.yaml", "b: 3\n");
    write("proxy-10-early.yaml", "b: 2\nnested: {y: 2}\n");
    write("proxy-30-last.yml", "c: 4\n");
    write("veneur.yaml", "a: 99\n");
    JsonObject j = new JsonObject(store(vertx).get().await());
    assertEquals(new JsonObject().put("a", 1).put("b", 3).put("c", 4)
        .put("nested", new JsonObject().put("x", 1).put("y", 2)), j);
  }

  @Test
  void anUnchangedFileIsNotParsedAgainAndAChangedOneIs(Vertx vertx) throws Exception {
    Path main = write("proxy.yaml", "a: 1\n");
    write("proxy-10-x.yaml", "b: 2\n");
    ConfigFilesStore s = store(vertx);
    long before = ConfigFilesStore.PARSES.get();
    s.get().await();
    assertEquals(before + 2, ConfigFilesStore.PARSES.get(), "first scan parses both");
    for (int i = 0; i < 5; i++) s.get().await();
    assertEquals(before + 2, ConfigFilesStore.PARSES.get(), "unchanged scans parse nothing");
    // Rewritten with the same bytes (a config manager re-rendering it): read, hashed, not parsed.
    Files.writeString(main, "a: 1\n");
    s.get().await();
    assertEquals(before + 2, ConfigFilesStore.PARSES.get(), "same bytes, not parsed");
    Files.writeString(main, "a: 5\n");
    assertEquals(5, new JsonObject(s.get().await()).getInteger("a"));
    assertEquals(before + 3, ConfigFilesStore.PARSES.get(), "the changed file alone is parsed");
  }

  /**
   * A Kubernetes ConfigMap volume: the files are links into {@code ..data}, itself a link to a
   * timestamped directory, and an update swaps {@code ..data} for a new directory in one rename.
   * The swap changes no name the proxy lists, only what they lead to: it must be seen.
   */
  @Test
  void aConfigMapVolumeUpdatedBySwappingItsDataLinkIsSeen(Vertx vertx) throws Exception {
    Path v1 = Files.createDirectory(dir.resolve("..2026_12_06_08_00_00.1"));
    Files.writeString(v1.resolve("proxy.yaml"), "a: 1\n");
    Files.writeString(v1.resolve("proxy-10-site.yaml"), "b: 1\n");
    Files.createSymbolicLink(dir.resolve("..data"), v1.getFileName());
    Files.createSymbolicLink(dir.resolve("proxy.yaml"), Path.of("..data/proxy.yaml"));
    Files.createSymbolicLink(dir.resolve("proxy-10-site.yaml"), Path.of("..data/proxy-10-site.yaml"));
    ConfigFilesStore s = store(vertx);
    assertEquals(new JsonObject().put("a", 1).put("b", 1), new JsonObject(s.get().await()));

    Path v2 = Files.createDirectory(dir.resolve("..2026_12_06_08_05_00.2"));
    Files.writeString(v2.resolve("proxy.yaml"), "a: 2\n");
    Files.writeString(v2.resolve("proxy-10-site.yaml"), "b: 1\n");
    Files.createSymbolicLink(dir.resolve("..data_tmp"), v2.getFileName());
    Files.move(dir.resolve("..data_tmp"), dir.resolve("..data"), java.nio.file.StandardCopyOption.ATOMIC_MOVE,
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    assertEquals(new JsonObject().put("a", 2).put("b", 1), new JsonObject(s.get().await()), "the swap is a change");
  }

  @Test
  void aBrokenFileIsRefusedAtEveryScanButParsedOnce(Vertx vertx) throws Exception {
    write("proxy.yaml", "a: 1\n");
    write("proxy-10-bomb.yaml", BoundedYamlTest.aliasBomb(16, 3));
    ConfigFilesStore s = store(vertx);
    long before = ConfigFilesStore.PARSES.get();
    for (int i = 0; i < 3; i++) {
      Throwable e = s.get().map(b -> (Throwable) null).recover(io.vertx.core.Future::succeededFuture).await();
      assertTrue(e instanceof BoundedYaml.Refused && e.getMessage().contains("proxy-10-bomb.yaml"), String.valueOf(e));
    }
    assertEquals(before + 2, ConfigFilesStore.PARSES.get(), "the bomb parsed once, not at every scan");
  }

  @Test
  void anOversizedFileIsRefusedWithoutBeingRead(Vertx vertx) throws Exception {
    write("proxy.yaml", "a: 1\n");
    Path big = dir.resolve("proxy-10-big.yaml");
    try (var ch = java.nio.channels.FileChannel.open(big, java.nio.file.StandardOpenOption.CREATE_NEW,
        java.nio.file.StandardOpenOption.WRITE)) {
      // A sparse 100 MB file: its size alone refuses it.
      ch.write(java.nio.ByteBuffer.wrap(new byte[] {'\n'}), 100L << 20);
    }
    long before = ConfigFilesStore.PARSES.get();
    Throwable e = store(vertx).get().map(b -> (Throwable) null).recover(io.vertx.core.Future::succeededFuture).await();
    assertTrue(e instanceof BoundedYaml.Refused && e.getMessage().contains("proxy-10-big.yaml is 104857601 bytes, over the bound of 262144"),
        String.valueOf(e));
    assertEquals(before + 1, ConfigFilesStore.PARSES.get(), "only the main file was parsed");
  }

  @Test
  void tooManyOverrideFilesAreRefused(Vertx vertx) throws Exception {
    write("proxy.yaml", "a: 1\n");
    for (int i = 0; i <= ConfigFilesStore.MAX_FILES; i++) write("proxy-" + i + ".yaml", "b: " + i + "\n");
    Throwable e = store(vertx).get().map(b -> (Throwable) null).recover(io.vertx.core.Future::succeededFuture).await();
    assertTrue(e instanceof BoundedYaml.Refused && e.getMessage().contains("more than 64 files"), String.valueOf(e));
  }
}
