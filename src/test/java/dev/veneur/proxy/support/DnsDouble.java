package dev.veneur.proxy.support;

import java.io.ByteArrayOutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A DNS server on 127.0.0.1 (UDP, a port of its own), answering as an authoritative server does
 * from records the test sets: A, AAAA and SRV, with their TTLs; a name it has no records for is
 * {@code NXDOMAIN}. It can be told to answer {@code SERVFAIL}, {@code NXDOMAIN} or nothing at all.
 * Reads the question of each query and ignores the rest (EDNS options, additional records).
 */
public final class DnsDouble implements AutoCloseable {
  public enum Mode { ANSWER, SERVFAIL, NXDOMAIN, SILENT }

  static final int A = 1;
  static final int AAAA = 28;
  static final int SRV = 33;

  /** One record: for A/AAAA the address, for SRV port and target. */
  public record Rec(int type, String address, int port, String target, long ttl) {
    public static Rec a(String address, long ttl) {
      return new Rec(A, address, 0, null, ttl);
    }

    public static Rec aaaa(String address, long ttl) {
      return new Rec(AAAA, address, 0, null, ttl);
    }

    public static Rec srv(int port, String target, long ttl) {
      return new Rec(SRV, null, port, target, ttl);
    }
  }

  private final DatagramSocket socket;
  private final Thread thread;
  private final Map<String, List<Rec>> records = new ConcurrentHashMap<>();
  public final AtomicReference<Mode> mode = new AtomicReference<>(Mode.ANSWER);
  public final AtomicInteger queries = new AtomicInteger();
  /** Queries per name and type, e.g. {@code veneur.test/SRV}. */
  public final Map<String, AtomicInteger> asked = new ConcurrentHashMap<>();

  private DnsDouble() throws java.io.IOException {
    socket = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    thread = new Thread(this::serve, "dns-double");
    thread.setDaemon(true);
    thread.start();
  }

  public static DnsDouble start() {
    try {
      return new DnsDouble();
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** {@code host:port} for {@code dns_servers}. */
  public String address() {
    return "127.0.0.1:" + socket.getLocalPort();
  }

  /** The records of {@code name} from now on (none: NXDOMAIN). */
  public void set(String name, Rec... recs) {
    if (recs.length == 0) records.remove(key(name));
    else records.put(key(name), List.of(recs));
  }

  public int asked(String name, String type) {
    AtomicInteger n = asked.get(key(name) + "/" + type);
    return n == null ? 0 : n.get();
  }

  private static String key(String name) {
    String n = name.toLowerCase(Locale.ROOT);
    return n.endsWith(".") ? n.substring(0, n.length() - 1) : n;
  }

  private void serve() {
    byte[] buf = new byte[4096];
    while (!socket.isClosed()) {
      DatagramPacket p = new DatagramPacket(buf, buf.length);
      try {
        socket.receive(p);
        byte[] reply = answer(ByteBuffer.wrap(p.getData(), 0, p.getLength()));
        if (reply != null) socket.send(new DatagramPacket(reply, reply.length, p.getSocketAddress()));
      } catch (java.io.IOException e) {
        if (socket.isClosed()) return;
      } catch (RuntimeException e) {
        // A query this double cannot read: no answer, as a server drops garbage.
      }
    }
  }

  private byte[] answer(ByteBuffer q) {
    queries.incrementAndGet();
    int id = q.getShort() & 0xffff;
    int flags = q.getShort() & 0xffff;
    q.getShort(); // qdcount (1)
    q.position(12);
    int qStart = q.position();
    StringBuilder name = new StringBuilder();
    int len;
    while ((len = q.get() & 0xff) != 0) {
      byte[] label = new byte[len];
      q.get(label);
      if (name.length() > 0) name.append('.');
      name.append(new String(label, StandardCharsets.US_ASCII));
    }
    int qtype = q.getShort() & 0xffff;
    q.getShort(); // class
    int qEnd = q.position();
    String n = key(name.toString());
    String typeName = qtype == A ? "A" : qtype == AAAA ? "AAAA" : qtype == SRV ? "SRV" : String.valueOf(qtype);
    asked.computeIfAbsent(n + "/" + typeName, k -> new AtomicInteger()).incrementAndGet();
    Mode m = mode.get();
    if (m == Mode.SILENT) return null;
    List<Rec> recs = records.get(n);
    int rcode = m == Mode.SERVFAIL ? 2 : m == Mode.NXDOMAIN || recs == null ? 3 : 0;
    List<Rec> matching = new ArrayList<>();
    if (rcode == 0) for (Rec r : recs) if (r.type() == qtype) matching.add(r);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    short16(out, id);
    // QR, opcode 0, AA, RD as asked, RA, rcode.
    short16(out, 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode);
    short16(out, 1);
    short16(out, matching.size());
    short16(out, 0);
    short16(out, 0);
    out.write(q.array(), q.arrayOffset() + qStart, qEnd - qStart);
    for (Rec r : matching) {
      short16(out, 0xC00C); // the question's name
      short16(out, r.type());
      short16(out, 1);
      int ttl = (int) r.ttl();
      short16(out, ttl >>> 16);
      short16(out, ttl & 0xffff);
      byte[] rdata = rdata(r);
      short16(out, rdata.length);
      out.write(rdata, 0, rdata.length);
    }
    return out.toByteArray();
  }

  private static byte[] rdata(Rec r) {
    try {
      if (r.type() == A || r.type() == AAAA) return InetAddress.getByName(r.address()).getAddress();
    } catch (java.net.UnknownHostException e) {
      throw new IllegalArgumentException(r.address());
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    short16(out, 0); // priority
    short16(out, 1); // weight
    short16(out, r.port());
    for (String label : r.target().split("\\.")) {
      if (label.isEmpty()) continue;
      byte[] b = label.getBytes(StandardCharsets.US_ASCII);
      out.write(b.length);
      out.write(b, 0, b.length);
    }
    out.write(0);
    return out.toByteArray();
  }

  private static void short16(ByteArrayOutputStream out, int v) {
    out.write((v >>> 8) & 0xff);
    out.write(v & 0xff);
  }

  @Override
  public void close() {
    socket.close();
  }
}
