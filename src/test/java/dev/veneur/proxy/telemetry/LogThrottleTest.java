package dev.veneur.proxy.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.veneur.proxy.support.Await;
import dev.veneur.proxy.support.LogCapture;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.slf4j.LoggerFactory;

/** One line per episode and period, the count of what was left out, and an episode's tail. */
class LogThrottleTest {
  private final Logger logger = (Logger) LoggerFactory.getLogger("test.LogThrottle");
  @RegisterExtension final LogCapture log = LogCapture.of("test.LogThrottle");
  /** A hand-driven clock and timer: nothing here depends on real time. */
  private long now = 1_000_000_000L;
  private final List<Runnable> due = new ArrayList<>();
  private final List<Long> delays = new ArrayList<>();
  private LogThrottle throttle;

  @BeforeEach
  void setUp() {
    throttle = new LogThrottle(logger, 10_000, () -> now, (task, delay) -> {
      due.add(task);
      delays.add(delay);
    });
  }

  private List<String> lines() {
    return log.messages();
  }

  private void advanceMillis(long ms) {
    now += ms * 1_000_000L;
  }

  private void runDue() {
    List<Runnable> tasks = new ArrayList<>(due);
    due.clear();
    tasks.forEach(Runnable::run);
  }

  @Test
  void theFirstAtOnceThenOneLinePerPeriodWithTheCount() {
    throttle.warn("json", "refused 1");
    for (int i = 2; i <= 1000; i++) throttle.warn("json", "refused " + i);
    assertEquals(List.of("refused 1"), lines(), "a burst is one line");
    assertEquals(999, throttle.suppressed("json"));
    assertEquals(List.of(10_000_000_000L), delays, "one end-of-period line is scheduled, when the period ends");
    advanceMillis(10_000);
    runDue();
    assertEquals(List.of("refused 1", "refused 1000 (and 998 more like it since the last report)"), lines(),
        "the tail of the episode is reported even though nothing followed");
    assertEquals(0, throttle.suppressed("json"));
    runDue();
    assertEquals(2, lines().size(), "nothing left out, nothing more to say");
  }

  @Test
  void aSustainedEpisodeIsOneLinePerPeriod() {
    for (int period = 0; period < 5; period++) {
      for (int i = 0; i < 100; i++) {
        throttle.warn("json", "refused");
        advanceMillis(10);
      }
      advanceMillis(9_000);
      runDue();
    }
    // The first at once, then one line as each period ends.
    assertEquals(6, lines().size(), lines().toString());
    assertEquals("refused", lines().get(0));
    for (String l : lines().subList(1, 6)) assertEquals(true, l.startsWith("refused (and "), l);
    // Every event is either a line or counted in one.
    long counted = 1;
    for (String l : lines().subList(1, 6)) {
      counted += 1 + Long.parseLong(l.replaceAll(".*\\(and (\\d+) more.*", "$1"));
    }
    assertEquals(500, counted + throttle.suppressed("json"));
  }

  @Test
  void anEventAfterThePeriodCarriesTheCountItself() {
    throttle.warn("k", "a");
    throttle.warn("k", "b");
    throttle.warn("k", "c");
    advanceMillis(10_001);
    throttle.warn("k", "d"); // before the timer fired
    assertEquals(List.of("a", "d (and 2 more like it since the last report)"), lines());
    runDue();
    assertEquals(2, lines().size(), "the timer finds nothing left to report");
  }

  @Test
  void keysAreThrottledApartAndKeepTheirLevel() {
    throttle.warn("json", "json 1");
    throttle.error("route_failure", "failure 1");
    throttle.warn("json", "json 2");
    throttle.error("route_failure", "failure 2");
    assertEquals(List.of("json 1", "failure 1"), lines());
    advanceMillis(10_000);
    runDue();
    assertEquals(4, lines().size());
    assertEquals(Level.WARN, levelOf("json 2"));
    assertEquals(Level.ERROR, levelOf("failure 2"));
  }

  private Level levelOf(String message) {
    return log.events().stream().filter(e -> e.getFormattedMessage().equals(message)).findFirst().orElseThrow().getLevel();
  }

  @Test
  void theRealTimerReportsTheTailOnItsOwnThread() throws Exception {
    LogThrottle real = new LogThrottle(logger, 50);
    real.warn("x", "first");
    real.warn("x", "second");
    Await.until("the tail reported", Duration.ofSeconds(10), () -> log.events().size() >= 2);
    assertEquals(List.of("first", "second"), lines());
    assertEquals("veneur-log-throttle", log.events().get(1).getThreadName());
  }
}
