package dev.veneur.proxy.telemetry;

import java.io.InputStream;
import java.util.Properties;

/** The proxy's version, from a resource Maven fills in at build time. */
public final class Version {
  private static final String VERSION = load();

  private Version() {}

  public static String get() {
    return VERSION;
  }

  private static String load() {
    try (InputStream in = Version.class.getResourceAsStream("/veneur-proxy.properties")) {
      Properties p = new Properties();
      if (in != null) p.load(in);
      return p.getProperty("version", "unknown");
    } catch (Exception e) {
      return "unknown";
    }
  }
}
