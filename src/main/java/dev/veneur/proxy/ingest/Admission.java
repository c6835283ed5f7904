package dev.veneur.proxy.ingest;

import dev.veneur.proxy.core.Timers;
import dev.veneur.proxy.memory.MemoryBudget;
import java.util.concurrent.Executor;

/**
 * Admission of one incoming request's bytes into the memory budget, the same for an {@code /import}
 * body and a gRPC call. Every read is reserved as it arrives, sized by what arrived (never by a
 * declared length). When the budget is full the source is paused, so the network holds the sender
 * back (TCP for a socket, HTTP/2 flow control for a stream), and the request waits its turn in
 * the budget's queue; past {@code memory_wait_timeout} of waiting it is overloaded. The request
 * also has one deadline from its start: when it comes, a request held back for memory is
 * overloaded (the proxy's fault), any other is too slow (the sender's).
 *
 * <p>One request at a time may read on through a full budget ({@link MemoryBudget#tryLead}): paused
 * requests each hold part of a body, and if they filled the budget between them none could finish
 * and free anything.
 *
 * <p>Runs on one event loop; its timers are {@link Timers}, so its unit test moves the clock by
 * hand.
 */
public final class Admission {
  /** What is admitted: a socket or an HTTP/2 stream, paused and resumed for memory. */
  public interface Source {
    void pause();

    void resume();

    /** Bytes the source read while paused and still holds, reserved elsewhere (0 if none). */
    default long pausedBytes() {
      return 0;
    }
  }

  /** Told once, when the request must end for want of memory or of time. */
  public interface Listener {
    /** Held back for memory past memory_wait_timeout, or when the deadline came. */
    void overloaded();

    /** The deadline came while the sender was free to send. */
    void tooSlow();
  }

  private final MemoryBudget budget;
  private final Timers timers;
  private final Executor loop;
  private final long memoryWaitNanos;
  /** What a received byte may cost until it is consumed (see GrpcCall's GROWTH). */
  private final long growth;
  private final Source source;
  private Listener listener;
  /** Reserved and counted as receiving, not yet consumed or kept. */
  private long held;
  private boolean paused;
  private boolean leading;
  private boolean finished;
  private MemoryBudget.Waiter waiter;
  private long deadlineTimer = -1;
  private long waitTimer = -1;
  private long waitedNanos;
  private long waitStarted;

  /**
   * @param loop where the budget resumes a waiting request: its event loop
   * @param growth what each received byte is reserved as (1, or 2 where a buffer may double)
   */
  public Admission(MemoryBudget budget, Timers timers, Executor loop, long memoryWaitNanos, long growth,
      Source source) {
    this.budget = budget;
    this.timers = timers;
    this.loop = loop;
    this.memoryWaitNanos = memoryWaitNanos;
    this.growth = growth;
    this.source = source;
  }

  /** Starts the deadline; {@code l} hears of overload and slowness. */
  public void begin(Listener l, long deadlineMs) {
    this.listener = l;
    deadlineTimer = timers.set(Math.max(1, deadlineMs), () -> {
      deadlineTimer = -1;
      if (finished) return;
      if (paused) listener.overloaded();
      else listener.tooSlow();
    });
  }

  /** {@code n} bytes arrived: reserved at once (call {@link #checkMemory} once they are handed on). */
  public void arrived(long n) {
    if (finished) return;
    long r = growth * n;
    budget.reserve(r);
    budget.receiving(r);
    held += r;
  }

  /** Pauses the source if the budget is full (unless this request leads). */
  public void checkMemory() {
    if (finished || paused || !budget.over()) return;
    if (leading || budget.tryLead(this)) {
      leading = true;
      return;
    }
    paused = true;
    source.pause();
    waitAgain();
  }

  /** {@code n} received bytes were used up (a message translated): their reservation goes back. */
  public void consumed(long n) {
    long r = Math.min(growth * n, held);
    if (r <= 0) return;
    held -= r;
    budget.receiving(-r);
    budget.release(r);
    if (paused && !budget.over()) memoryAvailable();
  }

  /**
   * The request was read whole: the bytes stay reserved, now the caller's to release once decoded.
   *
   * @return the bytes the caller now holds in the budget
   */
  public long complete() {
    long kept = held;
    budget.receiving(-held);
    held = 0;
    end();
    return kept;
  }

  /** The request ended otherwise (refused, reset, answered early): what it holds goes back. */
  public void finish() {
    long h = held;
    held = 0;
    budget.receiving(-h);
    // Out of the queue and the lead before the bytes go back: the release wakes the next waiter,
    // not this request's own, which would resume a request that has ended.
    end();
    if (h > 0) budget.release(h);
  }

  public boolean paused() {
    return paused;
  }

  public boolean finished() {
    return finished;
  }

  private void end() {
    if (finished) return;
    finished = true;
    if (deadlineTimer >= 0) timers.cancel(deadlineTimer);
    if (waitTimer >= 0) timers.cancel(waitTimer);
    deadlineTimer = -1;
    waitTimer = -1;
    if (waiter != null) budget.cancel(waiter);
    waiter = null;
    if (leading) {
      leading = false;
      budget.yieldLead(this);
    }
  }

  private void memoryAvailable() {
    if (finished) return;
    if (waiter != null) budget.cancel(waiter);
    waiter = null;
    if (waitTimer >= 0) timers.cancel(waitTimer);
    waitTimer = -1;
    waitedNanos += timers.nowNanos() - waitStarted;
    if (budget.over()) {
      if (leading || budget.tryLead(this)) {
        leading = true; // woken to lead: read on through the full budget
      } else {
        // Someone else took the room first: queue again (the wait already spent still counts).
        waitAgain();
        return;
      }
    }
    paused = false;
    source.resume();
  }

  /** Still paused: back in the queue for memory, with what is left of memory_wait_timeout. */
  private void waitAgain() {
    waitStarted = timers.nowNanos();
    long left = memoryWaitNanos - waitedNanos;
    if (left <= 0) {
      listener.overloaded();
      return;
    }
    waitTimer = timers.set(Math.max(1, left / 1_000_000), () -> {
      waitTimer = -1;
      if (!finished) listener.overloaded();
    });
    waiter = budget.await(loop, this::memoryAvailable, held > 0 || source.pausedBytes() > 0);
  }
}
