package dev.veneur.proxy.core;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.turbo.TurboFilter;
import ch.qos.logback.core.spi.FilterReply;
import org.slf4j.Marker;

/**
 * Netty and Vert.x catch what a handler throws, an {@code OutOfMemoryError} included, and only log
 * it; the process would go on with a thread's work half done. This filter sees every log event
 * with a throwable before it is formatted and hands an OutOfMemoryError to {@link Fatal}.
 */
public final class OutOfMemoryWatch extends TurboFilter {
  @Override
  public FilterReply decide(Marker marker, Logger logger, Level level, String format, Object[] params, Throwable t) {
    if (t != null) {
      Fatal.check(t);
    } else if (params != null && params.length > 0 && params[params.length - 1] instanceof Throwable) {
      Fatal.check((Throwable) params[params.length - 1]);
    }
    return FilterReply.NEUTRAL;
  }
}
