package dev.veneur.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.support.AttackBodies;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.CountingGlobal;
import dev.veneur.proxy.support.DebugState;
import dev.veneur.proxy.support.HealthPoller;
import dev.veneur.proxy.support.ProxyProcess;
import dev.veneur.proxy.support.SteadySenders;
import dev.veneur.proxy.support.TestProxy;
import dev.veneur.proxy.telemetry.Profiler;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 21, item 6: {@code POST /debug/profile} sat on the {@code /import} listener with no limit
 * (67 calls in 20 s wrote 1.1 GB), its files were {@code 0644} and held {@code CONSUL_HTTP_TOKEN}.
 * Against a real proxy process under load, with a secret in its environment and one in a system
 * property: the profiler is not on {@code http_address}; on the admin listener one dump is made
 * and the others, at once or right after, get 429 with a one-line reason; dumps are {@code 0600},
 * bounded, and contain neither secret, nor any environment event; the senders' metrics are all
 * delivered and the accounting identity holds.
 */
@ExtendWith(VertxExtension.class)
class ProfilerProtectionIT {
  private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5)).build();

  @Test
  void theProfilerIsOffTheImportListenerRateLimitedPrivateAndFreeOfSecrets(Vertx vertx, @TempDir Path dir)
      throws Exception {
    String envSecret = "sekrit-" + UUID.randomUUID();
    String propSecret = "sekrit-" + UUID.randomUUID();
    CountingGlobal global = CountingGlobal.start(vertx);
    int port = TestProxy.freePort();
    int admin = TestProxy.freePort();
    Path profiles = dir.resolve("profiles");
    Path file = dir.resolve("proxy.yaml");
    Files.writeString(file, String.join("\n",
        "http_address: \"127.0.0.1:" + port + "\"",
        "admin_address: \"127.0.0.1:" + admin + "\"",
        "forward_address: \"" + global.url() + "\"",
        "forward_timeout: \"60s\"",
        "enable_profiling: true",
        "profiling_dir: \"" + profiles + "\"", ""));
    ProxyProcess p = ProxyProcess.start(file, Map.of("CONSUL_HTTP_TOKEN", envSecret), "-Xmx256m",
        "-Dveneur.test.secret=" + propSecret);
    List<String> findings = new ArrayList<>();
    try {
      Await.until("the proxy answers /healthcheck", Duration.ofSeconds(60),
          () -> HealthPoller.check(port, 2000) == null || !p.process.isAlive());
      assertTrue(p.process.isAlive(), "the proxy died on start-up:\n" + p.log());
      JsonArray captured = AttackBodies.captured();
      Map<String, List<byte[]>> bodies = new LinkedHashMap<>();
      for (int i = 0; i < 2; i++) bodies.put("P" + i, List.of(AttackBodies.prefixed(captured, "P" + i, 300, 7 * i)));
      SteadySenders senders = SteadySenders.start(port, bodies, Duration.ofMillis(50), Duration.ofSeconds(30));
      Await.until("load flowing", Duration.ofSeconds(30), () -> senders.accepted() >= 10);

      HttpResponse<String> onImport = post(port, "/debug/profile");
      if (onImport.statusCode() != 404) {
        findings.add("POST /debug/profile on http_address answered " + onImport.statusCode() + ": " + onImport.body());
      }
      // Three at once, then one more: exactly one dump; the others 429, one line each, Retry-After.
      List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
      for (int i = 0; i < 3; i++) calls.add(CompletableFuture.supplyAsync(() -> post(admin, "/debug/profile")));
      List<HttpResponse<String>> answers = new ArrayList<>();
      for (var c : calls) answers.add(c.get());
      answers.add(post(admin, "/debug/profile"));
      List<HttpResponse<String>> made = answers.stream().filter(r -> r.statusCode() == 200).toList();
      List<HttpResponse<String>> refused = answers.stream().filter(r -> r.statusCode() == 429).toList();
      System.out.println("profile answers: " + answers.stream().map(r -> r.statusCode() + " " + r.body().strip()).toList());
      if (made.size() != 1 || refused.size() != 3) {
        findings.add("expected one dump and three 429s: " + answers.stream().map(r -> r.statusCode() + " " + r.body().strip()).toList());
      }
      for (HttpResponse<String> r : refused) {
        if (r.body().strip().contains("\n") || r.body().isBlank() || r.headers().firstValue("Retry-After").isEmpty()) {
          findings.add("a 429 without a one-line reason and Retry-After: " + r.headers().map() + " " + r.body());
        }
      }
      senders.close();
      boolean idle = DebugState.awaitIdle(p, admin, Duration.ofSeconds(60));
      JsonObject state = DebugState.get(admin);
      Map<String, Long> expected = new TreeMap<>();
      for (SteadySenders.Sender s : senders.senders) {
        expected.put(s.prefix, 300L * s.accepted.get());
        if (s.otherCount() > 0 || s.refused503.get() > 0) findings.add("sender " + s + " " + s.otherExamples);
      }
      long expectedTotal = expected.values().stream().mapToLong(Long::longValue).sum();
      Await.until("every accepted metric at the global", Duration.ofSeconds(idle ? 20 : 1),
          () -> global.snapshot().values().stream().mapToLong(Long::longValue).sum() >= expectedTotal);
      if (!expected.equals(global.snapshot())) findings.add("accepted " + expected + ", delivered " + global.snapshot());
      String accounting = DebugState.accountingProblem(state, true);
      if (accounting != null) findings.add("accounting: " + accounting);
      if (p.terminate() != 0) findings.add("exit code " + p.process.exitValue());

      String dirMode = PosixFilePermissions.toString(Files.getPosixFilePermissions(profiles));
      if (!dirMode.equals("rwx------")) findings.add("profiling_dir created " + dirMode);
      List<Path> dumps;
      try (var files = Files.list(profiles)) {
        dumps = files.sorted().toList();
      }
      if (dumps.size() != 2) findings.add("expected the on-demand dump and the shutdown dump: " + dumps);
      for (Path d : dumps) {
        String mode = PosixFilePermissions.toString(Files.getPosixFilePermissions(d));
        if (!mode.equals("rw-------")) findings.add(d.getFileName() + " is " + mode);
        if (Files.size(d) > Profiler.MAX_RECORDING_BYTES + (16 << 20)) {
          findings.add(d.getFileName() + " is " + Files.size(d) + " bytes, over the recording's cap");
        }
        String raw = new String(Files.readAllBytes(d), StandardCharsets.ISO_8859_1);
        String utf16 = new String(Files.readAllBytes(d), StandardCharsets.UTF_16BE);
        for (String secret : List.of(envSecret, propSecret)) {
          if (raw.contains(secret) || utf16.contains(secret)) findings.add(d.getFileName() + " holds a secret's bytes");
        }
        int events = 0;
        for (RecordedEvent e : RecordingFile.readAllEvents(d)) {
          events++;
          String name = e.getEventType().getName();
          if (Profiler.SECRET_EVENTS.contains(name)) {
            findings.add(d.getFileName() + " has a " + name + " event");
            break;
          }
          String text = e.toString();
          if (text.contains(envSecret) || text.contains(propSecret)) {
            findings.add(d.getFileName() + ": a " + name + " event holds a secret");
            break;
          }
        }
        System.out.println(d.getFileName() + ": " + Files.size(d) + " bytes, " + events + " events, " + mode);
        if (events == 0) findings.add(d.getFileName() + " has no events");
      }
      assertTrue(findings.isEmpty(), findings.size() + " problem(s):\n- " + String.join("\n- ", findings)
          + "\n(log: " + p.saveLog("ProfilerProtectionIT") + ")");
    } finally {
      p.kill();
    }
  }

  private static HttpResponse<String> post(int port, String path) {
    try {
      return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
          .timeout(Duration.ofSeconds(60)).POST(HttpRequest.BodyPublishers.noBody()).build(),
          HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new AssertionError("POST " + path + " on port " + port + " failed: " + e, e);
    }
  }
}
