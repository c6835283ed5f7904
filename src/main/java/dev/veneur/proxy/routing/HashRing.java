package dev.veneur.proxy.routing;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

/**
 * An immutable consistent-hash ring that places keys exactly as {@code stathat.com/c/consistent}
 * does in veneur-proxy v2, so that swapping the Go proxy for this one moves no series between
 * globals: CRC-32 (IEEE) of the key, 20 virtual nodes per member hashed from the decimal replica
 * index followed by the member string, and a key goes to the first virtual node whose hash is
 * strictly greater than its own, wrapping to the first.
 *
 * <p>Only the ring verticle builds these; importers route against the snapshot they last received,
 * which is why the class has no mutators.
 */
public final class HashRing {
  public static final int REPLICAS = 20;
  private static final HashRing EMPTY = new HashRing(List.of());
  /** Tags the ring's keys leave out (v14's {@code ignore_tags}, for a ring of gRPC globals). */
  private final dev.veneur.proxy.config.IgnoreTags keyIgnore;

  /**
   * The members, as an array the hot path reads ({@link #size}, {@link #member}, {@link #owner}),
   * and {@link #members} a read-only view of it, one class at every size. They were a {@code
   * List.copyOf}, which is one class for 1-2 members and another for 3 or more: a ring that
   * shrank from 3 to 2 (a global ejected) changed the receiver class under every compiled caller
   * of {@code members.size()} or {@code get}, and C2 threw away and recompiled the ingest path
   * (uncommon traps, {@code class_check}, in {@code Ingester.start} and {@code finish}, {@code
   * Handover.hand}, {@code ImportTask.passesThrough}: seen with {@code -XX:+LogCompilation} at
   * each ejection of a saturated global, 2026-12-07).
   */
  private final String[] memberArray;
  private final List<String> members;
  /** Virtual-node hashes, as unsigned values, ascending. */
  private final long[] points;
  /** For each point, the index of its member in {@link #members}. */
  private final int[] owners;

  private HashRing(List<String> ordered) {
    this(ordered, m -> m, dev.veneur.proxy.config.IgnoreTags.NONE);
  }

  private HashRing(List<String> ordered, java.util.function.UnaryOperator<String> hashName,
      dev.veneur.proxy.config.IgnoreTags keyIgnore) {
    this.keyIgnore = keyIgnore;
    // On a hash collision the member added last wins, as in the Go map-backed circle.
    Map<Long, Integer> circle = new HashMap<>();
    for (int m = 0; m < ordered.size(); m++) {
      for (int i = 0; i < REPLICAS; i++) {
        circle.put(crc(i + hashName.apply(ordered.get(m))), m);
      }
    }
    long[] pts = new long[circle.size()];
    int n = 0;
    for (Long p : circle.keySet()) pts[n++] = p;
    Arrays.sort(pts);
    int[] own = new int[pts.length];
    for (int i = 0; i < pts.length; i++) own[i] = circle.get(pts[i]);
    this.memberArray = ordered.toArray(new String[0]);
    this.members = java.util.Collections.unmodifiableList(Arrays.asList(memberArray));
    this.points = pts;
    this.owners = own;
  }

  /** A ring over the given members; duplicates collapse to their first occurrence. */
  public static HashRing of(List<String> members) {
    if (members.isEmpty()) return EMPTY;
    return new HashRing(List.copyOf(new LinkedHashSet<>(members)));
  }

  /**
   * A ring whose members are hashed by another name than the one they are reached by: Veneur
   * v14.2.0 names a Consul-discovered global {@code host:port} where v2 named it
   * {@code http://host:port}, and the name is what the ring hashes. Its keys leave out
   * {@code keyIgnore}'s tags.
   */
  public static HashRing of(List<String> members, java.util.function.UnaryOperator<String> hashName,
      dev.veneur.proxy.config.IgnoreTags keyIgnore) {
    if (members.isEmpty()) return EMPTY;
    return new HashRing(List.copyOf(new LinkedHashSet<>(members)), hashName, keyIgnore);
  }

  /** Tags this ring's keys leave out; {@link dev.veneur.proxy.config.IgnoreTags#NONE} for v2 keys. */
  public dev.veneur.proxy.config.IgnoreTags keyIgnore() {
    return keyIgnore;
  }

  public static HashRing empty() {
    return EMPTY;
  }

  public List<String> members() {
    return members;
  }

  public int size() {
    return memberArray.length;
  }

  public boolean isEmpty() {
    return memberArray.length == 0;
  }

  /** {@code members().get(index)}, read from the array. */
  public String member(int index) {
    return memberArray[index];
  }

  /**
   * Index into {@link #members()} of the owner of a key hash, or -1 on an empty ring.
   *
   * @param keyHash CRC-32 of the key, as returned by {@link #hashKey}
   */
  public int ownerIndex(int keyHash) {
    if (points.length == 0) return -1;
    long h = keyHash & 0xffffffffL;
    int lo = 0;
    int hi = points.length;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (points[mid] > h) hi = mid;
      else lo = mid + 1;
    }
    return owners[lo == points.length ? 0 : lo];
  }

  /** The destination of a key hash, or null on an empty ring. */
  public String owner(int keyHash) {
    int i = ownerIndex(keyHash);
    return i < 0 ? null : memberArray[i];
  }

  /** The destination of {@code name + type + tagstring}, or null on an empty ring. */
  public String route(String name, String type, String tagstring) {
    return owner(hashKey(name + type + tagstring));
  }

  public static int hashKey(String key) {
    return (int) crc(key);
  }

  private static long crc(String s) {
    CRC32 c = new CRC32();
    c.update(s.getBytes(StandardCharsets.UTF_8));
    return c.getValue();
  }

  @Override
  public String toString() {
    return "HashRing" + members;
  }
}
