package dev.veneur.proxy.config;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parses durations written the way Go's {@code time.ParseDuration} accepts them ("30s", "1m30s",
 * "500ms", "1.5h"), because operators bring their existing veneur-proxy YAML files unchanged.
 */
public final class GoDuration {
  private static final Pattern PART = Pattern.compile("(\\d+(?:\\.\\d*)?|\\.\\d+)(ns|us|µs|μs|ms|s|m|h)");

  private GoDuration() {}

  public static Duration parse(String text) {
    if (text == null) {
      throw new IllegalArgumentException("a duration such as 10s, 1m30s or 500ms");
    }
    String s = text.trim();
    if (s.equals("0")) {
      return Duration.ZERO;
    }
    boolean negative = s.startsWith("-");
    if (negative || s.startsWith("+")) {
      s = s.substring(1);
    }
    if (s.isEmpty()) {
      throw new IllegalArgumentException("a duration such as 10s, 1m30s or 500ms");
    }
    Matcher m = PART.matcher(s);
    int pos = 0;
    double nanos = 0;
    while (pos < s.length()) {
      if (!m.find(pos) || m.start() != pos) {
        throw new IllegalArgumentException("a duration such as 10s, 1m30s or 500ms");
      }
      double n = Double.parseDouble(m.group(1));
      nanos += n * unitNanos(m.group(2));
      pos = m.end();
    }
    if (nanos > Long.MAX_VALUE) {
      throw new IllegalArgumentException("a duration that fits in 292 years");
    }
    long total = Math.round(nanos);
    return Duration.ofNanos(negative ? -total : total);
  }

  private static double unitNanos(String unit) {
    switch (unit) {
      case "ns": return 1;
      case "us": case "µs": case "μs": return 1e3;
      case "ms": return 1e6;
      case "s": return 1e9;
      case "m": return 60e9;
      case "h": return 3600e9;
      default: throw new IllegalArgumentException("unknown unit " + unit);
    }
  }

  /** Formats a duration back in Go syntax, for logs and diffs. */
  public static String format(Duration d) {
    long ms = d.toMillis();
    if (ms == 0) {
      return d.toNanos() == 0 ? "0s" : d.toNanos() + "ns";
    }
    if (ms % 3_600_000 == 0) return ms / 3_600_000 + "h";
    if (ms % 60_000 == 0) return ms / 60_000 + "m";
    if (ms % 1000 == 0) return ms / 1000 + "s";
    return ms + "ms";
  }
}
