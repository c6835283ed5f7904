package dev.veneur.proxy.bus;

/**
 * Where a chunk is kept on disk with {@code spill_dir}, as the rest of the pipeline sees it: the
 * spill package implements it, every other stage only settles or splits it. An interface here, so
 * the message type does not depend on the storage behind it.
 */
public interface SpillMark {
  /** The chunk was replaced by {@code n} parts carrying this mark. */
  void split(int n);

  /** A part (or the chunk) was delivered or dropped for good. */
  void settled();
}
