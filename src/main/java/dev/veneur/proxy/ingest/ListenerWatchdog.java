package dev.veneur.proxy.ingest;

import dev.veneur.proxy.core.Fatal;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Checks once a second that the proxy still holds its listening port, by trying to bind it: the
 * bind fails while the listener lives, and succeeds only if the listener is gone (closed by a
 * dying acceptor thread, say). Then the process is no use to anyone: {@link Fatal} ends it. Runs on
 * its own thread so it works even when every event loop is stuck. A reload that moves the listener
 * pauses it.
 */
public final class ListenerWatchdog {
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "veneur-listener-watchdog");
    t.setDaemon(true);
    return t;
  });
  private volatile String host;
  private volatile int port;
  private volatile boolean paused;

  public ListenerWatchdog(String host, int port) {
    this.host = host;
    this.port = port;
    timer.scheduleWithFixedDelay(this::check, 1, 1, TimeUnit.SECONDS);
  }

  /** A reload is moving the listener. */
  public void pause() {
    paused = true;
  }

  /** The listener is now at {@code host:port}. */
  public void watch(String host, int port) {
    this.host = host;
    this.port = port;
    paused = false;
  }

  public void stop() {
    timer.shutdownNow();
  }

  private void check() {
    if (paused || port == 0) return;
    try (ServerSocket probe = new ServerSocket()) {
      probe.setReuseAddress(true);
      probe.bind(new InetSocketAddress(host, port), 1);
    } catch (IOException inUse) {
      return; // still ours
    }
    if (paused) return;
    timer.shutdown();
    Fatal.die("the HTTP listener on " + host + ":" + port + " is gone");
  }
}
