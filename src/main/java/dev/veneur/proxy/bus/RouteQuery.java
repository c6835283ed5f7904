package dev.veneur.proxy.bus;

/** Asks the ring where the series {@code name + type + tagstring} goes. */
public record RouteQuery(String name, String type, String tagstring) {
  public String key() {
    return name + type + tagstring;
  }
}
