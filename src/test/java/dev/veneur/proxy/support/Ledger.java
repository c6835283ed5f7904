package dev.veneur.proxy.support;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * How many times one global saw each metric a {@link LoadSenders} run sent, kept compactly: the
 * names are {@code s<sender>.b<body>.m<index>.<fixture name>}, so a count lives in an array slot
 * per body instead of a map entry per name (a load test sends over a million names).
 */
public final class Ledger implements FaultyGlobal.Recorder {
  private final ConcurrentHashMap<Long, AtomicIntegerArray> bodies = new ConcurrentHashMap<>();
  /** Names that do not follow the pattern: never sent by the senders. */
  public final AtomicLong foreign = new AtomicLong();
  public final AtomicReference<String> firstForeign = new AtomicReference<>();
  public final AtomicLong total = new AtomicLong();

  public static long bodyKey(int sender, int seq) {
    return ((long) sender << 32) | (seq & 0xffffffffL);
  }

  /** The name of metric {@code index} of body {@code seq} from {@code sender}. */
  public static String name(int sender, int seq, int index, String fixtureName) {
    return "s" + sender + ".b" + seq + ".m" + index + "." + fixtureName;
  }

  @Override
  public void metric(String name) {
    total.incrementAndGet();
    int p = 0;
    int sender = -1;
    int seq = -1;
    int index = -1;
    try {
      if (name.charAt(p++) != 's') throw new IllegalArgumentException();
      int dot = name.indexOf('.', p);
      sender = Integer.parseInt(name, p, dot, 10);
      p = dot + 1;
      if (name.charAt(p++) != 'b') throw new IllegalArgumentException();
      dot = name.indexOf('.', p);
      seq = Integer.parseInt(name, p, dot, 10);
      p = dot + 1;
      if (name.charAt(p++) != 'm') throw new IllegalArgumentException();
      dot = name.indexOf('.', p);
      index = Integer.parseInt(name, p, dot, 10);
    } catch (RuntimeException e) {
      index = -1;
    }
    if (index < 0 || index >= LoadSenders.METRICS_PER_BODY || sender < 0 || seq < 0) {
      foreign.incrementAndGet();
      firstForeign.compareAndSet(null, name);
      return;
    }
    bodies.computeIfAbsent(bodyKey(sender, seq), k -> new AtomicIntegerArray(LoadSenders.METRICS_PER_BODY))
        .incrementAndGet(index);
  }

  public int count(int sender, int seq, int index) {
    AtomicIntegerArray a = bodies.get(bodyKey(sender, seq));
    return a == null ? 0 : a.get(index);
  }

  /** How many metrics of this body were seen at all (each copy counted). */
  public long bodyTotal(int sender, int seq) {
    AtomicIntegerArray a = bodies.get(bodyKey(sender, seq));
    if (a == null) return 0;
    long n = 0;
    for (int i = 0; i < a.length(); i++) n += a.get(i);
    return n;
  }
}
