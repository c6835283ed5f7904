package dev.veneur.proxy.ingest;

/**
 * Why an {@code /import} request is refused: the HTTP status, the {@code cause} tag under which
 * {@code import.request_error_total} counts it, and a one-line reason for the sender. Thrown on the
 * hot path for input errors only, so it skips the stack trace.
 */
public final class ImportRefusal extends RuntimeException {
  private static final long serialVersionUID = 1L;
  public final int status;
  public final String cause;

  public ImportRefusal(int status, String cause, String reason) {
    super(reason, null, false, false);
    this.status = status;
    this.cause = cause;
  }

  public String reason() {
    return getMessage();
  }
}
