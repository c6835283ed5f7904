package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.Bodies;
import dev.veneur.proxy.support.TestGlobal;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.telemetry.ProxyMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Slow senders and too many connections are bounded, over raw sockets. */
@ExtendWith(VertxExtension.class)
class SenderLimitsTest {

  @Test
  void aBodyThatTricklesIsCutOffWith408(Vertx vertx) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("http_request_timeout", "300ms"));
    try (Socket s = new Socket("127.0.0.1", proxy.port)) {
      OutputStream out = s.getOutputStream();
      // Promise 1000 bytes, send 10, then go quiet.
      out.write(("POST /import HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[{\"name\":").getBytes(StandardCharsets.US_ASCII));
      out.flush();
      s.setSoTimeout(20_000);
      String answer = new String(s.getInputStream().readNBytes(12), StandardCharsets.US_ASCII);
      assertEquals("HTTP/1.1 408", answer);
      assertEquals(1, proxy.metrics().count(ProxyMetrics.IMPORT_ERRORS, "cause", "slow_body"));
      assertEquals(202, proxy.post(Bodies.utf8(Bodies.generate("ok", 5, 1).encode()), null).statusCode());
    } finally {
      proxy.stop();
    }
  }

  @Test
  void connectionsPastTheCapAreClosed(Vertx vertx) throws Exception {
    TestGlobal global = TestGlobal.start(vertx);
    TestProxy proxy = TestProxy.start(vertx, new JsonObject()
        .put("forward_address", global.url())
        .put("http_max_connections", 3));
    List<Socket> held = new ArrayList<>();
    try {
      // Keep-alive connections, each having made one request.
      for (int i = 0; i < 3; i++) {
        Socket s = new Socket("127.0.0.1", proxy.port);
        held.add(s);
        s.setSoTimeout(20_000);
        s.getOutputStream().write(HEALTHCHECK);
        assertEquals("HTTP/1.1 200", new String(s.getInputStream().readNBytes(12), StandardCharsets.US_ASCII));
      }
      Await.until("three connections counted", () -> gauge(proxy) == 3);
      try (Socket extra = new Socket("127.0.0.1", proxy.port)) {
        extra.setSoTimeout(20_000);
        extra.getOutputStream().write(HEALTHCHECK);
        InputStream in = extra.getInputStream();
        assertEquals(-1, in.read(), "the connection past the cap is closed without an answer");
      }
      assertTrue(proxy.metrics().count(ProxyMetrics.IMPORT_ERRORS, "cause", "too_many_connections") >= 1);
      for (Socket s : held) s.close();
      Await.until("slots freed", () -> gauge(proxy) == 0);
      assertEquals(202, proxy.post(Bodies.utf8(Bodies.generate("ok", 5, 2).encode()), null).statusCode());
    } finally {
      for (Socket s : held) s.close();
      proxy.stop();
    }
  }

  private static final byte[] HEALTHCHECK =
      "GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

  private static int gauge(TestProxy proxy) {
    return ((Number) proxy.metrics().registry().getGauges().get("http.connections").getValue()).intValue();
  }
}
