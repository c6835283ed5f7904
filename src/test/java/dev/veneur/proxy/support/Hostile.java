package dev.veneur.proxy.support;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.IntFunction;
import java.util.function.Predicate;

/**
 * Raw-socket attackers (and burst senders) on plain NIO, so the bytes on the wire are exactly the
 * ones written here: no HTTP library decides framing, buffering or timeouts.
 *
 * <p>One selector thread drives every connection. Each connection follows a {@link Plan}: bytes
 * to write once connected, then optionally one more piece every period (a trickled body byte, a
 * header byte, a chunk of an endless chunked body) until the server answers. Each connection
 * records what came back: the status line and headers, when the answer's head arrived, whether
 * and when the server closed the connection (FIN or RST), or that it never answered.
 *
 * <p>Writes never block: a piece is only added once the previous one left, so a server that stops
 * reading (TCP pushback) slows the attacker down instead of piling bytes up in the test.
 */
public final class Hostile implements AutoCloseable {

  /** What one connection sends and how long the test waits on it. */
  public static final class Plan {
    final String kind;
    final byte[] first;
    final IntFunction<byte[]> drip;
    final long dripPeriodNanos;
    long lifetimeNanos = Duration.ofSeconds(30).toNanos();
    long closeGraceNanos = Duration.ofSeconds(2).toNanos();
    boolean gated;

    private Plan(String kind, byte[] first, IntFunction<byte[]> drip, Duration period) {
      this.kind = kind;
      this.first = first;
      this.drip = drip;
      this.dripPeriodNanos = period == null ? 0 : period.toNanos();
    }

    /** A complete request (headers and body), written as fast as the server reads it. */
    public static Plan request(String kind, byte[] wholeRequest) {
      return new Plan(kind, wholeRequest, null, null);
    }

    /** {@code first}, then {@code drip.apply(i)} every {@code period} (null = nothing more). */
    public static Plan dripping(String kind, byte[] first, IntFunction<byte[]> drip, Duration period) {
      return new Plan(kind, first, drip, period);
    }

    /**
     * {@code POST /import} declaring {@code declared} bytes of identity JSON, then one body byte
     * (whitespace after a '[') every {@code period}.
     */
    public static Plan trickleBody(String kind, long declared, Duration period) {
      byte[] head = ascii("POST /import HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
          + "Content-Length: " + declared + "\r\n\r\n[");
      return new Plan(kind, head, i -> i + 2 <= declared ? new byte[] {' '} : null, period);
    }

    /**
     * {@code POST /import} with {@code Transfer-Encoding: chunked}: a JSON array of metrics (names
     * {@code flood.<n>}) sent as one {@code chunkBytes} chunk every {@code period}, never the last
     * chunk and never the closing ']'.
     */
    public static Plan endlessChunked(String kind, int chunkBytes, Duration period) {
      byte[] head = ascii("POST /import HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
          + "Transfer-Encoding: chunked\r\n\r\n");
      byte[] chunk = chunk(metricsText("flood", chunkBytes, true));
      byte[] later = chunk(metricsText("flood", chunkBytes, false));
      return new Plan(kind, head, i -> i == 0 ? chunk : later, period);
    }

    /**
     * Headers one byte every {@code period}: a request line, then a header whose value never
     * ends. The server never sees the end of the headers.
     */
    public static Plan slowHeaders(String kind, Duration period) {
      byte[] start = ascii("POST /import HTTP/1.1\r\nHost: proxy\r\nX-Slow: ");
      return new Plan(kind, new byte[0], i -> new byte[] {i < start.length ? start[i] : (byte) 'a'}, period);
    }

    /** How long after its request started the test waits for an answer before giving up. */
    public Plan lifetime(Duration d) {
      lifetimeNanos = d.toNanos();
      return this;
    }

    /** How long after the answer the test waits for the server to close the connection. */
    public Plan closeGrace(Duration d) {
      closeGraceNanos = d.toNanos();
      return this;
    }

    /** Connect, but write nothing until {@link Hostile#release} (for bursts). */
    public Plan gated() {
      gated = true;
      return this;
    }

    public String kind() {
      return kind;
    }
  }

  /** One TCP connection and everything observed on it. Fields are written by the selector thread. */
  public static final class Conn {
    public final Plan plan;
    public final int slot;
    public final long createdNanos = System.nanoTime();
    public volatile long connectedNanos = -1;
    /** When the first byte of the request was handed to the socket. */
    public volatile long sendStartNanos = -1;
    /** When the answer's status line and headers had all arrived. */
    public volatile long answeredNanos = -1;
    public volatile long endNanos = -1;
    public volatile int status = -1;
    public volatile String statusLine;
    public volatile Map<String, String> headers = Map.of();
    public volatile String body = "";
    /** The server closed the connection (FIN or RST), as opposed to the test closing it. */
    public volatile boolean serverClosed;
    public volatile String closeHow = "";
    /** How the connection ended, in words. */
    public volatile String end = "";
    public volatile long bytesSent;
    public volatile boolean writeFailed;
    public final CompletableFuture<Conn> done = new CompletableFuture<>();

    SocketChannel ch;
    ByteBuffer out;
    int piece;
    long nextDripNanos;
    boolean dripsDone;
    boolean released;
    final ByteArrayOutputStream head = new ByteArrayOutputStream();
    boolean headDone;
    long bodyRemaining = -1;
    final StringBuilder bodyText = new StringBuilder();
    long closeDeadlineNanos = -1;
    boolean finished;

    Conn(Plan plan, int slot) {
      this.plan = plan;
      this.slot = slot;
    }

    public boolean answered() {
      return status >= 0;
    }

    public boolean finished() {
      return done.isDone();
    }

    /** Milliseconds from the first request byte to the answer's head, or -1. */
    public long answerMs() {
      if (answeredNanos < 0) return -1;
      long from = sendStartNanos >= 0 ? sendStartNanos : createdNanos;
      return (answeredNanos - from) / 1_000_000;
    }

    /** Milliseconds from the answer to the server's close, or -1 if the server did not close. */
    public long closeAfterAnswerMs() {
      if (!serverClosed || answeredNanos < 0) return -1;
      return (endNanos - answeredNanos) / 1_000_000;
    }

    public String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    /** A short label for tallies, e.g. {@code 408+closed}, {@code 202}, {@code no-answer:...}. */
    public String outcome() {
      if (!answered()) {
        return end.startsWith("connect") ? "connect-failed" : "no-answer(" + shortEnd() + ")";
      }
      String s = String.valueOf(status);
      if (status == 503) s += header("Retry-After") != null ? "+retry-after" : "+NO-retry-after";
      if (status >= 400) s += serverClosed ? "+closed" : "+kept-open";
      return s;
    }

    private String shortEnd() {
      if (end.startsWith("server closed")) return "server closed it: " + closeHow;
      if (end.startsWith("no answer")) return "still open at the deadline";
      if (end.startsWith("test stopped")) return "cut by the test";
      return end;
    }

    /** Everything observed, on one line. */
    public String describe() {
      StringBuilder b = new StringBuilder(plan.kind).append('#').append(slot).append(": ");
      if (answered()) {
        b.append('"').append(statusLine).append("\" after ").append(answerMs()).append(" ms");
        if (!body.isEmpty()) b.append(", body \"").append(body.strip().replace("\n", "\\n")).append('"');
        b.append(serverClosed ? ", server closed " + closeAfterAnswerMs() + " ms later (" + closeHow + ")"
            : ", connection left open by the server");
      } else {
        b.append("no answer; ").append(end);
      }
      b.append("; ").append(bytesSent).append(" bytes sent");
      return b.toString();
    }
  }

  private final InetSocketAddress target;
  private final Selector selector;
  private final Thread thread;
  private final ConcurrentLinkedQueue<Runnable> commands = new ConcurrentLinkedQueue<>();
  private final List<Conn> all = new CopyOnWriteArrayList<>();
  private final List<Conn> active = new ArrayList<>();
  private final ByteBuffer readBuf = ByteBuffer.allocateDirect(64 * 1024);
  private volatile boolean running = true;
  private volatile boolean sustaining = true;

  public Hostile(int port) throws IOException {
    this.target = new InetSocketAddress("127.0.0.1", port);
    this.selector = Selector.open();
    this.thread = new Thread(this::loop, "hostile-selector");
    thread.setDaemon(true);
    thread.start();
  }

  /** Where each slot's connections come from (a 127/8 address), or null: the system's choice. */
  private volatile IntFunction<String> sourceFor;

  /**
   * Binds each slot's connections to {@code sourceFor.apply(slot)} (e.g. 127.1.0.7: all of 127/8 is
   * loopback), so one test can stand for many hosts, or an attacker apart from the senders.
   */
  public Hostile from(IntFunction<String> sourceFor) {
    this.sourceFor = sourceFor;
    return this;
  }

  /** Opens one connection following {@code plan}. */
  public Conn open(Plan plan) {
    return open(plan, 0);
  }

  /** Opens one connection following {@code plan}, labelled {@code slot} in reports. */
  public Conn open(Plan plan, int slot) {
    Conn c = new Conn(plan, slot);
    all.add(c);
    submit(() -> connect(c));
    return c;
  }

  /**
   * Keeps {@code slots} connections following {@code plan} open: when one ends, another replaces
   * it, until {@code untilNanos} or {@link #stopSustaining}, and at most {@code perSlot} per slot
   * (0 = no limit). The first ones open after {@code delay}.
   */
  public void sustain(int slots, Plan plan, long untilNanos, int perSlot, Duration delay) {
    long startAt = System.nanoTime() + delay.toNanos();
    for (int s = 0; s < slots; s++) {
      int slot = s;
      int[] opened = {0};
      Runnable[] next = new Runnable[1];
      next[0] = () -> {
        if (!sustaining || System.nanoTime() >= untilNanos || (perSlot > 0 && opened[0] >= perSlot)) return;
        opened[0]++;
        Conn c = open(plan, slot);
        c.done.thenRun(next[0]);
      };
      if (delay.isZero()) {
        next[0].run();
      } else {
        Thread t = new Thread(() -> {
          long wait;
          while ((wait = startAt - System.nanoTime()) > 0) java.util.concurrent.locks.LockSupport.parkNanos(wait);
          next[0].run();
        }, "hostile-delay");
        t.setDaemon(true);
        t.start();
      }
    }
  }

  public void stopSustaining() {
    sustaining = false;
  }

  /** Lets gated connections write their request (all in one pass of the selector thread). */
  public void release(Collection<Conn> conns) {
    List<Conn> list = List.copyOf(conns);
    submit(() -> {
      for (Conn c : list) {
        c.released = true;
        if (!c.finished && c.connectedNanos >= 0) startSending(c);
      }
    });
  }

  /** Every connection opened so far. */
  public List<Conn> all() {
    return List.copyOf(all);
  }

  public List<Conn> ofKind(String kind) {
    return all.stream().filter(c -> c.plan.kind.equals(kind)).toList();
  }

  /** Waits (polling) until every connection opened so far has ended, or {@code max} passes. */
  public boolean awaitAllEnded(Duration max) {
    long deadline = System.nanoTime() + max.toNanos();
    while (System.nanoTime() < deadline) {
      if (all.stream().allMatch(Conn::finished)) return true;
      java.util.concurrent.locks.LockSupport.parkNanos(20_000_000L);
    }
    return all.stream().allMatch(Conn::finished);
  }

  @Override
  public void close() {
    if (!running) return;
    sustaining = false;
    CompletableFuture<Void> closed = new CompletableFuture<>();
    submit(() -> {
      for (Conn c : List.copyOf(active)) finish(c, "test stopped: closed by the test while still running");
      closed.complete(null);
    });
    try {
      closed.get(10, java.util.concurrent.TimeUnit.SECONDS);
    } catch (Exception e) {
      // fall through: the thread is a daemon and the selector is closed below
    }
    running = false;
    selector.wakeup();
    try {
      thread.join(5000);
      selector.close();
    } catch (Exception e) {
      // best effort
    }
  }

  private void submit(Runnable r) {
    commands.add(r);
    selector.wakeup();
  }

  // ---- selector thread ----

  private void loop() {
    try {
      while (running) {
        Runnable r;
        while ((r = commands.poll()) != null) r.run();
        selector.select(5);
        var it = selector.selectedKeys().iterator();
        while (it.hasNext()) {
          SelectionKey k = it.next();
          it.remove();
          Conn c = (Conn) k.attachment();
          if (c.finished || !k.isValid()) continue;
          try {
            if (k.isConnectable()) onConnectable(c);
            if (!c.finished && k.isValid() && k.isReadable()) onReadable(c);
            if (!c.finished && k.isValid() && k.isWritable()) flush(c);
          } catch (java.nio.channels.CancelledKeyException e) {
            // closed meanwhile
          }
        }
        tick(System.nanoTime());
      }
    } catch (Throwable t) {
      // Surface harness bugs instead of hanging the test.
      for (Conn c : List.copyOf(active)) finish(c, "test harness failed: " + t);
      t.printStackTrace();
    }
  }

  private void connect(Conn c) {
    active.add(c);
    try {
      SocketChannel ch = SocketChannel.open();
      c.ch = ch;
      ch.configureBlocking(false);
      ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
      IntFunction<String> src = sourceFor;
      if (src != null) ch.bind(new InetSocketAddress(src.apply(c.slot), 0));
      if (ch.connect(target)) {
        ch.register(selector, SelectionKey.OP_READ, c);
        connected(c);
      } else {
        ch.register(selector, SelectionKey.OP_CONNECT, c);
      }
    } catch (IOException e) {
      finish(c, "connect failed: " + e);
    }
  }

  private void onConnectable(Conn c) {
    try {
      if (c.ch.finishConnect()) {
        c.ch.keyFor(selector).interestOps(SelectionKey.OP_READ);
        connected(c);
      }
    } catch (IOException e) {
      finish(c, "connect failed: " + e);
    }
  }

  private void connected(Conn c) {
    c.connectedNanos = System.nanoTime();
    if (!c.plan.gated || c.released) startSending(c);
  }

  private void startSending(Conn c) {
    if (c.sendStartNanos >= 0) return;
    c.sendStartNanos = System.nanoTime();
    c.nextDripNanos = c.sendStartNanos + c.plan.dripPeriodNanos;
    if (c.plan.first.length > 0) send(c, c.plan.first);
    else if (c.plan.drip != null) drip(c, c.sendStartNanos);
  }

  private void send(Conn c, byte[] data) {
    if (c.writeFailed || c.answered()) return;
    if (c.out != null && c.out.hasRemaining()) {
      ByteBuffer merged = ByteBuffer.allocate(c.out.remaining() + data.length);
      merged.put(c.out).put(data).flip();
      c.out = merged;
    } else {
      c.out = ByteBuffer.wrap(data);
    }
    flush(c);
  }

  private void flush(Conn c) {
    if (c.out == null) return;
    try {
      while (c.out.hasRemaining()) {
        int n = c.ch.write(c.out);
        if (n == 0) break;
        c.bytesSent += n;
      }
    } catch (IOException e) {
      // The server closed or reset; what it answered may still be readable.
      c.writeFailed = true;
      c.out = null;
    }
    SelectionKey k = c.ch.keyFor(selector);
    if (k != null && k.isValid()) {
      k.interestOps(c.out != null && c.out.hasRemaining()
          ? SelectionKey.OP_READ | SelectionKey.OP_WRITE : SelectionKey.OP_READ);
    }
  }

  private void drip(Conn c, long now) {
    if (c.dripsDone || c.writeFailed || c.answered()) return;
    if (c.out != null && c.out.hasRemaining()) {
      // The server is not reading: skip this tick rather than queue more.
      c.nextDripNanos = now + c.plan.dripPeriodNanos;
      return;
    }
    byte[] piece = c.plan.drip.apply(c.piece++);
    if (piece == null) {
      c.dripsDone = true;
      return;
    }
    send(c, piece);
    c.nextDripNanos = Math.max(c.nextDripNanos + c.plan.dripPeriodNanos, now);
  }

  private void tick(long now) {
    for (Conn c : List.copyOf(active)) {
      if (c.finished) continue;
      if (c.connectedNanos < 0) {
        if (now - c.createdNanos > 10_000_000_000L) finish(c, "connect failed: not connected within 10 s");
        continue;
      }
      if (c.sendStartNanos < 0) continue; // gated, waiting for release
      if (c.plan.drip != null && now >= c.nextDripNanos) drip(c, now);
      if (c.closeDeadlineNanos >= 0 && now >= c.closeDeadlineNanos) {
        finish(c, c.headDone && c.bodyRemaining == 0 && c.plan.closeGraceNanos == 0
            ? "answered; closed by the test" : "answered; the server left the connection open; closed by the test");
      } else if (c.answered() && c.closeDeadlineNanos < 0 && now - c.answeredNanos > c.plan.lifetimeNanos) {
        finish(c, "answered, but the answer's body never completed; closed by the test");
      } else if (!c.answered() && now - c.sendStartNanos > c.plan.lifetimeNanos) {
        finish(c, "no answer " + c.plan.lifetimeNanos / 1_000_000 + " ms after the request began"
            + " (connection still open; closed by the test)");
      }
    }
  }

  private void onReadable(Conn c) {
    readBuf.clear();
    int n;
    try {
      n = c.ch.read(readBuf);
    } catch (IOException e) {
      serverClosed(c, "reset (" + e.getMessage() + ")");
      return;
    }
    if (n < 0) {
      serverClosed(c, "FIN");
      return;
    }
    readBuf.flip();
    byte[] bytes = new byte[n];
    readBuf.get(bytes);
    if (!c.headDone) {
      c.head.write(bytes, 0, n);
      byte[] h = c.head.toByteArray();
      int endOfHead = indexOf(h, HEAD_END);
      if (endOfHead < 0) {
        if (c.status < 0 && h.length > 0) {
          // First bytes of an answer: stop sending (the server has made up its mind).
          c.out = null;
          c.dripsDone = true;
        }
        if (h.length > 64 * 1024) finish(c, "answer head longer than 64 KiB");
        return;
      }
      parseHead(c, new String(h, 0, endOfHead, StandardCharsets.ISO_8859_1));
      bytes = java.util.Arrays.copyOfRange(h, endOfHead + 4, h.length);
    }
    int len = bytes.length;
    if (len > 0 && c.bodyText.length() < 2048) {
      c.bodyText.append(new String(bytes, 0, Math.min(len, 2048 - c.bodyText.length()), StandardCharsets.UTF_8));
      c.body = c.bodyText.toString();
    }
    if (c.bodyRemaining > 0) c.bodyRemaining = Math.max(0, c.bodyRemaining - len);
    if (c.bodyRemaining == 0 && c.closeDeadlineNanos < 0) {
      c.closeDeadlineNanos = System.nanoTime() + c.plan.closeGraceNanos;
      if (c.plan.closeGraceNanos == 0) finish(c, "answered; closed by the test");
    }
  }

  private void parseHead(Conn c, String head) {
    String[] lines = head.split("\r\n");
    Map<String, String> hs = new HashMap<>();
    for (int i = 1; i < lines.length; i++) {
      int colon = lines[i].indexOf(':');
      if (colon > 0) hs.put(lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT), lines[i].substring(colon + 1).trim());
    }
    c.headers = hs;
    c.statusLine = lines[0];
    String[] parts = lines[0].split(" ", 3);
    int status = 0;
    try {
      status = Integer.parseInt(parts[1]);
    } catch (RuntimeException e) {
      status = 0; // not HTTP: recorded as status 0 with the line kept
    }
    c.answeredNanos = System.nanoTime();
    c.status = status;
    c.headDone = true;
    c.out = null;
    c.dripsDone = true;
    String cl = hs.get("content-length");
    c.bodyRemaining = cl != null ? Long.parseLong(cl.trim()) : -1;
    if (c.bodyRemaining < 0) {
      // Length unknown: the answer ends at the close; still bound the wait.
      c.closeDeadlineNanos = c.answeredNanos + Math.max(c.plan.closeGraceNanos, 1_000_000_000L);
    }
    SelectionKey k = c.ch.keyFor(selector);
    if (k != null && k.isValid()) k.interestOps(SelectionKey.OP_READ);
  }

  private void serverClosed(Conn c, String how) {
    c.serverClosed = true;
    c.closeHow = how;
    finish(c, "server closed the connection (" + how + ")" + (c.answered() ? " after answering" : " without answering"));
  }

  private void finish(Conn c, String end) {
    if (c.finished) return;
    c.finished = true;
    c.end = end;
    c.endNanos = System.nanoTime();
    c.out = null;
    active.remove(c);
    if (c.ch != null) {
      try {
        c.ch.close();
      } catch (IOException e) {
        // closing anyway
      }
    }
    c.done.complete(c);
  }

  private static final byte[] HEAD_END = {'\r', '\n', '\r', '\n'};

  private static int indexOf(byte[] h, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= h.length; i++) {
      for (int j = 0; j < needle.length; j++) if (h[i + j] != needle[j]) continue outer;
      return i;
    }
    return -1;
  }

  // ---- request building ----

  public static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }

  /** {@code POST /import} with a Content-Length and, if not null, a Content-Encoding. */
  public static byte[] postImport(byte[] body, String contentEncoding) {
    String head = "POST /import HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
        + (contentEncoding != null ? "Content-Encoding: " + contentEncoding + "\r\n" : "")
        + "Content-Length: " + body.length + "\r\n\r\n";
    byte[] h = ascii(head);
    byte[] all = java.util.Arrays.copyOf(h, h.length + body.length);
    System.arraycopy(body, 0, all, h.length, body.length);
    return all;
  }

  /** One chunk of a chunked body: hex size, CRLF, data, CRLF. */
  public static byte[] chunk(byte[] data) {
    byte[] size = ascii(Integer.toHexString(data.length) + "\r\n");
    ByteArrayOutputStream b = new ByteArrayOutputStream(data.length + size.length + 2);
    b.writeBytes(size);
    b.writeBytes(data);
    b.writeBytes(ascii("\r\n"));
    return b.toByteArray();
  }

  /** About {@code bytes} of JSON metrics text, starting with '[' if {@code opening}, each followed by ','. */
  static byte[] metricsText(String prefix, int bytes, boolean opening) {
    StringBuilder b = new StringBuilder(bytes + 100);
    if (opening) b.append('[');
    int i = 0;
    while (b.length() < bytes) {
      b.append("{\"name\":\"").append(prefix).append('.').append(i++ % 1000)
          .append("\",\"type\":\"counter\",\"value\":\"AQAAAAAAAAA=\"},");
    }
    return ascii(b.toString());
  }

  // ---- reporting ----

  /** Outcome label -> count, sorted by label, e.g. {@code {408+closed=380, no-answer(...)=20}}. */
  public static Map<String, Integer> tally(Collection<Conn> conns) {
    Map<String, Integer> t = new TreeMap<>();
    for (Conn c : conns) t.merge(c.outcome(), 1, Integer::sum);
    return t;
  }

  /** Up to {@code max} descriptions of the connections matching {@code bad}. */
  public static List<String> examples(Collection<Conn> conns, Predicate<Conn> bad, int max) {
    return conns.stream().filter(bad).limit(max).map(Conn::describe).toList();
  }

  /** Kind -> connections, in first-seen order. */
  public static Map<String, List<Conn>> byKind(Collection<Conn> conns) {
    Map<String, List<Conn>> m = new LinkedHashMap<>();
    for (Conn c : conns) m.computeIfAbsent(c.plan.kind, k -> new ArrayList<>()).add(c);
    return m;
  }
}
