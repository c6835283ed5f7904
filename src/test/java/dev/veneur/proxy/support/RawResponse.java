package dev.veneur.proxy.support;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * One HTTP/1.1 response read off a raw socket, for tests that control the request's bytes: its
 * status line, headers (names lower-cased) and body. Framed by Content-Length, as every answer of
 * the proxy's listeners is: one without it is an error, never guessed.
 */
public record RawResponse(String statusLine, Map<String, List<String>> headers, String body) {
  /** The status code; the line must be an HTTP/1.1 status line. */
  public int status() {
    if (!statusLine.startsWith("HTTP/1.1 ") || statusLine.length() < 12) {
      throw new AssertionError("not an HTTP/1.1 status line: '" + statusLine + "'");
    }
    return Integer.parseInt(statusLine.substring(9, 12));
  }

  /** A header's values joined by ", ", or null. */
  public String header(String name) {
    List<String> v = headers.get(name.toLowerCase(Locale.ROOT));
    return v == null ? null : String.join(", ", v);
  }

  public static RawResponse read(Socket s) throws IOException {
    InputStream in = s.getInputStream();
    String status = line(in);
    Map<String, List<String>> headers = new TreeMap<>();
    for (String h = line(in); !h.isEmpty(); h = line(in)) {
      int colon = h.indexOf(':');
      headers.computeIfAbsent(h.substring(0, colon).trim().toLowerCase(Locale.ROOT), k -> new ArrayList<>())
          .add(h.substring(colon + 1).trim());
    }
    List<String> length = headers.get("content-length");
    if (length == null) throw new IOException("a response without Content-Length: " + status + " " + headers);
    byte[] body = in.readNBytes(Integer.parseInt(length.get(0)));
    return new RawResponse(status, headers, new String(body, StandardCharsets.UTF_8));
  }

  private static String line(InputStream in) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    int c;
    while ((c = in.read()) != '\n') {
      if (c < 0) throw new IOException("connection closed in the middle of a response");
      if (c != '\r') b.write(c);
    }
    return b.toString(StandardCharsets.ISO_8859_1);
  }
}
