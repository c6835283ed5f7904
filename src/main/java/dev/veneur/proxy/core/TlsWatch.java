package dev.veneur.proxy.core;

import dev.veneur.proxy.config.TlsFiles;
import io.vertx.core.Vertx;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches a TLS block's PEM files and says when they were rewritten (cert-manager renews a
 * certificate in place, Kubernetes swaps a secret volume's {@code ..data} link), so a listener or
 * client loads the new ones without dropping a connection: connections already open keep their
 * session, new ones get the new certificate. Files are checked off the event loop, every second.
 */
public final class TlsWatch {
  private static final Logger LOG = LoggerFactory.getLogger(TlsWatch.class);
  static final long PERIOD_MS = 1_000;

  private final Vertx vertx;
  private final TlsFiles files;
  private final String what;
  private final Consumer<TlsFiles> changed;
  private String stamp;
  private long timer = -1;
  private boolean checking;

  private TlsWatch(Vertx vertx, TlsFiles files, String what, Consumer<TlsFiles> changed) {
    this.vertx = vertx;
    this.files = files;
    this.what = what;
    this.changed = changed;
  }

  /**
   * Starts watching {@code files} (as they are now) for the listener or client {@code what};
   * {@code changed} runs on the caller's context when they change.
   */
  public static TlsWatch start(Vertx vertx, TlsFiles files, String what, Consumer<TlsFiles> changed) {
    TlsWatch w = new TlsWatch(vertx, files, what, changed);
    w.stamp = files.stamp();
    w.timer = vertx.setPeriodic(PERIOD_MS, t -> w.check());
    return w;
  }

  private void check() {
    if (checking) return;
    checking = true;
    vertx.executeBlocking(files::stamp, false).onComplete(ar -> {
      checking = false;
      if (ar.failed() || ar.result().equals(stamp)) return;
      stamp = ar.result();
      LOG.info("{}: the TLS files changed on disk; new connections use them ({})", what, files);
      changed.accept(files);
    });
  }

  public void stop() {
    if (timer >= 0) vertx.cancelTimer(timer);
  }

  /** A failed TLS handshake's cause, for counting: what the peer got wrong, as far as it can be told. */
  public static String cause(Throwable e) {
    StringBuilder all = new StringBuilder();
    for (Throwable t = e; t != null && all.length() < 4096; t = t.getCause()) {
      all.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage()).append(" | ");
    }
    String s = all.toString().toLowerCase(java.util.Locale.ROOT);
    if (s.contains("empty client certificate chain") || s.contains("null cert chain") || s.contains("certificate_required")
        || s.contains("no client certificate")) {
      return "no_client_certificate";
    }
    if (s.contains("expired") || s.contains("notafter") || s.contains("not yet valid")) return "expired_certificate";
    if (s.contains("pkix") || s.contains("unable to find valid certification path") || s.contains("unknown_ca")
        || s.contains("signature check failed") || s.contains("bad_certificate") || s.contains("certificate_unknown")) {
      return "untrusted_certificate";
    }
    if (s.contains("not an ssl/tls record") || s.contains("notsslrecordexception")) return "not_tls";
    if (s.contains("timed out") || s.contains("timeout")) return "handshake_timeout";
    return "handshake_failed";
  }
}
