package dev.veneur.proxy.forward;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.grpc.common.GrpcStatus;
import org.junit.jupiter.api.Test;

/** A gRPC global's status read as the HTTP status of the same verdict (RetryPolicy decides on those). */
class GrpcGlobalClientTest {
  @Test
  void statusesMapToTheVerdictsTheForwarderKnows() {
    assertEquals(200, GrpcGlobalClient.httpStatus(GrpcStatus.OK, null));
    assertEquals(400, GrpcGlobalClient.httpStatus(GrpcStatus.INVALID_ARGUMENT, "bad metric"));
    // grpc-go's words for a message over its receive limit: split the batch, as a 413.
    assertEquals(413, GrpcGlobalClient.httpStatus(GrpcStatus.RESOURCE_EXHAUSTED,
        "grpc: received message larger than max (5242880 vs. 4194304)"));
    assertEquals(429, GrpcGlobalClient.httpStatus(GrpcStatus.RESOURCE_EXHAUSTED, "too many calls"));
    assertEquals(503, GrpcGlobalClient.httpStatus(GrpcStatus.UNAVAILABLE, null));
    assertEquals(504, GrpcGlobalClient.httpStatus(GrpcStatus.DEADLINE_EXCEEDED, null));
    assertEquals(501, GrpcGlobalClient.httpStatus(GrpcStatus.UNIMPLEMENTED, null));
    assertEquals(500, GrpcGlobalClient.httpStatus(GrpcStatus.INTERNAL, null));
    assertEquals(0, GrpcGlobalClient.httpStatus(null, null), "no status: a transport failure");
    assertEquals(RetryPolicy.Verdict.REFUSED, RetryPolicy.verdict(new GlobalClient.Outcome(413, null, false, 1, "")));
    assertEquals(RetryPolicy.Verdict.FAILED, RetryPolicy.verdict(new GlobalClient.Outcome(429, null, false, 1, "")));
  }
}
