package dev.veneur.proxy.routing;

/**
 * Splitting by owner: how many ways the metrics of a body are split, and which way each goes. The
 * HTTP verticles split every body with one of these while they scan it, so a metric's bytes go
 * straight to its owner's chunk.
 */
public interface Owners {
  /** How many ways: slots are {@code [0, ways())}. */
  int ways();

  /**
   * @param index the metric's position among the body's elements
   * @param keyHash CRC-32 of the metric's key ({@code name + type + tagstring})
   */
  int slot(int index, int keyHash);

  /** Tags left out of the key hash each slot is chosen by (v14's {@code ignore_tags}); none by default. */
  default dev.veneur.proxy.config.IgnoreTags keyIgnore() {
    return dev.veneur.proxy.config.IgnoreTags.NONE;
  }

  /** By the ring: slot {@code i} is {@code ring.member(i)}. */
  static Owners of(HashRing ring) {
    return new Owners() {
      @Override
      public int ways() {
        return ring.size();
      }

      @Override
      public int slot(int index, int keyHash) {
        return ring.ownerIndex(keyHash);
      }

      @Override
      public dev.veneur.proxy.config.IgnoreTags keyIgnore() {
        return ring.keyIgnore();
      }
    };
  }

  /** By position, in two: the first {@code firstHalf} metrics, then the rest (isolating refused metrics). */
  static Owners halves(int firstHalf) {
    return new Owners() {
      @Override
      public int ways() {
        return 2;
      }

      @Override
      public int slot(int index, int keyHash) {
        return index < firstHalf ? 0 : 1;
      }
    };
  }
}
