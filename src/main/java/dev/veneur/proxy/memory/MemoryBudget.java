package dev.veneur.proxy.memory;

import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * One budget for every byte of metric data the proxy holds: request bodies as they arrive, the
 * scratch that grows while a body is decoded, queued chunks, batches being posted. Everything that
 * holds such bytes reserves them here first and releases them when it lets go, so
 * {@link #used()} is the proxy's data footprint at any instant.
 *
 * <p>Bytes that are already in memory (a network read that just arrived, the output of a decode
 * in progress) are reserved unconditionally: refusing them would not free them. What the budget
 * controls is whether more is <em>read</em>: readers ask {@link #over()} after each reservation and
 * pause their socket while it is true, waiting in {@link #await} (FIFO) until releases bring
 * {@link #used()} back under the limit. So the overshoot is bounded by what is already on its way
 * (one network read per connection, one decode per event loop), never by what senders declare.
 *
 * <p>Thread-safe: reservations and releases come from every event loop.
 */
public final class MemoryBudget {
  private final AtomicLong used = new AtomicLong();
  private final LongSupplier limit;
  private final ArrayDeque<Waiter> waiters = new ArrayDeque<>();
  /** About what one socket read delivers; the unit in which room is handed to waiters. */
  private static final long READ_QUANTUM = 64 * 1024;
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(MemoryBudget.class);
  /** Waiters not yet polled (cancelled ones included): lets a release skip the lock when zero. */
  private volatile int queuedWaiters;
  private volatile boolean warnedNegative;

  /** A paused reader: resumed on its own event loop when memory is available again. */
  public static final class Waiter {
    /** Where the reader runs: its event loop, so it is resumed on its own thread. */
    final java.util.concurrent.Executor loop;
    final Runnable resume;
    /** It holds part of a body: the kind of waiter that can lead (see {@link #tryLead}). */
    final boolean holdsBytes;
    boolean cancelled;
    boolean done;

    Waiter(java.util.concurrent.Executor loop, Runnable resume, boolean holdsBytes) {
      this.loop = loop;
      this.resume = resume;
      this.holdsBytes = holdsBytes;
    }
  }

  /** @param limit read on every check, so a reload of the key applies at once */
  public MemoryBudget(LongSupplier limit) {
    this.limit = limit;
  }

  public long limit() {
    return limit.getAsLong();
  }

  public long used() {
    return used.get();
  }

  /** True when readers should stop reading until memory is released. */
  public boolean over() {
    return used.get() >= limit.getAsLong();
  }

  /** Reserves bytes that are already held (or about to be, unavoidably). */
  public void reserve(long bytes) {
    if (bytes != 0) used.addAndGet(bytes);
  }

  /** Reserves only if it fits under the limit; for allocations that can be put off. */
  public boolean tryReserve(long bytes) {
    long max = limit.getAsLong();
    while (true) {
      long now = used.get();
      if (now + bytes > max && bytes > 0) return false;
      if (used.compareAndSet(now, now + bytes)) return true;
    }
  }

  public void release(long bytes) {
    if (bytes == 0) return;
    long now = used.addAndGet(-bytes);
    if (now < 0) {
      // A release without its reservation is a bug. Say so (Sentry sees ERROR) and clamp, so a
      // negative figure cannot loosen the limit; tests check the budget returns to exactly 0.
      if (!warnedNegative) {
        warnedNegative = true;
        LOG.error("memory budget released {} bytes more than was reserved; clamping to 0", -now);
      }
      used.compareAndSet(now, 0);
    }
    if (queuedWaiters > 0 && now < limit.getAsLong()) wake();
  }

  private final java.util.concurrent.atomic.AtomicReference<Object> leader =
      new java.util.concurrent.atomic.AtomicReference<>();

  /** Of {@link #used()}: bodies still arriving (partial), which only their own completion frees. */
  private final AtomicLong receiving = new AtomicLong();

  /** Bytes of bodies still arriving changed (they are reserved with {@link #reserve} as well). */
  public void receiving(long delta) {
    if (delta != 0) receiving.addAndGet(delta);
  }

  public long receiving() {
    return receiving.get();
  }

  /**
   * Lets {@code reader} go on reading while the budget is full, if no other reader does and if
   * partial bodies are what fill it: readers that pause keep what they read, and if their partial
   * bodies filled the budget between them, none could complete and release anything. When queued
   * data fills it instead, nobody leads: the globals' progress releases memory, and senders wait
   * (or get 503), which is the back-pressure. One leader at a time bounds the overshoot to one
   * body ({@code max_body_bytes}).
   */
  public boolean tryLead(Object reader) {
    if (receiving.get() < limit.getAsLong() / 2) return false;
    return leader.compareAndSet(null, reader);
  }

  /**
   * The leader is done; the longest-waiting reader that holds part of a body is woken even if the
   * budget is still full, to lead next (or, if none holds any, the first in line).
   */
  public void yieldLead(Object reader) {
    if (!leader.compareAndSet(reader, null)) return;
    Waiter next = null;
    synchronized (this) {
      for (Waiter w : waiters) {
        if (!w.cancelled && !w.done && w.holdsBytes) {
          next = w;
          break;
        }
      }
      if (next == null) {
        for (Waiter w : waiters) {
          if (!w.cancelled && !w.done) {
            next = w;
            break;
          }
        }
      }
      if (next != null) {
        waiters.remove(next);
        queuedWaiters--;
        next.done = true;
      }
    }
    if (next != null) {
      Waiter w = next;
      w.loop.execute(() -> {
        if (!w.cancelled) w.resume.run();
        else if (!over()) wake();
      });
    }
  }

  /** Waiting readers, for the {@code memory.waiting_requests} gauge. */
  public synchronized int waiting() {
    int n = 0;
    for (Waiter w : waiters) if (!w.cancelled) n++;
    return n;
  }

  /**
   * Runs {@code resume} through {@code loop} (the reader's event loop) once memory is under the
   * limit (at once if it is now). Waiters are resumed in arrival order, so a flood of new
   * connections cannot starve one that has waited longer.
   *
   * @param holdsBytes the waiter has read part of its body already
   */
  public Waiter await(java.util.concurrent.Executor loop, Runnable resume, boolean holdsBytes) {
    Waiter w = new Waiter(loop, resume, holdsBytes);
    synchronized (this) {
      waiters.add(w);
      queuedWaiters++;
    }
    if (!over()) wake();
    return w;
  }

  /** Forgets a waiter (its request was refused or its connection closed). */
  public synchronized void cancel(Waiter w) {
    if (w == null || w.cancelled) return;
    w.cancelled = true;
    if (!w.done && waiters.remove(w)) queuedWaiters--;
  }

  /**
   * Resumes as many waiters as the room left can feed one network read each (at least one), so a
   * large release does not wake a thousand readers into a thousand reads at once.
   */
  private void wake() {
    java.util.List<Waiter> go = new java.util.ArrayList<>();
    synchronized (this) {
      long room = limit.getAsLong() - used.get();
      long n = Math.max(1, room / READ_QUANTUM);
      while (!waiters.isEmpty() && go.size() < n) {
        Waiter w = waiters.poll();
        queuedWaiters--;
        if (w.cancelled || w.done) continue;
        w.done = true;
        go.add(w);
      }
    }
    for (Waiter w : go) {
      w.loop.execute(() -> {
        if (!w.cancelled) w.resume.run();
        else if (!over()) wake(); // pass the wake-up on rather than lose it
      });
    }
  }
}
