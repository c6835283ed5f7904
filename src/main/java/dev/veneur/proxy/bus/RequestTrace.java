package dev.veneur.proxy.bus;

import com.codahale.metrics.Timer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One accepted {@code /import} request followed through the proxy: its chunks share this, and when
 * the last of them settles (delivered or dropped) the time since the 202 is recorded as
 * {@code proxy.duration_ns}, one sample per request as the Go proxy sends it.
 */
public final class RequestTrace {
  private final long acceptedNanos = System.nanoTime();
  private final AtomicInteger open;
  private final Timer timer;

  public RequestTrace(Timer timer) {
    this.open = new AtomicInteger();
    this.timer = timer;
  }

  /** The request was answered 202 with this many chunks (none may have settled yet). */
  public void accepted(int chunks) {
    open.set(chunks);
    if (chunks == 0) timer.update(System.nanoTime() - acceptedNanos, TimeUnit.NANOSECONDS);
  }

  /** A chunk of the request was split into {@code parts} chunks that replace it. */
  public void split(int parts) {
    if (parts == 0) settled();
    else if (parts != 1) open.addAndGet(parts - 1);
  }

  /** A chunk of the request settled. */
  public void settled() {
    if (open.decrementAndGet() == 0) timer.update(System.nanoTime() - acceptedNanos, TimeUnit.NANOSECONDS);
  }
}
