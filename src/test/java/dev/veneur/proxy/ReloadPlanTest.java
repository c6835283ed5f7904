package dev.veneur.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.config.ProxyConfig;
import io.vertx.core.json.JsonObject;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The reload planner alone: two configs in, what to replace live and what needs a restart out. */
class ReloadPlanTest {
  private static final JsonObject BASE = new JsonObject()
      .put("http_address", "127.0.0.1:8127")
      .put("forward_address", "http://a:8128");

  private static ReloadPlan plan(JsonObject changes) {
    return ReloadPlan.between(ProxyConfig.from(BASE), ProxyConfig.from(BASE.copy().mergeIn(changes)));
  }

  @Test
  void sameValuesMeanNothingToDo() {
    ReloadPlan p = plan(new JsonObject().put("forward_timeout", "10s")); // the default, spelled out
    assertTrue(p.isEmpty(), p.toString());
    assertFalse(p.moveListener || p.replaceDiscovery || p.restartReporter || p.reconfigureSentry
        || p.rescheduleScan, p.toString());
    assertEquals(List.of(), p.restartOnly);
  }

  @Test
  void perUseKeysOnlySwapTheConfig() {
    ReloadPlan p = plan(new JsonObject().put("batch_linger", "75ms").put("forward_timeout", "3s").put("debug", true));
    assertEquals(List.of("debug", "forward_timeout", "batch_linger").stream().sorted().toList(),
        p.diff.keySet().stream().sorted().toList());
    assertFalse(p.moveListener || p.replaceDiscovery || p.restartReporter || p.reconfigureSentry
        || p.rescheduleScan, p.toString());
    assertEquals(List.of(), p.restartOnly);
  }

  @Test
  void eachPartFollowsItsKeys() {
    assertTrue(plan(new JsonObject().put("http_address", "127.0.0.1:9127")).moveListener);
    assertTrue(plan(new JsonObject().put("http_instances", 3)).moveListener);
    assertTrue(plan(new JsonObject().put("forward_address", "http://b:8128")).replaceDiscovery);
    assertTrue(plan(new JsonObject().put("consul_forward_service_name", "globals")).replaceDiscovery);
    assertTrue(plan(new JsonObject().put("stats_address", "127.0.0.1:8125")).restartReporter);
    assertTrue(plan(new JsonObject().put("sentry_dsn", "http://k@127.0.0.1:9/42")).reconfigureSentry);
    ReloadPlan listener = plan(new JsonObject().put("http_address", "127.0.0.1:9127"));
    assertFalse(listener.replaceDiscovery || listener.restartReporter || listener.reconfigureSentry);
  }

  @Test
  void theScanIntervalIsAppliedLiveNotAtRestart() {
    ReloadPlan p = plan(new JsonObject().put("config_scan_interval", "250ms"));
    assertTrue(p.rescheduleScan, p.toString());
    assertEquals(List.of(), p.restartOnly, "config_scan_interval applies live");
    assertFalse(p.isEmpty());
  }

  @Test
  void startUpKeysAreListedAsNeedingARestart() {
    ReloadPlan p = plan(new JsonObject().put("event_loops", 3).put("batch_linger", "75ms")
        .put("spill_dir", "/tmp/spill").put("forward_address", "http://b:8128"));
    assertEquals(List.of("event_loops", "spill_dir").stream().sorted().toList(),
        p.restartOnly.stream().sorted().toList());
    assertTrue(p.replaceDiscovery, "what can apply live still does");
  }

  @Test
  void secretsAreNotInTheDiff() {
    ReloadPlan p = plan(new JsonObject().put("sentry_dsn", "http://secretkey@127.0.0.1:9/42"));
    assertTrue(p.diff.values().stream().noneMatch(v -> v.contains("secretkey")), p.diff.toString());
  }
}
