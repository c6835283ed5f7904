package dev.veneur.proxy.config;

import java.util.List;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * Veneur v14.2.0's {@code ignore_tags}: tags matching any matcher are left out of a metric's ring
 * key (only the key: the metric is forwarded with all its tags), so series that differ only in,
 * say, a host tag land on one global. Matchers are {@code kind: exact | prefix | regex} with a
 * {@code value}; a regex matches anywhere in the tag, as Go's {@code regexp.MatchString} does
 * (Java's {@link java.util.regex.Matcher#find}; Go's RE2 syntax is, for the patterns a tag rule
 * uses, a subset of Java's).
 */
public final class IgnoreTags {
  public static final IgnoreTags NONE = new IgnoreTags(List.of());

  /** One rule as the config gives it. */
  public record Rule(String kind, String value) {}

  private final List<Predicate<String>> matchers;

  private IgnoreTags(List<Predicate<String>> matchers) {
    this.matchers = matchers;
  }

  /**
   * @throws IllegalArgumentException naming the rule when its kind is unknown or its regex does not compile
   */
  public static IgnoreTags of(List<Rule> rules) {
    if (rules.isEmpty()) return NONE;
    List<Predicate<String>> ms = new java.util.ArrayList<>();
    for (Rule r : rules) {
      String v = r.value();
      switch (r.kind()) {
        case "exact" -> ms.add(t -> t.equals(v));
        case "prefix" -> ms.add(t -> t.startsWith(v));
        case "regex" -> {
          Pattern p = Pattern.compile(v);
          ms.add(t -> p.matcher(t).find());
        }
        default -> throw new IllegalArgumentException("ignore_tags kind '" + r.kind()
            + "' is none of exact, prefix, regex");
      }
    }
    return new IgnoreTags(List.copyOf(ms));
  }

  public boolean isEmpty() {
    return matchers.isEmpty();
  }

  public boolean ignored(String tag) {
    for (Predicate<String> m : matchers) if (m.test(tag)) return true;
    return false;
  }
}
