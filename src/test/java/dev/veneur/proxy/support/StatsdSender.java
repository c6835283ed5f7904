package dev.veneur.proxy.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * DogStatsD lines over UDP to a server on 127.0.0.1, one line per datagram (as most clients send
 * them, and within any server's {@code metric_max_length}).
 */
public final class StatsdSender implements AutoCloseable {
  private final DatagramSocket socket;
  private final InetAddress loopback = InetAddress.getLoopbackAddress();
  private final int port;
  private long sent;

  public StatsdSender(int port) {
    this.port = port;
    try {
      this.socket = new DatagramSocket(0, loopback);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public void send(String line) {
    byte[] b = line.getBytes(StandardCharsets.UTF_8);
    try {
      socket.send(new DatagramPacket(b, b.length, loopback, port));
      sent++;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public void send(List<String> lines) {
    for (String l : lines) send(l);
  }

  public long sent() {
    return sent;
  }

  @Override
  public void close() {
    socket.close();
  }
}
