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

  /** Requests whose metrics share this trace's chunks (merged bodies), or null: just this one. */
  private final RequestTrace[] members;

  public RequestTrace(Timer timer) {
    this.open = new AtomicInteger();
    this.timer = timer;
    this.members = null;
  }

  private RequestTrace(Timer timer, RequestTrace[] members) {
    this.open = new AtomicInteger();
    this.timer = timer;
    this.members = members;
  }

  /**
   * The trace of chunks that hold the metrics of several requests (an HTTP verticle merged bodies
   * that were queued together): when they settle, one sample per request, each from its own
   * start. Null members (requests not traced) are skipped; null if none is traced.
   */
  public static RequestTrace merged(java.util.List<RequestTrace> traces) {
    RequestTrace[] m = traces.stream().filter(java.util.Objects::nonNull).toArray(RequestTrace[]::new);
    if (m.length == 0) return null;
    if (m.length == 1) return m[0];
    return new RequestTrace(m[0].timer, m);
  }

  private void record() {
    long now = System.nanoTime();
    if (members == null) {
      timer.update(now - acceptedNanos, TimeUnit.NANOSECONDS);
      return;
    }
    for (RequestTrace t : members) t.timer.update(now - t.acceptedNanos, TimeUnit.NANOSECONDS);
  }

  /** The request was answered 202 with this many chunks (none may have settled yet). */
  public void accepted(int chunks) {
    open.set(chunks);
    if (chunks == 0) record();
  }

  /** A chunk of the request was split into {@code parts} chunks that replace it. */
  public void split(int parts) {
    if (parts == 0) settled();
    else if (parts != 1) open.addAndGet(parts - 1);
  }

  /** A chunk of the request settled. */
  public void settled() {
    if (open.decrementAndGet() == 0) record();
  }
}
