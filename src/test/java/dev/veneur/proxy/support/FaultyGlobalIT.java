package dev.veneur.proxy.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.FaultyGlobal.Mode;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The double misbehaves exactly as the fault tests assume, seen from a raw socket: each mode's
 * bytes on the wire (or their absence), and every body recorded before the misbehaviour.
 */
@ExtendWith(VertxExtension.class)
class FaultyGlobalIT {
  private static final byte[] BODY = Bodies.deflate(LoadSenders.json(7, 3));

  private static Socket post(FaultyGlobal g, String path) throws Exception {
    Socket s = new Socket("127.0.0.1", g.port());
    s.setSoTimeout(3000);
    OutputStream out = s.getOutputStream();
    out.write(("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Encoding: deflate\r\nContent-Length: "
        + BODY.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
    out.write(BODY);
    out.flush();
    return s;
  }

  /** Reads up to the end of the headers. */
  private static String head(InputStream in) throws Exception {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    while (true) {
      int c = in.read();
      if (c < 0) throw new AssertionError("closed before the end of the headers: " + b);
      b.write(c);
      String s = b.toString(StandardCharsets.US_ASCII);
      if (s.endsWith("\r\n\r\n")) return s;
    }
  }

  private static void assertRecorded(FaultyGlobal g, FaultyGlobal.NameCounts names) {
    Await.until("the body is recorded", () -> g.metricsReceived.get() == LoadSenders.METRICS_PER_BODY);
    assertEquals(1, names.count(Ledger.name(7, 3, 0, "web.requests.global.793")));
  }

  @Test
  void healthyAnswers202AndConfirms(Vertx vertx) throws Exception {
    FaultyGlobal.NameCounts names = new FaultyGlobal.NameCounts();
    Ledger confirmed = new Ledger();
    FaultyGlobal g = FaultyGlobal.start(vertx, Mode.HEALTHY, names, confirmed);
    try (Socket s = post(g, "/import")) {
      assertTrue(head(s.getInputStream()).startsWith("HTTP/1.1 202"));
      assertRecorded(g, names);
      Await.until("confirmed", () -> confirmed.total.get() == LoadSenders.METRICS_PER_BODY);
      assertEquals(1, confirmed.count(7, 3, 999));
    }
  }

  @Test
  void slowAnswersAfterTheDelay(Vertx vertx) throws Exception {
    FaultyGlobal g = FaultyGlobal.start(vertx, Mode.SLOW);
    g.slowMs = 400;
    try (Socket s = post(g, "/import")) {
      long t0 = System.nanoTime();
      assertTrue(head(s.getInputStream()).startsWith("HTTP/1.1 202"));
      assertTrue(System.nanoTime() - t0 > Duration.ofMillis(300).toNanos(), "answered late");
      // Confirmed once the answer is written, which may be just after the client read it.
      Await.until("confirmed", () -> g.metricsConfirmed.get() == LoadSenders.METRICS_PER_BODY);
    }
  }

  @Test
  void slowAnswerAbandonedByTheClientIsNotConfirmed(Vertx vertx) throws Exception {
    FaultyGlobal g = FaultyGlobal.start(vertx, Mode.SLOW);
    g.slowMs = 500;
    try (Socket s = post(g, "/import")) {
      Await.until("received", () -> g.metricsReceived.get() == LoadSenders.METRICS_PER_BODY);
    }
    Await.until("abandoned", () -> g.abandoned.get() == 1);
    Thread.sleep(700); // past the answer's due time: it must not count as confirmed
    assertEquals(0, g.metricsConfirmed.get());
  }

  @Test
  void trickleSendsHeadersThenOneByteAtATime(Vertx vertx) throws Exception {
    FaultyGlobal.NameCounts names = new FaultyGlobal.NameCounts();
    FaultyGlobal g = FaultyGlobal.start(vertx, Mode.TRICKLE, names, null);
    g.trickleMs = 200;
    try (Socket s = post(g, "/import")) {
      InputStream in = s.getInputStream();
      String h = head(in);
      assertTrue(h.startsWith("HTTP/1.1 202") && h.toLowerCase().contains("content-length: " + FaultyGlobal.TRICKLE_LENGTH), h);
      long t0 = System.nanoTime();
      int got = 0;
      while (System.nanoTime() - t0 < Duration.ofMillis(900).toNanos()) {
        if (in.read() >= 0) got++;
      }
      assertTrue(got >= 2 && got <= 6, "about one byte per 200 ms, got " + got + " in 900 ms");
      assertRecorded(g, names);
      // Its status line said 202: it took the batch, however long the body takes.
      assertEquals(LoadSenders.METRICS_PER_BODY, g.metricsConfirmed.get());
    }
  }

  @Test
  void endlessKeepsSendingChunks(Vertx vertx) throws Exception {
    FaultyGlobal.NameCounts names = new FaultyGlobal.NameCounts();
    FaultyGlobal g = FaultyGlobal.start(vertx, Mode.ENDLESS, names, null);
    try (Socket s = post(g, "/import")) {
      InputStream in = s.getInputStream();
      String h = head(in);
      assertTrue(h.startsWith("HTTP/1.1 202") && h.toLowerCase().contains("transfer-encoding: chunked"), h);
      long total = 0;
      byte[] buf = new byte[65536];
      long t0 = System.nanoTime();
      while (total < 1_000_000) {
        int n = in.read(buf);
        assertTrue(n > 0, "the body never ends");
        total += n;
      }
      assertTrue(System.nanoTime() - t0 < Duration.ofSeconds(3).toNanos(), "1 MB within 3 s");
      assertRecorded(g, names);
    }
  }

  @Test
  void hangReadsButNeverAnswers(Vertx vertx) throws Exception {
    FaultyGlobal.NameCounts names = new FaultyGlobal.NameCounts();
    FaultyGlobal g = FaultyGlobal.start(vertx, Mode.HANG, names, null);
    try (Socket s = post(g, "/import")) {
      s.setSoTimeout(800);
      assertThrows(SocketTimeoutException.class, () -> s.getInputStream().read());
      assertRecorded(g, names);
      assertEquals(1, g.unanswered.get());
    }
  }

  @Test
  void resetClosesWithRst(Vertx vertx) throws Exception {
    FaultyGlobal.NameCounts names = new FaultyGlobal.NameCounts();
    FaultyGlobal g = FaultyGlobal.start(vertx, Mode.RESET, names, null);
    try (Socket s = post(g, "/import")) {
      SocketException e = assertThrows(SocketException.class, () -> {
        // The first read may see the reset, or EOF if the RST raced it; a read after EOF must
        // not be reached: with SO_LINGER 0 the peer sees a reset, not an orderly close.
        int c = s.getInputStream().read();
        throw new AssertionError("expected a connection reset, read " + c);
      });
      assertTrue(String.valueOf(e.getMessage()).toLowerCase().contains("reset"), e.toString());
      assertRecorded(g, names);
    }
  }
}
