package dev.veneur.proxy.config;

/** A config value that cannot be used; the message names the key, the value and what was expected. */
public final class ConfigException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ConfigException(String key, Object value, String expected) {
    super("config key '" + key + "': " + (value == null ? "missing" : "got '" + value + "'")
        + ", expected " + expected);
  }

  public ConfigException(String message) {
    super(message);
  }
}
