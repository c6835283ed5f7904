package dev.veneur.proxy.config;

/**
 * Text from outside (a member address from Consul or a config file, a Consul error) made safe for
 * one log line: control characters, DEL, C1 controls, the Unicode line separators and the
 * backslash are written as escapes ({@code \n}, {@code \x1b}, {@code \u2028}, {@code \\}), so a
 * value cannot end the line and forge the next one, and what was sent can still be read exactly.
 * Long values are cut, saying how long they were. In {@code config} (a leaf) so that every layer,
 * config errors included, can use it.
 */
public final class LogText {
  /** Longest part of a value kept in a log line. */
  public static final int MAX_CHARS = 200;

  private LogText() {}

  public static String escape(String s) {
    if (s == null) return "null";
    int n = Math.min(s.length(), MAX_CHARS);
    StringBuilder b = null;
    for (int i = 0; i < n; i++) {
      char c = s.charAt(i);
      boolean plain = c >= 0x20 && c != 0x7f && c != '\\' && !(c >= 0x80 && c <= 0x9f)
          && c != '\u2028' && c != '\u2029';
      if (plain) {
        if (b != null) b.append(c);
        continue;
      }
      if (b == null) b = new StringBuilder(n + 16).append(s, 0, i);
      switch (c) {
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        case '\\' -> b.append("\\\\");
        default -> {
          if (c < 0x100) b.append(String.format("\\x%02x", (int) c));
          else b.append(String.format("\\u%04x", (int) c));
        }
      }
    }
    String out = b == null ? s.substring(0, n) : b.toString();
    return s.length() > MAX_CHARS ? out + "...(" + s.length() + " chars)" : out;
  }

  /**
   * A message that spans lines (a YAML parser's, with its caret under the column) as one line:
   * control characters become spaces, runs of spaces one, at most 300 characters. For messages
   * of our own libraries; text a sender or a registry chose goes through {@link #escape}.
   */
  public static String flatten(String s) {
    if (s == null) return "";
    StringBuilder b = new StringBuilder(Math.min(s.length(), 300));
    for (int i = 0; i < s.length() && b.length() < 300; i++) {
      char c = s.charAt(i);
      b.append(c < 0x20 || c == 0x7f ? ' ' : c);
    }
    return b.toString().replaceAll(" +", " ").trim();
  }
}
