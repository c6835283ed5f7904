package dev.veneur.proxy.ingest.grpc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.grpc.common.GrpcMessage;
import io.vertx.grpc.common.MessageSizeOverflowException;
import io.vertx.grpc.common.WireFormat;
import io.vertx.grpc.common.impl.Http2GrpcMessageDeframer;
import java.io.ByteArrayOutputStream;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * What the deframer is handed: the very bytes that arrived, in order, one whole message per
 * buffer, each message that spanned frames in one buffer of its exact size; after a message over
 * the limit (the deframer's own test, checked against it), everything as it arrives. And what
 * holding costs: about the bytes held, whatever the framing.
 */
class MessageGatherTest {
  private static final int MAX = 4096;

  /** A gRPC message: the 5-byte prefix (uncompressed, big-endian length) and a payload. */
  private static byte[] message(SplittableRandom rnd, int len) {
    byte[] m = new byte[5 + len];
    m[1] = (byte) (len >>> 24);
    m[2] = (byte) (len >>> 16);
    m[3] = (byte) (len >>> 8);
    m[4] = (byte) len;
    for (int i = 5; i < m.length; i++) m[i] = (byte) rnd.nextInt(256);
    return m;
  }

  /** Cuts {@code body} into frames of random sizes from 1 to {@code maxFrame} bytes. */
  private static List<Buffer> frames(SplittableRandom rnd, byte[] body, int maxFrame) {
    List<Buffer> out = new ArrayList<>();
    for (int at = 0; at < body.length; ) {
      int n = Math.min(body.length - at, 1 + rnd.nextInt(maxFrame));
      out.add(Buffer.buffer().appendBytes(body, at, n));
      at += n;
    }
    return out;
  }

  /** The array under a Vert.x buffer ({@code getByteBuf()} is a slice of its readable bytes). */
  private static io.netty.buffer.ByteBuf array(Buffer b) {
    io.netty.buffer.ByteBuf view = ((BufferInternal) b).getByteBuf();
    return view.unwrap() == null ? view : view.unwrap();
  }

  @Test
  void handsOnTheSameBytesOneWholeMessageAtATime() {
    SplittableRandom rnd = new SplittableRandom(7);
    for (int t = 0; t < 3000; t++) {
      // Small frames and messages, or frames up to HTTP/2's 16 KiB and messages of tens of KB (the
      // frames held as they came).
      boolean large = t % 2 == 1;
      int maxLen = large ? 40_000 : 3000;
      List<byte[]> messages = new ArrayList<>();
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      int count = 1 + rnd.nextInt(6);
      for (int m = 0; m < count; m++) {
        byte[] msg = message(rnd, rnd.nextInt(4) == 0 ? rnd.nextInt(3) : rnd.nextInt(maxLen));
        messages.add(msg);
        body.writeBytes(msg);
      }
      MessageGather g = new MessageGather(large ? 1 << 20 : MAX, true);
      List<Buffer> handed = new ArrayList<>();
      for (Buffer f : frames(rnd, body.toByteArray(), 1 + rnd.nextInt(large ? 16384 : 1200))) {
        g.accept(f, handed::add);
        assertTrue(g.heldCapacity() <= 2L * g.heldBytes() + 64, "held " + g.heldBytes() + " in " + g.heldCapacity());
      }
      assertEquals(0, g.heldBytes(), "every message ended: nothing is held");
      assertEquals(messages.size(), handed.size(), "one buffer per message");
      for (int m = 0; m < messages.size(); m++) assertArrayEquals(messages.get(m), handed.get(m).getBytes(), "message " + m);
    }
  }

  @Test
  void aMessageSpanningFramesGoesOnInOneBufferOfItsSize() {
    SplittableRandom rnd = new SplittableRandom(3);
    byte[] m = message(rnd, 150_000);
    MessageGather g = new MessageGather(1 << 20, true);
    List<Buffer> handed = new ArrayList<>();
    for (Buffer f : frames(rnd, m, 16384)) g.accept(f, handed::add);
    assertEquals(1, handed.size());
    assertEquals(m.length, array(handed.get(0)).capacity(), "exact size: nothing grew by doubling");
    assertArrayEquals(m, handed.get(0).getBytes());
  }

  @Test
  void allocatesByWhatArrivedNotByWhatIsDeclared() {
    com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    List<Buffer> handed = new ArrayList<>();
    long allocated = 0;
    // Measured on the last of a few rounds, so the first calls' class loading is not what counts.
    for (int round = 0; round < 5; round++) {
      MessageGather g = new MessageGather(64 << 20, true);
      Buffer prefix = Buffer.buffer(new byte[] {0, 0x02, 0, 0, 0}); // declares 32 MiB
      Buffer ten = Buffer.buffer(new byte[10]);
      long before = threads.getCurrentThreadAllocatedBytes();
      g.accept(prefix, handed::add);
      g.accept(ten, handed::add);
      allocated = threads.getCurrentThreadAllocatedBytes() - before;
      assertEquals(15, g.heldBytes());
    }
    assertTrue(handed.isEmpty());
    // A small staging buffer and its objects (~200 bytes), not the 32 MiB declared, nor a
    // staging buffer's full size for a stream that may stop here.
    assertTrue(allocated < MessageGather.STAGE, "allocated " + allocated + " bytes to hold 15");
  }

  @Test
  void tinyFramesCostAboutTheirBytes() {
    // A client sending a 1 MiB message one byte per DATA frame: what is held stays a few buffers
    // per staging size, not an object per byte.
    MessageGather g = new MessageGather(4 << 20, true);
    List<Buffer> handed = new ArrayList<>();
    byte[] m = message(new SplittableRandom(1), 1 << 20);
    int sent = 300_000;
    for (int i = 0; i < sent; i++) g.accept(Buffer.buffer(new byte[] {m[i]}), handed::add);
    assertEquals(sent, g.heldBytes());
    assertTrue(g.heldPieces() <= 16 + sent / MessageGather.STAGE, "held in " + g.heldPieces() + " buffers");
    assertTrue(g.heldCapacity() <= 2L * sent + 64, "held " + sent + " bytes in " + g.heldCapacity());
    for (int i = sent; i < m.length; i++) g.accept(Buffer.buffer(new byte[] {m[i]}), handed::add);
    assertEquals(1, handed.size());
    assertArrayEquals(m, handed.get(0).getBytes());
  }

  @Test
  void largeAndTinyFramesInTurnCostAboutTheirBytes() {
    // The worst case of keeping large frames and staging small ones: each tiny frame after a large
    // one starts a staging buffer of its own.
    byte[] m = message(new SplittableRandom(2), 1 << 20);
    MessageGather g = new MessageGather(4 << 20, true);
    List<Buffer> handed = new ArrayList<>();
    int at = 0;
    while (at < m.length) {
      int n = Math.min(m.length - at, (at / 7) % 2 == 0 ? MessageGather.STAGE : 1);
      g.accept(Buffer.buffer().appendBytes(m, at, n), handed::add);
      at += n;
      if (at < m.length) {
        assertTrue(g.heldCapacity() <= 2L * g.heldBytes() + 4096, "held " + g.heldBytes() + " in " + g.heldCapacity());
      }
    }
    assertEquals(1, handed.size());
    assertArrayEquals(m, handed.get(0).getBytes());
  }

  @Test
  void aFramesTailIsCopiedNotTheFrameKeptAlive() {
    SplittableRandom rnd = new SplittableRandom(9);
    byte[] a = message(rnd, 10_000);
    byte[] b = message(rnd, 50_000);
    Buffer frame = Buffer.buffer().appendBytes(a).appendBytes(b, 0, 6_000);
    MessageGather g = new MessageGather(1 << 20, true);
    List<Buffer> handed = new ArrayList<>();
    g.accept(frame, handed::add);
    assertEquals(1, handed.size());
    assertEquals(6_000, g.heldBytes());
    // Held as copies: writing over the frame (its message a handed on and done) changes nothing held.
    for (int i = a.length; i < frame.length(); i++) frame.setByte(i, (byte) 0x55);
    g.accept(Buffer.buffer().appendBytes(b, 6_000, b.length - 6_000), handed::add);
    assertArrayEquals(b, handed.get(1).getBytes());
  }

  @Test
  void afterAMessageOverTheLimitEverythingGoesOnAsItArrives() {
    SplittableRandom rnd = new SplittableRandom(11);
    for (int t = 0; t < 500; t++) {
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      body.writeBytes(message(rnd, rnd.nextInt(2000)));
      body.writeBytes(message(rnd, MAX + 1 + rnd.nextInt(3000)));
      body.writeBytes(message(rnd, rnd.nextInt(2000)));
      byte[] bytes = body.toByteArray();
      MessageGather g = new MessageGather(MAX, true);
      List<Buffer> frames = frames(rnd, bytes, 1 + rnd.nextInt(900));
      List<Buffer> handed = new ArrayList<>();
      for (Buffer f : frames) g.accept(f, handed::add);
      ByteArrayOutputStream joined = new ByteArrayOutputStream();
      for (Buffer b : handed) joined.writeBytes(b.getBytes());
      assertArrayEquals(bytes, joined.toByteArray());
      // The last frame went on as it came: the call is in the deframer's hands.
      assertSame(frames.get(frames.size() - 1), handed.get(handed.size() - 1));
      assertEquals(0, g.heldBytes());
    }
  }

  @Test
  void anOversizePrefixSplitAcrossFramesGoesOnAsItCame() {
    byte[] prefix = {0, 0, 0, 0x20, 0}; // 8192, over MAX
    MessageGather g = new MessageGather(MAX, true);
    List<Buffer> handed = new ArrayList<>();
    g.accept(Buffer.buffer(new byte[] {prefix[0], prefix[1]}), handed::add);
    assertTrue(handed.isEmpty());
    Buffer rest = Buffer.buffer(new byte[] {prefix[2], prefix[3], prefix[4], 7, 7, 7});
    g.accept(rest, handed::add);
    ByteArrayOutputStream joined = new ByteArrayOutputStream();
    for (Buffer b : handed) joined.writeBytes(b.getBytes());
    assertArrayEquals(new byte[] {0, 0, 0, 0x20, 0, 7, 7, 7}, joined.toByteArray());
    Buffer next = Buffer.buffer(new byte[] {1, 2, 3});
    g.accept(next, handed::add);
    assertSame(next, handed.get(handed.size() - 1), "raw from there on");
  }

  @Test
  void theLimitIsTheDeframersOwn() throws Exception {
    SplittableRandom rnd = new SplittableRandom(5);
    for (int len : new int[] {MAX - 1, MAX, MAX + 1, MAX + 2}) {
      byte[] m = message(rnd, len);
      MessageGather g = new MessageGather(MAX, true);
      List<Buffer> handed = new ArrayList<>();
      g.accept(Buffer.buffer().appendBytes(m, 0, 100), handed::add);
      g.accept(Buffer.buffer().appendBytes(m, 100, m.length - 100), handed::add);
      // Vert.x gRPC's deframer, with the same limit, fed what the gather handed on.
      Http2GrpcMessageDeframer deframer = new Http2GrpcMessageDeframer(null, WireFormat.PROTOBUF);
      deframer.maxMessageSize(MAX);
      for (Buffer b : handed) deframer.update(b);
      Object first = deframer.next();
      if (len <= MAX) {
        assertEquals(1, handed.size(), "gathered: " + len);
        assertInstanceOf(GrpcMessage.class, first);
        assertEquals(len, ((GrpcMessage) first).payload().length());
        assertNull(deframer.next());
      } else {
        assertEquals(2, handed.size(), "passed on as it came: " + len);
        assertInstanceOf(MessageSizeOverflowException.class, first);
      }
    }
  }

  @Test
  void closedTakesNothingMoreEvenInTheMiddleOfAFrame() {
    SplittableRandom rnd = new SplittableRandom(13);
    byte[] a = message(rnd, 100);
    byte[] b = message(rnd, 3_000);
    byte[] c = message(rnd, 2_000);
    // The call is refused while its first message is handed on (as CallIntake does for a bad
    // message): the rest of the frame, the start of b, is not held.
    MessageGather g = new MessageGather(MAX, true);
    List<Buffer> handed = new ArrayList<>();
    g.accept(Buffer.buffer().appendBytes(a).appendBytes(b, 0, 1000), m -> {
      handed.add(m);
      g.close();
    });
    assertEquals(1, handed.size());
    assertEquals(0, g.heldBytes());
    g.accept(Buffer.buffer().appendBytes(b, 1000, b.length - 1000), handed::add);
    assertEquals(1, handed.size());

    // Refused while a held message, made whole, is handed on: the next message's start, in the
    // same frame, is not held.
    MessageGather h = new MessageGather(MAX, true);
    List<Buffer> handed2 = new ArrayList<>();
    h.accept(Buffer.buffer().appendBytes(b, 0, 1000), handed2::add);
    assertEquals(1000, h.heldBytes());
    h.accept(Buffer.buffer().appendBytes(b, 1000, b.length - 1000).appendBytes(c, 0, 500), m -> {
      handed2.add(m);
      h.close();
    });
    assertEquals(1, handed2.size());
    assertArrayEquals(b, handed2.get(0).getBytes());
    assertEquals(0, h.heldBytes());
  }

  @Test
  void onlyBinaryGrpcIsGathered() {
    assertTrue(MessageGather.binaryGrpc("application/grpc"));
    assertTrue(MessageGather.binaryGrpc("application/grpc+proto"));
    assertTrue(MessageGather.binaryGrpc("application/grpc+json"));
    assertTrue(!MessageGather.binaryGrpc("application/grpc-web"));
    assertTrue(!MessageGather.binaryGrpc("application/grpc-web-text"));
    assertTrue(!MessageGather.binaryGrpc("application/grpc-web+proto"));
    assertTrue(!MessageGather.binaryGrpc("application/json"));
    assertTrue(!MessageGather.binaryGrpc(null));
  }

  @Test
  void whenTheDeframerThrowsTheRestGoesOnAsItArrives() {
    SplittableRandom rnd = new SplittableRandom(17);
    byte[] a = message(rnd, 200);
    a[0] = 1; // compressed, with no encoding declared: Vert.x's deframer throws on it
    byte[] b = message(rnd, 300);
    // Where the next frame starts, b's bytes look like a small message's prefix: a gather that had
    // not given up would cut the frame there.
    b[100] = 0;
    b[101] = 0;
    b[102] = 0;
    b[103] = 0;
    b[104] = 10;
    MessageGather g = new MessageGather(MAX, true);
    List<Buffer> handed = new ArrayList<>();
    Buffer frame = Buffer.buffer().appendBytes(a).appendBytes(b, 0, 100);
    try {
      g.accept(frame, m -> {
        throw new UnsupportedOperationException("Handle me");
      });
    } catch (UnsupportedOperationException expected) {
      // as the deframer's own exception reaches Vert.x
    }
    Buffer next = Buffer.buffer().appendBytes(b, 100, b.length - 100);
    g.accept(next, handed::add);
    assertSame(next, handed.get(0), "as it arrives, after the deframer gave up");
    assertEquals(0, g.heldBytes());
  }

  @Test
  void anythingButBinaryGrpcGoesOnAsItArrives() {
    MessageGather g = new MessageGather(MAX, false);
    List<Buffer> handed = new ArrayList<>();
    Buffer text = Buffer.buffer("AAAAAAVoZWxsbw==");
    g.accept(text, handed::add);
    assertSame(text, handed.get(0));
    assertEquals(0, g.heldBytes());
  }
}
