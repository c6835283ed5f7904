package dev.veneur.proxy.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import com.codahale.metrics.Counter;
import dev.veneur.proxy.support.LogCapture;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.slf4j.LoggerFactory;

/** A source down for a long time writes one ERROR per episode, and counts every failure. */
class TroubleEpisodeTest {
  @RegisterExtension
  final LogCapture log = LogCapture.of(TroubleEpisodeTest.class);

  final Counter errors = new Counter();
  int lookedUp;
  final TroubleEpisode trouble = new TroubleEpisode(LoggerFactory.getLogger(TroubleEpisodeTest.class), () -> {
    lookedUp++;
    return errors;
  }, "the source recovers");

  @Test
  void oneErrorLinePerEpisodeEveryFailureCounted() {
    assertFalse(trouble.recovered(), "no episode yet: nothing to recover from");
    assertEquals(0, lookedUp, "no counter series until something fails");
    trouble.failed("query failed: timeout");
    trouble.failed("query failed: timeout");
    trouble.failed("query failed: SERVFAIL");
    assertEquals(3, errors.getCount());
    assertEquals(List.of("query failed: timeout (logged once until the source recovers;"
        + " discoverer.errors counts each failure)"), log.messages(Level.ERROR));
    assertEquals(1, log.messages().size(), "the rest of the episode below INFO: " + log.messages());
    assertTrue(trouble.recovered(), "the first good answer ends the episode");
    assertFalse(trouble.recovered(), "and only once");
    trouble.failed("query failed: refused");
    assertEquals(2, log.messages(Level.ERROR).size(), "a new episode is told again");
    assertEquals(4, errors.getCount());
  }
}
