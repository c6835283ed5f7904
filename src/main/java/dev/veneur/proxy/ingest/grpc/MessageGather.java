package dev.veneur.proxy.ingest.grpc;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Hands Vert.x gRPC's deframer whole messages, so it never grows a buffer. A v14 local's call is a
 * MetricList of ~150 KB that arrives as HTTP/2 DATA frames of at most 16 KiB; the deframer appends
 * each frame to one buffer that grows by doubling from the first frame's size, so a 150 KB message
 * cost ~480 KB of arrays and as much copying, most of what the proxy allocated on the gRPC path
 * (JFR, 2026-12-07: 80% of the allocated bytes) and what kept its young collections frequent.
 *
 * <p>Here the frames of a message that does not end in the frame it starts in are held as they
 * came (slices, no copy) until its last byte arrives, then copied once into a buffer of the
 * message's exact size, which the deframer takes as its own and slices the message from. Frames
 * made of whole messages go on as they are. Nothing is allocated for a length a message only
 * declares: a message is held by what arrived.
 *
 * <p>The bytes handed on are the bytes that arrived, in order: only where the deframer's buffers
 * end changes. A message declared larger than {@code maxMessage} switches this call to passing
 * every byte on as it arrives, so the deframer reports and skips it by its own rules, as before.
 */
final class MessageGather {
  private static final int PREFIX = 5;

  private final long maxMessage;
  private final List<Buffer> held = new ArrayList<>(16);
  private int heldBytes;
  /** Bytes of the message being held, its prefix included; -1 while its prefix is not whole. */
  private long need = -1;
  /** A message over the limit was seen: everything goes on as it arrives. */
  private boolean raw;

  MessageGather(long maxMessage) {
    this.maxMessage = maxMessage;
  }

  /** Takes the next bytes of the call's body; hands {@code out} whatever can go on. */
  void accept(Buffer buf, Handler<Buffer> out) {
    if (raw) {
      out.handle(buf);
      return;
    }
    int len = buf.length();
    int off = 0;
    while (off < len) {
      if (heldBytes == 0) {
        // At a message boundary: the whole messages from here go on without a copy.
        int end = off;
        while (len - end >= PREFIX) {
          long l = buf.getUnsignedInt(end + 1);
          if (l > maxMessage) {
            raw = true;
            out.handle(part(buf, off, len));
            return;
          }
          if (len - end - PREFIX < l) break;
          end += PREFIX + (int) l;
        }
        if (end > off) {
          out.handle(part(buf, off, end));
          off = end;
          continue;
        }
      }
      // A message that does not end in this buffer: take its prefix first, then up to its end.
      long want = need < 0 ? PREFIX - heldBytes : need - heldBytes;
      int take = (int) Math.min(len - off, want);
      held.add(buf.slice(off, off + take));
      heldBytes += take;
      off += take;
      if (need < 0 && heldBytes == PREFIX) {
        long l = heldPrefixLength();
        if (l > maxMessage) {
          raw = true;
          flush(out);
          if (off < len) out.handle(buf.slice(off, len));
          return;
        }
        need = PREFIX + l;
      }
      if (heldBytes == need) {
        Buffer whole = Buffer.buffer(heldBytes);
        for (Buffer b : held) whole.appendBuffer(b);
        release();
        out.handle(whole);
      }
    }
  }

  /** Hands on what is held (a message cut short at the call's end goes where it went before). */
  void flush(Handler<Buffer> out) {
    if (heldBytes == 0) return;
    List<Buffer> parts = new ArrayList<>(held);
    release();
    for (Buffer b : parts) out.handle(b);
  }

  /** Forgets what is held (the call is over). */
  void release() {
    held.clear();
    heldBytes = 0;
    need = -1;
  }

  /** Bytes held of a message not yet whole. */
  int heldBytes() {
    return heldBytes;
  }

  private long heldPrefixLength() {
    long l = 0;
    int at = 0;
    for (Buffer b : held) {
      for (int i = 0; i < b.length(); i++, at++) {
        if (at >= 1 && at < PREFIX) l = (l << 8) | b.getUnsignedByte(i);
      }
    }
    return l;
  }

  private static Buffer part(Buffer buf, int from, int to) {
    return from == 0 && to == buf.length() ? buf : buf.slice(from, to);
  }
}
