package dev.veneur.proxy.forward;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.veneur.proxy.forward.RetryPolicy.Verdict;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class RetryPolicyTest {
  private static GlobalClient.Outcome answer(int status, Throwable error, boolean timedOut) {
    return new GlobalClient.Outcome(status, error, timedOut, 1_000_000, "");
  }

  @Test
  void verdicts() {
    assertEquals(Verdict.DELIVERED, RetryPolicy.verdict(answer(202, null, false)));
    assertEquals(Verdict.DELIVERED, RetryPolicy.verdict(answer(200, null, false)));
    assertEquals(Verdict.DELIVERED_BADLY, RetryPolicy.verdict(answer(202, null, true)), "trickled past the deadline");
    assertEquals(Verdict.DELIVERED_BADLY, RetryPolicy.verdict(answer(202, new IOException("reset"), false)));
    for (int refused : new int[] {400, 413, 422}) {
      assertEquals(Verdict.REFUSED, RetryPolicy.verdict(answer(refused, null, false)), "HTTP " + refused);
    }
    for (int failed : new int[] {301, 401, 404, 429, 500, 503}) {
      assertEquals(Verdict.FAILED, RetryPolicy.verdict(answer(failed, null, false)), "HTTP " + failed);
    }
    assertEquals(Verdict.FAILED, RetryPolicy.verdict(answer(0, new IOException("refused"), false)));
    assertEquals(Verdict.FAILED, RetryPolicy.verdict(answer(0, null, true)));
  }

  @Test
  void backoffGrowsExponentiallyWithJitterUpToTheCap() {
    Duration base = Duration.ofMillis(100);
    for (int i = 0; i < 200; i++) {
      long first = RetryPolicy.backoffMs(base, 1);
      assertTrue(first >= 50 && first <= 100, "attempt 1: " + first);
      long third = RetryPolicy.backoffMs(base, 3);
      assertTrue(third >= 200 && third <= 400, "attempt 3: " + third);
      long late = RetryPolicy.backoffMs(base, 40);
      assertTrue(late >= RetryPolicy.MAX_BACKOFF_MS / 2 && late <= RetryPolicy.MAX_BACKOFF_MS, "attempt 40: " + late);
    }
    List<Long> seen = new ArrayList<>();
    for (int i = 0; i < 50; i++) seen.add(RetryPolicy.backoffMs(base, 5));
    assertTrue(seen.stream().distinct().count() > 1, "jittered: " + seen);
  }

  @Test
  void retriesWithinTheBudgetAndAlwaysOnce() {
    Duration budget = Duration.ofSeconds(10);
    Batch b = Batch.of(new ArrayList<>(List.of(Chunks.of(1, 10))));
    b.deadlineNanos = 1_000_000_000L;
    b.attempts = 1;
    assertTrue(RetryPolicy.mayRetry(b, 5_000_000_000L, 500, budget), "the first retry even past the deadline");
    b.attempts = 2;
    assertTrue(RetryPolicy.mayRetry(b, 400_000_000L, 500, budget));
    assertFalse(RetryPolicy.mayRetry(b, 600_000_000L, 500, budget), "the retry would start past the deadline");
    b.attempts = 1;
    assertFalse(RetryPolicy.mayRetry(b, 0, 1, Duration.ZERO), "a zero budget turns retries off");
  }
}
