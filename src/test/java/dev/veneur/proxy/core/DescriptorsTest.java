package dev.veneur.proxy.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The descriptor arithmetic: the inbound cap gives way to the globals' pools and the reserve. */
class DescriptorsTest {

  @Test
  void theInboundCapLeavesRoomForEveryGlobalsPoolAndTheReserve() {
    Descriptors d = Descriptors.of(1024, 4096, 20, 8, 208);
    assertEquals(656, d.inboundCap());
    assertEquals(160, d.outbound());
    assertEquals(1024, d.need());
    assertTrue(d.lowered());
    assertFalse(d.short_());
    assertEquals(4096 + 160 + 208, d.wanted());
    assertTrue(d.explain().contains("lowered to 656"), d.explain());
  }

  @Test
  void aLargeLimitKeepsTheConfiguredCap() {
    Descriptors d = Descriptors.of(1_048_576, 4096, 100, 8, 208);
    assertEquals(4096, d.inboundCap());
    assertFalse(d.lowered());
  }

  @Test
  void moreGlobalsLowerTheCapFurtherAndTooManySayHowHighTheLimitMustGo() {
    assertEquals(1024 - 50 * 8 - 208, Descriptors.of(1024, 4096, 50, 8, 208).inboundCap());
    Descriptors d = Descriptors.of(1024, 4096, 200, 8, 208);
    assertEquals(Descriptors.MIN_INBOUND, d.inboundCap());
    assertTrue(d.short_());
    assertTrue(d.explain().contains("raise it to at least " + d.wanted()), d.explain());
  }

  @Test
  void anUnknownLimitLowersNothing() {
    assertEquals(4096, Descriptors.of(-1, 4096, 20, 8, 208).inboundCap());
  }

  @Test
  void acceptsOnlyWhileTheLastDescriptorsAreFreeByCount() {
    Descriptors d = Descriptors.of(1024, 4096, 20, 8, 208);
    // The counted plan allows the connection; the measured count decides as well.
    assertTrue(d.acceptsAt(890));
    assertTrue(d.acceptsAt(1024 - Descriptors.ACCEPT_HEADROOM - 1));
    assertFalse(d.acceptsAt(1024 - Descriptors.ACCEPT_HEADROOM));
    assertFalse(d.acceptsAt(1023));
    // Unknown count or unknown limit: the counted plan alone.
    assertTrue(d.acceptsAt(-1));
    assertTrue(Descriptors.of(-1, 4096, 20, 8, 208).acceptsAt(5000));
    // Counted only when the plan is tight: 656 + 160 + 208 + 2 x 96 is past 1024; with a raised limit not.
    assertTrue(d.tight());
    assertFalse(Descriptors.of(1_048_576, 4096, 20, 8, 208).tight());
  }

  @Test
  void theSampledCountFollowsDescriptorsOpenedAndClosed() throws Exception {
    int before = Descriptors.openNow();
    org.junit.jupiter.api.Assumptions.assumeTrue(before > 0, "this JVM cannot count its descriptors");
    java.util.List<java.nio.channels.FileChannel> opened = new java.util.ArrayList<>();
    java.nio.file.Path f = java.nio.file.Files.createTempFile("fd", ".tmp");
    try {
      for (int i = 0; i < 50; i++) opened.add(java.nio.channels.FileChannel.open(f));
      dev.veneur.proxy.support.Await.until("the sample sees 50 more", () -> Descriptors.openRecently() >= before + 50);
    } finally {
      for (var c : opened) c.close();
      java.nio.file.Files.delete(f);
    }
    dev.veneur.proxy.support.Await.until("the sample sees them closed", () -> Descriptors.openRecently() < before + 50);
  }
}
