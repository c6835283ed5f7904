package dev.veneur.proxy.ingest.grpc;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Hands Vert.x gRPC's deframer one whole message at a time, so it never grows or compacts a
 * buffer. A v14 local's call is a MetricList of ~150 KB that arrives as HTTP/2 DATA frames of at
 * most 16 KiB; the deframer appends each frame to one buffer that grows by doubling from the first
 * frame's size, so a 150 KB message cost ~480 KB of arrays and as much copying, most of what the
 * proxy allocated on the gRPC path (JFR, 2026-12-07: 80% of the allocated bytes); and after each
 * message it copies what follows it in its buffer, which for a frame of many small messages (a
 * SendMetricsV2 stream) is quadratic in the frame.
 *
 * <p>Here each whole message in a frame goes on as a slice of it. A message that does not end in
 * the frame it starts in is held until its last byte arrives, then copied once into a buffer of
 * its exact size. Holding never costs more than about twice the bytes held, whatever the framing:
 * a frame that is all message and at least {@link #STAGE} bytes is kept as it came (it is exactly
 * those bytes); anything else (a frame's tail after whole messages, the pieces of a client that
 * sends tiny frames) is copied into staging buffers, each filled before the next is taken and none
 * larger than what is held already (or {@code STAGE}). Nothing is allocated for a length a message
 * only declares.
 *
 * <p>The bytes handed on are the bytes that arrived, in order, cut only at message ends. A message
 * declared larger than {@code maxMessage} switches the call to passing every byte on as it arrives,
 * so the deframer refuses and skips it by its own rules, as before. A message cut short by the
 * stream's end is dropped: the deframer would have dropped it too (it hands on whole messages
 * only, and its end does nothing with a partial one).
 */
final class MessageGather {
  static final int PREFIX = 5;
  /** The smallest piece kept as it came, and the size of a staging buffer for smaller ones. */
  static final int STAGE = 4096;

  private final long maxMessage;
  private final List<Buffer> held = new ArrayList<>(16);
  private int heldBytes;
  /** Bytes of the message being held, its prefix included; -1 while its prefix is not whole. */
  private long need = -1;
  /** The staging buffer at the end of {@link #held} with room left, or null. */
  private Buffer stage;
  private int stageRoom;
  /** Bytes of the arrays held: frames kept as they came, and every staging buffer's size. */
  private long capacity;
  /** A message over the limit was seen, or the call is not binary gRPC: bytes go on as they arrive. */
  private boolean raw;
  /** The call is over: nothing more is held or handed on. */
  private boolean closed;

  /**
   * @param maxMessage the deframer's own limit ({@code grpc_max_message_bytes})
   * @param binary whether the call's body is gRPC's binary framing (not grpc-web-text's base64):
   *     anything else goes on as it arrives
   */
  MessageGather(long maxMessage, boolean binary) {
    this.maxMessage = maxMessage;
    this.raw = !binary;
  }

  /** Takes the next bytes of the call's body; hands {@code out} whatever can go on. */
  void accept(Buffer buf, Handler<Buffer> out) {
    if (closed) return;
    if (raw) {
      out.handle(buf);
      return;
    }
    int len = buf.length();
    int off = 0;
    while (off < len) {
      if (heldBytes == 0) {
        // At a message boundary: each whole message from here goes on as a slice of its own.
        if (len - off >= PREFIX) {
          long l = buf.getUnsignedInt(off + 1);
          if (l > maxMessage) {
            raw = true;
            emit(out, part(buf, off, len));
            return;
          }
          if (len - off - PREFIX >= l) {
            int end = off + PREFIX + (int) l;
            emit(out, part(buf, off, end));
            if (closed) return;
            off = end;
            continue;
          }
          // Its prefix is here: the rest of this buffer is all its bytes (a whole frame is kept).
          need = PREFIX + l;
        }
      }
      // A message that does not end in this buffer: its prefix first, then up to its end.
      long want = need < 0 ? PREFIX - heldBytes : need - heldBytes;
      int take = (int) Math.min(len - off, want);
      hold(buf, off, take);
      off += take;
      if (need < 0 && heldBytes == PREFIX) {
        // A prefix that came in pieces: each under 5 bytes, so all copied into the one staging
        // buffer held (64 bytes, filled first).
        long l = stage.getUnsignedInt(1);
        if (l > maxMessage) {
          raw = true;
          Buffer prefix = stage;
          reset();
          emit(out, prefix);
          if (closed) return;
          if (off < len) emit(out, buf.slice(off, len));
          return;
        }
        need = PREFIX + l;
      }
      if (heldBytes == need) {
        Buffer whole = Buffer.buffer(heldBytes);
        for (Buffer b : held) whole.appendBuffer(b);
        reset();
        emit(out, whole);
        if (closed) return;
      }
    }
  }

  /**
   * Whether a request's {@code content-type} is gRPC's binary framing ({@code application/grpc},
   * {@code +proto}, {@code +json}, ...), not grpc-web's: only that is gathered.
   */
  static boolean binaryGrpc(String contentType) {
    return contentType != null && contentType.startsWith("application/grpc")
        && !contentType.startsWith("application/grpc-web");
  }

  /** The call is over (answered, ended, reset): what is held is let go, and nothing more is taken. */
  void close() {
    closed = true;
    reset();
  }

  /** Bytes held of a message not yet whole. */
  int heldBytes() {
    return heldBytes;
  }

  /** Buffers held (for tests: what holding costs beyond the bytes). */
  int heldPieces() {
    return held.size();
  }

  /** Bytes of the arrays held (for tests: what holding costs against the bytes held). */
  long heldCapacity() {
    return capacity;
  }

  /**
   * Hands {@code b} on. If the deframer throws (a compressed message with no encoding declared,
   * which it cannot read), the call's bytes go on as they arrive from then on, as before.
   */
  private void emit(Handler<Buffer> out, Buffer b) {
    try {
      out.handle(b);
    } catch (RuntimeException e) {
      raw = true;
      reset();
      throw e;
    }
  }

  private void hold(Buffer buf, int from, int n) {
    if (from == 0 && n == buf.length() && n >= STAGE) {
      // A whole frame of message bytes: kept as it came, nothing else in it is kept alive.
      held.add(buf);
      stage = null;
      capacity += n;
    } else {
      // Copied: the staging buffer is filled first, so only the last one has room left.
      int at = from;
      int left = n;
      if (stage != null && stageRoom > 0) {
        int k = Math.min(left, stageRoom);
        stage.appendBuffer(buf, at, k);
        stageRoom -= k;
        at += k;
        left -= k;
      }
      if (left > 0) {
        int now = heldBytes + (n - left);
        // Room for more small pieces, but never more than is held already (or 64 bytes): a
        // stream that stops after a byte or two costs a small buffer, not a staging buffer's worth.
        int cap = Math.max(left, Math.min(STAGE, Math.max(64, now)));
        if (need >= 0) cap = (int) Math.min(cap, need - now);
        stage = Buffer.buffer(cap).appendBuffer(buf, at, left);
        stageRoom = cap - left;
        capacity += cap;
        held.add(stage);
      }
    }
    heldBytes += n;
  }

  private void reset() {
    held.clear();
    heldBytes = 0;
    need = -1;
    stage = null;
    stageRoom = 0;
    capacity = 0;
  }

  private static Buffer part(Buffer buf, int from, int to) {
    return from == 0 && to == buf.length() ? buf : buf.slice(from, to);
  }
}
