package dev.veneur.proxy.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The log-capture helper itself: which loggers, which thread, and nothing once closed. */
class LogCaptureTest {
  private final Logger parent = LoggerFactory.getLogger("test.LogCapture");
  private final Logger child = LoggerFactory.getLogger("test.LogCapture.child");
  private final Logger other = LoggerFactory.getLogger("test.LogCaptureOther");

  @Test
  void capturesTheNamedLoggerAndItsChildrenOnly() {
    try (LogCapture log = LogCapture.of("test.LogCapture").start()) {
      parent.warn("one {}", 1);
      child.error("two");
      other.error("not this one");
      assertEquals(List.of("one 1", "two"), log.messages());
      assertEquals(List.of("two"), log.messages(Level.ERROR));
      assertTrue(log.contains("one"));
      assertTrue(log.contains(Level.WARN, "one"));
      assertFalse(log.contains(Level.ERROR, "one"));
      assertEquals(1, log.count(Level.ERROR, "tw"));
    }
  }

  @Test
  void anEventKeepsTheThreadThatLoggedIt() throws Exception {
    try (LogCapture log = LogCapture.of("test.LogCapture").start()) {
      Thread t = new Thread(() -> parent.warn("from elsewhere"), "log-capture-test-thread");
      t.start();
      t.join();
      assertEquals("log-capture-test-thread", log.events().get(0).getThreadName());
    }
  }

  @Test
  void nothingIsCapturedOnceClosedAndAStartForgetsWhatWas() {
    LogCapture log = LogCapture.of("test.LogCapture");
    log.start();
    parent.warn("while open");
    log.close();
    parent.warn("after close");
    assertEquals(List.of("while open"), log.messages());
    log.start();
    assertEquals(List.of(), log.messages());
    parent.warn("open again");
    log.close();
    assertEquals(List.of("open again"), log.messages());
  }
}
