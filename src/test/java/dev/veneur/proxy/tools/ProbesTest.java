package dev.veneur.proxy.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import forwardrpc.ForwardOuterClass.MetricList;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;

/** The bench's delivery probes: bodies a global reads whole, with the probe last, and the latency sums. */
class ProbesTest {

  @Test
  void aJsonPostIsOneZlibStreamOfTheBodysMetricsAndTheProbe() throws Exception {
    List<byte[]> raw = SyntheticMetrics.bodies("src/test/resources/fixtures/captured/large.json", 50, 2);
    Probes.JsonBody open = Probes.prepare(raw.get(1));
    for (long id : new long[] {1, 77, 123_456_789_012L}) {
      Buffer post = Probes.jsonPost(open, id);
      // A wrapped Inflater checks the zlib header and the Adler-32 trailer: a wrong combine fails here.
      Inflater inf = new Inflater();
      inf.setInput(post.getBytes());
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buf = new byte[65536];
      while (!inf.finished()) {
        int n = inf.inflate(buf);
        if (n == 0 && inf.needsInput()) throw new AssertionError("the stream ended before its final block");
        out.write(buf, 0, n);
      }
      assertEquals(0, inf.getRemaining(), "nothing after the trailer");
      inf.end();
      JsonArray got = new JsonArray(out.toString());
      JsonArray want = new JsonArray(new String(raw.get(1)));
      assertEquals(want.size() + 1, got.size());
      for (int i = 0; i < want.size(); i++) assertEquals(want.getJsonObject(i), got.getJsonObject(i));
      JsonObject probe = got.getJsonObject(want.size());
      assertEquals(Probes.NAME, probe.getString("name"));
      assertEquals(id, Probes.idOf(probe.getString("tagstring")));
      assertEquals("counter", probe.getString("type"));
    }
  }

  @Test
  void aGrpcPostIsTheMetricListWithTheProbeAppended() throws Exception {
    byte[] list = SyntheticMetrics.grpcBodies("src/test/resources/fixtures/veneur-v14.2.0/grpc-single-small.pb", 40, 1).get(0);
    MetricList parsed = MetricList.parseFrom(Probes.grpcPost(list, 4242).getBytes());
    assertEquals(41, parsed.getMetricsCount());
    assertEquals(MetricList.parseFrom(list).getMetricsList(), parsed.getMetricsList().subList(0, 40));
    assertEquals(Probes.NAME, parsed.getMetrics(40).getName());
    assertEquals(4242, Probes.idOf(parsed.getMetrics(40).getTags(0)));
  }

  @Test
  void aGlobalsArrivalsAreDrainedOnceAndLatenciesCountTheLost() {
    Probes.Arrivals a = new Probes.Arrivals();
    a.arrived(5);
    a.arrived(6);
    a.arrived(-1); // not a probe
    Map<Long, Long> arrived = Probes.Arrivals.parse(a.drain(), new HashMap<>());
    assertEquals(2, arrived.size());
    assertEquals("", a.drain(), "taken once");
    Map<Long, Long> accepted = new HashMap<>();
    accepted.put(5L, arrived.get(5L) - 3_000_000);
    accepted.put(6L, arrived.get(6L) - 1_000_000);
    accepted.put(7L, 0L); // accepted, never seen
    Probes.Latencies l = Probes.Latencies.of(accepted, arrived);
    assertEquals(1, l.lost());
    assertEquals(2, l.sortedNanos().length);
    assertEquals(1_000_000, l.sortedNanos()[0]);
    assertEquals(3_000_000, l.sortedNanos()[1]);
    assertTrue(Probes.idOf("probe:x") < 0 && Probes.idOf("host:a") < 0);
  }
}
