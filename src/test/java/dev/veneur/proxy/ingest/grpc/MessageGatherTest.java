package dev.veneur.proxy.ingest.grpc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * What the deframer is handed: the very bytes that arrived, in order, cut only at message ends,
 * each message that spanned frames in one buffer of its exact size; after a message over the limit,
 * everything as it arrives.
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

  /** Where each message ends in the body, for the messages under the limit before any over it. */
  private static List<Integer> messageEnds(byte[] body) {
    List<Integer> ends = new ArrayList<>();
    for (int at = 0; at + 5 <= body.length; ) {
      long len = Buffer.buffer(body).getUnsignedInt(at + 1);
      if (len > MAX) break;
      at += 5 + (int) len;
      ends.add(at);
    }
    return ends;
  }

  @Test
  void handsOnTheSameBytesCutOnlyAtMessageEnds() {
    SplittableRandom rnd = new SplittableRandom(7);
    for (int t = 0; t < 3000; t++) {
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      int messages = 1 + rnd.nextInt(6);
      for (int m = 0; m < messages; m++) body.writeBytes(message(rnd, rnd.nextInt(4) == 0 ? 0 : rnd.nextInt(3000)));
      byte[] bytes = body.toByteArray();
      MessageGather g = new MessageGather(MAX);
      List<Buffer> handed = new ArrayList<>();
      for (Buffer f : frames(rnd, bytes, 1 + rnd.nextInt(1200))) g.accept(f, handed::add);
      assertEquals(0, g.heldBytes(), "every message ended: nothing is held");

      ByteArrayOutputStream joined = new ByteArrayOutputStream();
      List<Integer> cuts = new ArrayList<>();
      for (Buffer b : handed) {
        joined.writeBytes(b.getBytes());
        cuts.add(joined.size());
      }
      assertArrayEquals(bytes, joined.toByteArray(), "the bytes that arrived, in order");
      assertTrue(messageEnds(bytes).containsAll(cuts), "cut only where a message ends: " + cuts);
    }
  }

  @Test
  void aMessageSpanningFramesGoesOnInOneBufferOfItsSize() {
    SplittableRandom rnd = new SplittableRandom(3);
    byte[] m = message(rnd, 150_000);
    MessageGather g = new MessageGather(1 << 20);
    List<Buffer> handed = new ArrayList<>();
    for (Buffer f : frames(rnd, m, 16384)) g.accept(f, handed::add);
    assertEquals(1, handed.size());
    // getByteBuf() is a slice of the readable bytes: the array under it is its parent's.
    io.netty.buffer.ByteBuf view = ((BufferInternal) handed.get(0)).getByteBuf();
    io.netty.buffer.ByteBuf array = view.unwrap() == null ? view : view.unwrap();
    assertEquals(m.length, array.capacity(), "exact size: nothing grew by doubling");
    assertArrayEquals(m, handed.get(0).getBytes());
  }

  @Test
  void holdsNothingForALengthOnlyDeclared() {
    MessageGather g = new MessageGather(1 << 20);
    List<Buffer> handed = new ArrayList<>();
    // A prefix declaring 1 MiB, then 10 bytes of it: held by what arrived, not by what it declares.
    g.accept(Buffer.buffer(new byte[] {0, 0, 0x10, 0, 0}), handed::add);
    g.accept(Buffer.buffer(new byte[10]), handed::add);
    assertEquals(15, g.heldBytes());
    assertTrue(handed.isEmpty());
    // The stream ends there: the cut message reaches the deframer as it would have before.
    g.flush(handed::add);
    assertEquals(0, g.heldBytes());
    assertEquals(15, handed.stream().mapToInt(Buffer::length).sum());
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
      MessageGather g = new MessageGather(MAX);
      List<Buffer> frames = frames(rnd, bytes, 1 + rnd.nextInt(900));
      List<Buffer> handed = new ArrayList<>();
      for (Buffer f : frames) g.accept(f, handed::add);
      ByteArrayOutputStream joined = new ByteArrayOutputStream();
      for (Buffer b : handed) joined.writeBytes(b.getBytes());
      assertArrayEquals(bytes, joined.toByteArray());
      // The last frame went on as it came: the call is in the deframer's hands.
      assertEquals(frames.get(frames.size() - 1), handed.get(handed.size() - 1));
      assertEquals(0, g.heldBytes());
    }
  }

  @Test
  void theLimitIsTheDeframersOwn() {
    SplittableRandom rnd = new SplittableRandom(5);
    for (int len : new int[] {MAX, MAX + 1}) {
      byte[] m = message(rnd, len);
      MessageGather g = new MessageGather(MAX);
      List<Buffer> handed = new ArrayList<>();
      g.accept(Buffer.buffer().appendBytes(m, 0, 100), handed::add);
      g.accept(Buffer.buffer().appendBytes(m, 100, m.length - 100), handed::add);
      // At the limit the message is gathered; one byte over, the frames go on as they came.
      assertEquals(len == MAX ? 1 : 2, handed.size(), "a message of " + len + " bytes, limit " + MAX);
    }
  }

  @Test
  void releaseForgetsWhatIsHeld() {
    MessageGather g = new MessageGather(MAX);
    List<Buffer> handed = new ArrayList<>();
    g.accept(Buffer.buffer(new byte[] {0, 0, 0, 1, 0, 1, 2}), handed::add);
    assertEquals(7, g.heldBytes());
    g.release();
    assertEquals(0, g.heldBytes());
    // The next message starts afresh.
    g.accept(Buffer.buffer(new byte[] {0, 0, 0, 0, 2, 9, 9}), handed::add);
    assertEquals(1, handed.size());
    assertEquals(7, handed.get(0).length());
  }
}
