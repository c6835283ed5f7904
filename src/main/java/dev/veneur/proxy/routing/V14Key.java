package dev.veneur.proxy.routing;

import dev.veneur.proxy.config.IgnoreTags;
import dev.veneur.proxy.wire.MetricPb;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;

/**
 * Where the v14.2.0 proxy puts a gRPC metric on its ring: the key is
 * {@code name + lowercase(type name) + join(tags, ",")} without the tags {@link IgnoreTags}
 * matches, hashed with CRC-32 (IEEE) as {@link HashRing#hashKey} hashes v2's key. Read from the
 * metric's bytes: without ignore rules no string is built.
 */
public final class V14Key {
  private V14Key() {}

  private static final byte[][] TYPE_BYTES = {
      "counter".getBytes(StandardCharsets.US_ASCII), "gauge".getBytes(StandardCharsets.US_ASCII),
      "histogram".getBytes(StandardCharsets.US_ASCII), "set".getBytes(StandardCharsets.US_ASCII),
      "timer".getBytes(StandardCharsets.US_ASCII)};

  /** The key's hash for a metric {@link MetricPb#scan scanned} valid from {@code b}. */
  public static int hash(byte[] b, MetricPb.Fields f, IgnoreTags ignore, CRC32 crc) {
    crc.reset();
    crc.update(b, f.nameOff, f.nameLen);
    byte[] t = TYPE_BYTES[f.type];
    crc.update(t, 0, t.length);
    boolean first = true;
    for (int i = 0; i < f.tags; i++) {
      if (!ignore.isEmpty() && ignore.ignored(f.tag(b, i))) continue;
      if (!first) crc.update(',');
      crc.update(b, f.tagOff[i], f.tagLen[i]);
      first = false;
    }
    return (int) crc.getValue();
  }

  /** The key as a string, for logs and tests. */
  public static String key(String name, String typeName, java.util.List<String> tags, IgnoreTags ignore) {
    StringBuilder sb = new StringBuilder(name).append(typeName);
    boolean first = true;
    for (String tag : tags) {
      if (ignore.ignored(tag)) continue;
      if (!first) sb.append(',');
      sb.append(tag);
      first = false;
    }
    return sb.toString();
  }
}
