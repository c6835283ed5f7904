package dev.veneur.proxy.tools;

import dev.veneur.proxy.routing.HashRing;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * How many keys move when one of N ring members leaves, measured on the Go-compatible ring
 * (20 virtual nodes per member) over a large key set, next to the ideal 1/N. Each N is averaged
 * over every choice of leaver and several member-address sets, since with only 20 virtual nodes
 * the share of one member varies a lot.
 *
 * <p>{@code java -cp "$(scripts/tools-classpath)" dev.veneur.proxy.tools.Churn [keys]}
 */
public final class Churn {
  private Churn() {}

  public static void main(String[] args) {
    int keys = args.length > 0 ? Integer.parseInt(args[0]) : 1_000_000;
    int[] hashes = new int[keys];
    SplittableRandom rnd = new SplittableRandom(42);
    for (int i = 0; i < keys; i++) {
      hashes[i] = HashRing.hashKey("svc." + rnd.nextInt(5000) + ".metric" + i + "counter" + "env:prod,host:h" + rnd.nextInt(2000));
    }
    System.out.printf("%d keys; one member of N leaves%n", keys);
    System.out.printf("%4s  %10s  %10s  %10s  %10s%n", "N", "ideal 1/N", "mean moved", "min", "max");
    for (int n : new int[] {2, 3, 5, 10, 20, 50}) {
      double sum = 0;
      double min = 1;
      double max = 0;
      int trials = 0;
      for (int set = 0; set < 3; set++) {
        List<String> members = new ArrayList<>();
        for (int m = 0; m < n; m++) members.add("http://10." + set + "." + (m / 250) + "." + (m % 250 + 1) + ":8000");
        HashRing full = HashRing.of(members);
        int[] owner = new int[keys];
        for (int k = 0; k < keys; k++) owner[k] = full.ownerIndex(hashes[k]);
        for (int leave = 0; leave < n; leave++) {
          List<String> rest = new ArrayList<>(members);
          String gone = rest.remove(leave);
          HashRing smaller = HashRing.of(rest);
          int moved = 0;
          for (int k = 0; k < keys; k++) {
            if (!full.members().get(owner[k]).equals(smaller.owner(hashes[k]))) moved++;
          }
          double f = moved / (double) keys;
          sum += f;
          min = Math.min(min, f);
          max = Math.max(max, f);
          trials++;
          if (gone == null) throw new IllegalStateException();
        }
      }
      System.out.printf("%4d  %10.4f  %10.4f  %10.4f  %10.4f%n", n, 1.0 / n, sum / trials, min, max);
    }
  }
}
