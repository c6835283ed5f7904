package dev.veneur.proxy.discovery;

import com.codahale.metrics.Counter;
import java.util.function.Supplier;
import org.slf4j.Logger;

/**
 * A discovery source's trouble, told the way an operator wants it: every failure counted
 * ({@code discoverer.errors}), the first of an episode logged at ERROR (Sentry sees it), the rest
 * at DEBUG, so a source down for an hour writes one line, not one per poll; the recovery that
 * ends the episode is the caller's to log, once.
 */
final class TroubleEpisode {
  private final Logger log;
  private final Supplier<Counter> errors;
  private final String recoversWhen;
  private boolean open;

  /**
   * @param errors the counter, looked up at the first failure (no series until something fails)
   * @param recoversWhen how the ERROR line says the episode ends, e.g. "Consul recovers"
   */
  TroubleEpisode(Logger log, Supplier<Counter> errors, String recoversWhen) {
    this.log = log;
    this.errors = errors;
    this.recoversWhen = recoversWhen;
  }

  void failed(String message) {
    errors.get().inc();
    if (!open) {
      open = true;
      log.error("{} (logged once until {}; discoverer.errors counts each failure)", message, recoversWhen);
    } else {
      log.debug(message);
    }
  }

  /** The source answered well: true if that ends an episode (the caller logs the recovery). */
  boolean recovered() {
    boolean was = open;
    open = false;
    return was;
  }
}
