package dev.veneur.proxy.ingest;

import dev.veneur.proxy.bus.MetricChunk;
import dev.veneur.proxy.memory.MemoryBudget;
import dev.veneur.proxy.routing.Owners;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;

/**
 * The bytes work of one HTTP event loop: decodes bodies window by window, scans each metric as
 * the global will read it, routes it, and deflates it into one chunk per destination. Requests and
 * re-routing jobs queue here and are worked one at a time, in slices of a few hundred kilobytes,
 * so a huge body never holds the event loop for long and only one set of deflaters is needed per
 * event loop however many requests are open.
 *
 * <p>Memory: the window holds the element being scanned (it grows, up to {@code max_metric_bytes},
 * only for an element larger than it, and shrinks back after); chunks are compressed as they are
 * built. Both are reserved in the memory budget.
 */
public final class Ingester {
  /** A unit of work: a body to decode and where its metrics go. */
  public interface Task {
    /** Opens the task's body on {@code source}; may throw {@link ImportRefusal}. */
    void open(BodySource source);

    Owners router();

    /** The request its metrics belong to, kept on chunks for {@code proxy.duration_ns}; or null. */
    dev.veneur.proxy.bus.RequestTrace trace();

    /** The spill record its metrics are kept under (re-splitting a spilled chunk), or null. */
    default dev.veneur.proxy.bus.SpillMark spill() {
      return null;
    }

    /**
     * Its metrics were already accepted once (re-routing a chunk): the size limits that protect
     * the proxy from senders do not apply to them again (a reload may have lowered them).
     */
    default boolean trusted() {
      return false;
    }

    /**
     * Not null: this task's metrics may share chunks with tasks queued behind it that have the
     * same key (by identity: the ring snapshot they are routed on). Such a task is told
     * {@link #scanned} instead of {@link #done}, and the group's chunks go to the {@link Groups}.
     */
    default Object mergeKey() {
      return null;
    }

    /**
     * Its body is scanned (a merging task). True keeps its metrics in the group's chunks; false
     * takes them back (the task has answered its sender already, e.g. nothing usable in it).
     */
    default boolean scanned(Result result) {
      throw new UnsupportedOperationException("not a merging task");
    }

    void done(Result result);

    void failed(ImportRefusal refusal);

    /**
     * Its body may be forwarded as it came (a {@link MetricChunk#whole} chunk) if every metric in
     * it is valid and its router has one slot: a zlib {@code /import} body for the one HTTP global
     * there is. Such a task is scanned without being deflated; if the scan finds it cannot go as
     * it came (a metric dropped, bytes after the array), it is scanned again the usual way.
     */
    default boolean mayPassThrough() {
      return false;
    }

    /**
     * The body as it came, for its whole chunk: a copy, asked once, after its scan, with its
     * metrics and the bytes it decodes to; null if it may not go as it came after all (a batch
     * that large would be over the configured batch limits).
     */
    default byte[] passThroughBody(int metrics, long decodedBytes) {
      return null;
    }
  }

  /**
   * Receives the chunks of a group of merging tasks (see {@link Task#mergeKey()}): every metric
   * the tasks kept, one chunk per router slot (null where none went), reserved in the budget.
   */
  public interface Groups {
    void done(List<Task> tasks, List<Result> results, MetricChunk[] chunks);

    /** The group cannot be completed (the Ingester is closing): answer its tasks. */
    void abandoned(List<Task> tasks, List<Result> results);
  }

  /** What a task produced. */
  public static final class Result {
    /** One chunk per router slot; null where no metric went. Reserved in the budget. */
    public final MetricChunk[] chunks;
    public int valid;
    /** Elements the global would refuse, or could not use (no type), or empty ones. */
    public int refused;
    public int incomplete;
    public int empty;
    /** One reason a metric was refused, for a log line. */
    public String refusal;

    Result(int ways) {
      chunks = new MetricChunk[ways];
    }

    public int dropped() {
      return refused + incomplete + empty;
    }

    /** Gives the chunks' memory back, for a task that decides not to use them. */
    public void release(MemoryBudget budget) {
      for (int d = 0; d < chunks.length; d++) {
        if (chunks[d] != null) budget.release(chunks[d].bytes());
        chunks[d] = null;
      }
    }
  }

  private static final int WINDOW_BASE = 256 * 1024;
  /** Bytes scanned per event-loop turn before yielding to other events. */
  private static final int SLICE = 512 * 1024;

  /** Runs the next slice later on this event loop (the verticle's context). */
  private final Executor later;
  private final MemoryBudget budget;
  private final BodySource source;
  private final ArrayDeque<Task> queue = new ArrayDeque<>();
  private final List<ChunkWriter> writers = new ArrayList<>();
  /** Shared by this ingester's writers (one thread; each of its calls stands alone). */
  private final dev.veneur.proxy.wire.FastDeflater fast = new dev.veneur.proxy.wire.FastDeflater();
  private GoJsonScanner scanner;
  private GoJsonScanner senderScanner;
  private int scannerMaxString;
  private final GoJsonScanner trustedScanner = new GoJsonScanner(Integer.MAX_VALUE);
  private byte[] window = new byte[WINDOW_BASE];
  /**
   * The ingester's own window while {@link #window} is a body decoded whole by libdeflate,
   * scanned where it lies ({@link BodySource#takeWhole}) instead of copied in; else null.
   */
  private byte[] own;
  /** Bodies scanned where libdeflate decoded them (for tests). */
  long scannedInPlace;

  private Task task;
  /** The task is being scanned for a whole chunk: nothing is deflated (see {@link Task#mayPassThrough}). */
  private boolean passing;
  /** Bytes of the decoded body moved out of the window so far (so fill + this = bytes decoded). */
  private long shifted;
  private Owners router;
  private Result result;
  private int pos;
  private int fill;
  private boolean eof;
  private boolean scheduled;
  private boolean closed;

  /** Settings read per task, so a reload applies from the next body on. */
  public interface Limits {
    int maxStringLength();

    int maxMetricBytes();

    int compressionLevel();

    /** Chunks are deflated by the proxy's own {@code FastDeflater}, not zlib ({@code forward_compressor: fast}). */
    default boolean fastCompressor() {
      return false;
    }

    /**
     * The proxy's: max_string_length, max_metric_bytes, forward_compression_level,
     * forward_compressor, as now configured.
     */
    static Limits of(java.util.function.Supplier<dev.veneur.proxy.config.ProxyConfig> config) {
      return new Limits() {
        @Override
        public int maxStringLength() {
          return config.get().maxStringLength;
        }

        @Override
        public int maxMetricBytes() {
          return config.get().maxMetricBytes;
        }

        @Override
        public int compressionLevel() {
          return config.get().forwardCompressionLevel;
        }

        @Override
        public boolean fastCompressor() {
          return config.get().forwardCompressorFast;
        }
      };
    }
  }

  private final Limits limits;
  private final Groups groups;

  /**
   * Merging: tasks that finished scanning and whose metrics wait, still staged, for the tasks
   * queued behind them to be added to the same chunks. One chunk per destination per request is a
   * fresh deflate stream, a bus message and a place in a batch each; with 100 globals a
   * 1000-metric body makes 100 chunks of ~10 metrics, whose fixed cost outweighed the bytes (issue
   * 21). Only tasks already queued are merged, never waited for, so no answer is delayed by more
   * than the scanning of bodies that were waiting anyway, and at most {@link #GROUP_BYTES}.
   */
  private final List<Task> group = new ArrayList<>();
  private final List<Result> groupResults = new ArrayList<>();
  private Object groupKey;
  private long groupBytes;
  /** A group ends when its bodies hold this much JSON, or this many bodies, whichever first. */
  static final long GROUP_BYTES = 1L << 20;
  static final int GROUP_TASKS = 256;

  public Ingester(Executor later, MemoryBudget budget, Limits limits) {
    this(later, budget, limits, null);
  }

  /** @param groups where merged chunks go; null never merges */
  public Ingester(Executor later, MemoryBudget budget, Limits limits, Groups groups) {
    this(later, budget, limits, groups, true);
  }

  /** @param nativeInflate libdeflate decodes whole bodies first (where it loaded); false: zlib alone */
  Ingester(Executor later, MemoryBudget budget, Limits limits, Groups groups, boolean nativeInflate) {
    this.later = later;
    this.budget = budget;
    this.source = new BodySource(budget, nativeInflate);
    this.limits = limits;
    this.groups = groups;
  }

  /** Tasks waiting or running here. */
  public int backlog() {
    return queue.size() + (task == null ? 0 : 1);
  }

  public void submit(Task t) {
    if (closed) {
      t.failed(new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"));
      return;
    }
    queue.add(t);
    schedule();
  }

  private void schedule() {
    if (scheduled) return;
    scheduled = true;
    later.execute(() -> {
      scheduled = false;
      work();
    });
  }

  private void work() {
    if (closed) {
      // Closed while a body was being worked on (the stop's grace ran out): its writers are gone.
      Task t = task;
      task = null;
      router = null;
      result = null;
      source.close();
      if (t != null) t.failed(new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"));
      return;
    }
    try {
      if (task == null) {
        if (!group.isEmpty() && !joins(queue.peek())) finishGroup();
        task = queue.poll();
        if (task == null) return;
        if (!start()) return;
      }
      if (slice()) finish();
    } catch (ImportRefusal r) {
      Task t = task;
      abandon();
      if (t != null) t.failed(r);
    } catch (Throwable e) {
      // A bug must cost one body, never wedge the queue behind it.
      Task t = task;
      abandon();
      if (t != null) t.failed(new ImportRefusal(500, "internal", "internal error decoding the body: " + e));
      throw e;
    } finally {
      if (task != null || !queue.isEmpty()) schedule();
      else if (!group.isEmpty()) finishGroup();
    }
  }

  /** Whether {@code next} may be added to the open group. */
  private boolean joins(Task next) {
    return next != null && next.mergeKey() != null && next.mergeKey() == groupKey
        && groupBytes < GROUP_BYTES && group.size() < GROUP_TASKS;
  }

  /** Opens the next task; false if it failed at once (it has been told). */
  private boolean start() {
    int maxString = limits.maxStringLength();
    if (senderScanner == null || scannerMaxString != maxString) {
      senderScanner = new GoJsonScanner(maxString);
      scannerMaxString = maxString;
    }
    scanner = task.trusted() ? trustedScanner : senderScanner;
    scanner.reset();
    router = task.router();
    scanner.ignore = router.keyIgnore();
    scanner.hashKeys = router.ways() > 1;
    result = new Result(router.ways());
    // Tasks that may pass through never merge (mergeKey null), so no group is open here.
    passing = task.mayPassThrough() && router.ways() == 1 && group.isEmpty();
    if (passing) {
      // Nothing to begin: the writers are begun only if the body has to be scanned again.
    } else if (group.isEmpty()) {
      beginWriters();
    } else {
      // Joining the group (same ring, so the same slots): what is staged now can be taken back.
      for (int d = 0; d < router.ways(); d++) writers.get(d).mark();
    }
    rewind();
    try {
      task.open(source);
      return true;
    } catch (ImportRefusal r) {
      Task t = task;
      abandon();
      t.failed(r);
      return false;
    }
  }

  /** Scans up to a slice; true when the body is done. */
  private boolean slice() {
    int scanned = 0;
    while (scanned < SLICE) {
      int step = scanner.next(window, pos, fill, eof);
      if (step == GoJsonScanner.METRIC) {
        scanned += scanner.end - pos;
        int index = scanner.elements - 1;
        switch (scanner.verdict) {
          case GoJsonScanner.VALID:
            result.valid++;
            if (passing) break;
            ChunkWriter w = writers.get(router.slot(index, scanner.keyHash));
            // Bodies of the group before this one must stay separable from it: before this one
            // would reach a deflater, they get their chunks and this one starts the group anew.
            if (!group.isEmpty() && w.wouldFeed(scanner.end - scanner.start)) cutGroup();
            w.add(window, scanner.start, scanner.end);
            break;
          case GoJsonScanner.REFUSED:
            result.refused++;
            if (result.refusal == null) result.refusal = scanner.refusal;
            break;
          case GoJsonScanner.INCOMPLETE:
            result.incomplete++;
            break;
          default:
            result.empty++;
        }
        pos = scanner.end;
      } else if (step == GoJsonScanner.NEED_MORE) {
        // The element will be scanned again from its start over the refilled window: count
        // that toward the slice, so one huge element cannot hold the event loop either.
        scanned += refill();
      } else {
        // Go's decoder reads one JSON value and ignores whatever follows it; so does this.
        return true;
      }
    }
    return false;
  }

  /**
   * Keeps the unfinished element, makes room, and fills the window with more of the body (all of
   * it: an element is scanned again from its start after each refill, so a small refill would
   * make a large element cost its size squared). Returns the bytes the next scan may cover.
   */
  private int refill() {
    if (fill == 0 && shifted == 0 && !eof && own == null) {
      // A body no larger than the window may grow to is scanned in place: the same bytes in one
      // window, the same verdicts, one copy fewer.
      byte[] whole = source.takeWhole(task.trusted() ? Integer.MAX_VALUE - 64 : limits.maxMetricBytes());
      if (whole != null) {
        scannedInPlace++;
        own = window;
        window = whole;
        fill = source.wholeLength();
        eof = true;
        pos = 0;
        return fill;
      }
    }
    int keep = scanner.resumeAt();
    if (keep > 0) {
      System.arraycopy(window, keep, window, 0, fill - keep);
      fill -= keep;
      shifted += keep;
    }
    pos = 0;
    if (fill == window.length) {
      int max = task.trusted() ? Integer.MAX_VALUE - 64 : limits.maxMetricBytes();
      if (window.length >= max) {
        throw new ImportRefusal(400, "too_long", "metric " + scanner.elements
            + " is larger than max_metric_bytes (" + max + " bytes)");
      }
      int bigger = (int) Math.min((long) window.length * 2, max);
      budget.reserve(bigger - window.length);
      window = java.util.Arrays.copyOf(window, bigger);
    }
    if (deferred != null) throw deferred;
    int before = fill;
    while (fill < window.length) {
      int n;
      try {
        n = source.read(window, fill, window.length - fill);
      } catch (ImportRefusal r) {
        // A stream corrupt or cut short past what was read: Go's decoder would fail only if it
        // needed those bytes, so fail only when (if) the scanner asks for more.
        if (fill == before || r.status != 400) throw r;
        deferred = r;
        break;
      }
      if (n < 0) {
        eof = true;
        break;
      }
      fill += n;
    }
    return fill;
  }

  /** A decoding error met while filling ahead of the scanner, raised if the scanner needs more. */
  private ImportRefusal deferred;

  private void finish() {
    Task t = task;
    Result r = result;
    if (passing) {
      passing = false;
      if (!passedThrough(t, r)) again();
      return;
    }
    if (groups != null && t.mergeKey() != null) {
      int ways = router.ways();
      boolean first = group.isEmpty();
      long bytes = 0;
      for (int d = 0; d < ways; d++) bytes += writers.get(d).raw();
      // The writers keep the group's metrics (and their output so far): not trimmed here.
      cleanup(false);
      if (t.scanned(r)) {
        if (first) groupKey = t.mergeKey();
        group.add(t);
        groupResults.add(r);
        groupBytes = bytes;
        groupWays = ways;
      } else if (!first) {
        for (int d = 0; d < ways; d++) writers.get(d).rollback();
      }
      // Else it was alone: the next task begins the writers afresh.
      return;
    }
    dev.veneur.proxy.bus.RequestTrace trace = t.trace();
    dev.veneur.proxy.bus.SpillMark spill = t.spill();
    for (int d = 0; d < r.chunks.length; d++) r.chunks[d] = writers.get(d).finish(trace, spill);
    cleanup();
    t.done(r);
  }

  /**
   * The scanned body goes as it came, if it may: every element a valid metric, nothing but
   * whitespace after the array, and the whole of it decoded (so its length is known). Then its
   * task is done with one whole chunk, reserved in the budget.
   */
  private boolean passedThrough(Task t, Result r) {
    if (r.dropped() != 0 || r.valid == 0 || !eof) return false;
    for (int i = scanner.resumeAt(); i < fill; i++) {
      byte c = window[i];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return false;
    }
    long decoded = shifted + fill;
    if (decoded > Integer.MAX_VALUE) return false;
    byte[] body = t.passThroughBody(r.valid, decoded);
    if (body == null) return false;
    budget.reserve(body.length);
    MetricChunk whole = MetricChunk.whole(body, (int) decoded, r.valid, t.trace());
    whole.spill = t.spill();
    r.chunks[0] = whole;
    cleanup();
    t.done(r);
    return true;
  }

  /** Scans the task's body again from its start, the usual way (it could not pass through). */
  private void again() {
    source.close();
    scanner.reset();
    result = new Result(router.ways());
    beginWriters();
    rewind();
    // May throw ImportRefusal, which work() answers as for any other.
    task.open(source);
  }

  /** Fresh chunks, one writer per slot of the task's router, at the configured compression. */
  private void beginWriters() {
    int level = limits.compressionLevel();
    boolean useFast = limits.fastCompressor();
    while (writers.size() < router.ways()) writers.add(new ChunkWriter(budget, level, fast));
    for (int d = 0; d < router.ways(); d++) writers.get(d).begin(level, useFast);
  }

  /** Back to the ingester's own window, after scanning a body where it was decoded. */
  private void giveBackWindow() {
    if (own != null) {
      window = own;
      own = null;
    }
  }

  /** The window empty and the body unread, before the task's body is opened. */
  private void rewind() {
    giveBackWindow();
    pos = 0;
    fill = 0;
    eof = false;
    deferred = null;
    shifted = 0;
  }

  /** Slots of the open group. */
  private int groupWays;

  /** The group's chunks (everything staged and fed), to the {@link Groups}. */
  private void finishGroup() {
    MetricChunk[] chunks = new MetricChunk[groupWays];
    dev.veneur.proxy.bus.RequestTrace trace = groupTrace();
    for (int d = 0; d < groupWays; d++) chunks[d] = writers.get(d).finish(trace);
    handGroup(chunks);
  }

  /**
   * The group's chunks from what was staged before the task being scanned joined it; that task's
   * metrics so far stay in the writers and it goes on as the first of a new group.
   */
  private void cutGroup() {
    MetricChunk[] chunks = new MetricChunk[groupWays];
    dev.veneur.proxy.bus.RequestTrace trace = groupTrace();
    for (int d = 0; d < groupWays; d++) chunks[d] = writers.get(d).cut(trace);
    handGroup(chunks);
  }

  private dev.veneur.proxy.bus.RequestTrace groupTrace() {
    if (group.size() == 1) return group.get(0).trace();
    List<dev.veneur.proxy.bus.RequestTrace> traces = new ArrayList<>(group.size());
    for (Task t : group) traces.add(t.trace());
    return dev.veneur.proxy.bus.RequestTrace.merged(traces);
  }

  private void handGroup(MetricChunk[] chunks) {
    List<Task> tasks = new ArrayList<>(group);
    List<Result> results = new ArrayList<>(groupResults);
    group.clear();
    groupResults.clear();
    groupKey = null;
    groupBytes = 0;
    for (int d = groupWays; d < writers.size(); d++) writers.get(d).trim();
    for (int d = 0; d < groupWays; d++) writers.get(d).trim();
    groups.done(tasks, results, chunks);
  }

  private void abandon() {
    // A task that joined a group takes back only its own metrics; the group's are kept.
    if (!group.isEmpty() && router != null) {
      for (int d = 0; d < router.ways(); d++) writers.get(d).rollback();
    }
    cleanup();
  }

  private void cleanup() {
    cleanup(group.isEmpty());
  }

  private void cleanup(boolean trimWriters) {
    task = null;
    passing = false;
    router = null;
    result = null;
    giveBackWindow();
    source.close();
    if (window.length > WINDOW_BASE) {
      budget.release(window.length - WINDOW_BASE);
      window = new byte[WINDOW_BASE];
    }
    if (trimWriters) for (ChunkWriter w : writers) w.trim();
    if (scanner != null) scanner.trim();
  }

  /** Refuses what is queued and frees native memory; the verticle is stopping. */
  public void close() {
    closed = true;
    Task t;
    while ((t = queue.poll()) != null) {
      t.failed(new ImportRefusal(503, "shutting_down", "the proxy is shutting down; retry elsewhere"));
    }
    if (!group.isEmpty()) {
      List<Task> tasks = new ArrayList<>(group);
      List<Result> results = new ArrayList<>(groupResults);
      group.clear();
      groupResults.clear();
      groups.abandoned(tasks, results);
    }
    for (ChunkWriter w : writers) w.close();
    writers.clear();
  }
}
