package dev.veneur.proxy.support;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.slf4j.LoggerFactory;

/**
 * What the proxy logs in this JVM (through Logback), kept for assertions: an appender attached to
 * the named loggers (their children included) and detached again. Safe to read while other
 * threads log: events are kept in a concurrent list, and each one's message, thread name and MDC
 * are fixed when it is logged, on the thread that logged it.
 *
 * <p>Around every test of a class, attached before each test and detached after it, failed or not:
 *
 * <pre>{@code
 * @RegisterExtension final LogCapture log = LogCapture.of(ConfigWatchVerticle.class);
 * ...
 * Await.until("the rejection logged", () -> log.contains(Level.ERROR, "config reload rejected"));
 * }</pre>
 *
 * <p>Around part of one test: {@code try (LogCapture log = LogCapture.of("io.vertx").start()) { ... }}.
 */
public final class LogCapture implements BeforeEachCallback, AfterEachCallback, AutoCloseable {
  private final List<Logger> loggers;
  private final List<ILoggingEvent> events = new CopyOnWriteArrayList<>();
  private final AppenderBase<ILoggingEvent> appender = new AppenderBase<>() {
    @Override
    protected void append(ILoggingEvent event) {
      // Message, thread name and MDC are otherwise computed when first read, on the reading thread.
      event.prepareForDeferredProcessing();
      events.add(event);
    }
  };

  private LogCapture(List<String> names) {
    this.loggers = names.stream().map(n -> (Logger) LoggerFactory.getLogger(n)).toList();
    appender.setName("test-log-capture");
    appender.setContext((LoggerContext) LoggerFactory.getILoggerFactory());
  }

  /** Captures the loggers named after these classes (and the loggers under them). */
  public static LogCapture of(Class<?>... classes) {
    return new LogCapture(Arrays.stream(classes).map(Class::getName).toList());
  }

  /** Captures these loggers (and the loggers under them): {@code "io.vertx"}, {@code "dev.veneur.proxy"}. */
  public static LogCapture of(String... loggerNames) {
    return new LogCapture(List.of(loggerNames));
  }

  /** Forgets what was captured and attaches the appender (again). Returns this, for try-with-resources. */
  public LogCapture start() {
    events.clear();
    if (!appender.isStarted()) appender.start();
    for (Logger l : loggers) {
      if (!l.isAttached(appender)) l.addAppender(appender);
    }
    return this;
  }

  /** Detaches the appender; what was captured stays readable. */
  @Override
  public void close() {
    for (Logger l : loggers) l.detachAppender(appender);
  }

  @Override
  public void beforeEach(ExtensionContext context) {
    start();
  }

  @Override
  public void afterEach(ExtensionContext context) {
    close();
  }

  /** The events captured so far, in order: a copy. */
  public List<ILoggingEvent> events() {
    return List.copyOf(events);
  }

  /** The formatted messages captured so far, in order. */
  public List<String> messages() {
    return events.stream().map(ILoggingEvent::getFormattedMessage).toList();
  }

  /** The formatted messages captured at {@code level}, in order. */
  public List<String> messages(Level level) {
    return events.stream().filter(e -> e.getLevel() == level).map(ILoggingEvent::getFormattedMessage).toList();
  }

  /** Whether any message captured so far contains {@code fragment}. */
  public boolean contains(String fragment) {
    return events.stream().anyMatch(e -> e.getFormattedMessage().contains(fragment));
  }

  /** Whether any message captured so far at {@code level} contains {@code fragment}. */
  public boolean contains(Level level, String fragment) {
    return count(level, fragment) > 0;
  }

  /** How many messages captured so far at {@code level} contain {@code fragment}. */
  public long count(Level level, String fragment) {
    return events.stream().filter(e -> e.getLevel() == level && e.getFormattedMessage().contains(fragment)).count();
  }
}
