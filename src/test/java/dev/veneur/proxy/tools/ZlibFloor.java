package dev.veneur.proxy.tools;

import io.vertx.core.buffer.Buffer;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.List;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

/**
 * The zlib floor of the bench's payload: the CPU that inflating each body and deflating its JSON
 * again at level 1 costs, and nothing else (no parsing, no routing, no sockets). A proxy that
 * takes zlib bodies and sends zlib bodies made with the JDK's zlib cannot go below it; the ratio
 * of the proxy's CPU to this floor is what its own work costs on top.
 *
 * <p>Measured on one thread of the bench JVM with its CPU clock ({@link ThreadMXBean}), after a
 * warm-up, before any proxy runs (the machine is otherwise as quiet as the bench leaves it).
 */
final class ZlibFloor {
  private ZlibFloor() {}

  /** CPU-seconds per million metrics to inflate and re-deflate {@code zlibBodies} of {@code perBody} metrics each. */
  static double cpuPerM(List<Buffer> zlibBodies, int perBody, double warmupSeconds, double seconds) {
    ThreadMXBean mx = ManagementFactory.getThreadMXBean();
    Inflater inflater = new Inflater();
    Deflater deflater = new Deflater(1, true);
    byte[][] in = new byte[zlibBodies.size()][];
    for (int i = 0; i < in.length; i++) in[i] = zlibBodies.get(i).getBytes();
    byte[] json = new byte[1 << 20];
    byte[] out = new byte[1 << 20];
    try {
      long sink = 0;
      long warmEnd = System.nanoTime() + (long) (warmupSeconds * 1e9);
      int i = 0;
      while (System.nanoTime() < warmEnd) sink += once(in[i++ % in.length], inflater, deflater, json, out);
      long cpu0 = mx.getCurrentThreadCpuTime();
      long end = System.nanoTime() + (long) (seconds * 1e9);
      long bodies = 0;
      while (System.nanoTime() < end) {
        sink += once(in[i++ % in.length], inflater, deflater, json, out);
        bodies++;
      }
      long cpu = mx.getCurrentThreadCpuTime() - cpu0;
      if (sink == 42) System.out.print(""); // keeps the work observable
      return cpu / 1e9 / (bodies * (double) perBody / 1e6);
    } finally {
      inflater.end();
      deflater.end();
    }
  }

  /** Inflates one zlib body and deflates its JSON at level 1, sync-flushed as the proxy's chunks are. */
  private static int once(byte[] body, Inflater inflater, Deflater deflater, byte[] json, byte[] out) {
    inflater.reset();
    inflater.setInput(body);
    int n;
    try {
      n = inflater.inflate(json);
    } catch (DataFormatException e) {
      throw new IllegalStateException("a bench body is not zlib", e);
    }
    if (!inflater.finished()) throw new IllegalStateException("a bench body inflates past 1 MiB");
    deflater.reset();
    deflater.setInput(json, 0, n);
    int k = 0;
    while (true) {
      int m = deflater.deflate(out, k, out.length - k, Deflater.SYNC_FLUSH);
      k += m;
      if (deflater.needsInput() && k < out.length) return k;
      if (k == out.length) throw new IllegalStateException("a bench body deflates past 1 MiB");
    }
  }
}
