package dev.veneur.proxy.ingest.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Promise;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;

/** The two ends of the proxy's own connection meet in either order, and nothing else ends a wait. */
class OwnConnectionsTest {
  private static final long K = OwnConnections.key(8127, 40001);

  @Test
  void goneAfterTheConnectEndsTheWait() {
    OwnConnections own = new OwnConnections(100);
    Promise<Void> wait = own.expect();
    own.connected(K, wait);
    assertFalse(wait.future().isComplete());
    own.gone(K);
    assertTrue(wait.future().isComplete());
  }

  /** The flood case: refused at accept before the connect completed at the start's end. */
  @Test
  void goneBeforeTheConnectEndsTheWaitAsItConnects() {
    OwnConnections own = new OwnConnections(100);
    Promise<Void> wait = own.expect();
    own.gone(K);
    own.connected(K, wait);
    assertTrue(wait.future().isComplete());
  }

  @Test
  void anotherConnectionGoneDoesNotEndIt() {
    OwnConnections own = new OwnConnections(100);
    Promise<Void> wait = own.expect();
    own.gone(OwnConnections.key(8127, 40002));
    own.gone(OwnConnections.key(8128, 40001));
    own.connected(K, wait);
    assertFalse(wait.future().isComplete());
  }

  /** What went before any start waited is not remembered: a stale key cannot end a later wait. */
  @Test
  void nothingIsRememberedWhileNoStartWaits() {
    OwnConnections own = new OwnConnections(100);
    own.gone(K);
    assertEquals(0, own.remembered());
    Promise<Void> wait = own.expect();
    own.connected(K, wait);
    assertFalse(wait.future().isComplete());
  }

  @Test
  void whatIsRememberedIsBoundedAndForgottenWhenTheLastWaitEnds() {
    OwnConnections own = new OwnConnections(100);
    Promise<Void> first = own.expect();
    Promise<Void> second = own.expect();
    for (int port = 1; port <= 500; port++) own.gone(OwnConnections.key(8127, port));
    assertEquals(100, own.remembered(), "a flood remembers at most the bound");
    first.complete();
    assertEquals(100, own.remembered(), "another start still waits");
    second.tryComplete();
    assertEquals(0, own.remembered());
    // A wait ended by its bound leaves nothing registered either.
    Promise<Void> timedOut = own.expect();
    own.connected(K, timedOut);
    timedOut.tryComplete();
    Promise<Void> next = own.expect();
    own.gone(K);
    assertFalse(next.future().isComplete());
    assertEquals(1, own.remembered());
  }

  /** -1 (a connection accepted while no start waited, or with an address unknown) is never followed. */
  @Test
  void anUnfollowedConnectionEndsNoWait() {
    OwnConnections own = new OwnConnections(100);
    assertFalse(own.anyWaiting());
    Promise<Void> wait = own.expect();
    assertTrue(own.anyWaiting());
    own.gone(-1);
    own.connected(-1, wait);
    assertFalse(wait.future().isComplete());
    assertEquals(0, own.remembered());
    wait.complete();
    assertFalse(own.anyWaiting());
  }

  /** A connection's key is read only while a start waits; before and after, it is not followed. */
  @Test
  void connectionsAreFollowedOnlyWhileAStartWaits() {
    OwnConnections own = new OwnConnections(100);
    io.vertx.core.net.SocketAddress listener = io.vertx.core.net.SocketAddress.inetSocketAddress(8127, "127.0.0.1");
    io.vertx.core.net.SocketAddress client = io.vertx.core.net.SocketAddress.inetSocketAddress(40001, "127.0.0.1");
    assertEquals(-1, own.followed(listener, client));
    Promise<Void> wait = own.expect();
    assertEquals(K, own.followed(listener, client));
    wait.complete();
    assertEquals(-1, own.followed(listener, client));
  }

  @Test
  void keysTellListenersAndClientPortsApart() {
    assertNotEquals(OwnConnections.key(8127, 1), OwnConnections.key(8128, 1));
    assertNotEquals(OwnConnections.key(8127, 1), OwnConnections.key(8127, 2));
    assertNotEquals(OwnConnections.key(1, 8127), OwnConnections.key(8127, 1));
    assertEquals(-1, OwnConnections.key((io.vertx.core.net.SocketAddress) null, null));
  }

  /** The two ends on two threads, racing, 20,000 times: every wait ends, none by another's key. */
  @Test
  void bothOrdersOnTwoThreadsAlwaysMeet() throws Exception {
    OwnConnections own = new OwnConnections(100_000);
    int n = 20_000;
    List<Promise<Void>> waits = new ArrayList<>();
    for (int i = 0; i < n; i++) waits.add(own.expect());
    CountDownLatch go = new CountDownLatch(1);
    Thread listener = new Thread(() -> {
      await(go);
      for (int i = 0; i < n; i++) {
        if (ThreadLocalRandom.current().nextInt(8) == 0) Thread.yield();
        own.gone(OwnConnections.key(9000 + i / 60000, i % 60000));
      }
    });
    Thread starts = new Thread(() -> {
      await(go);
      for (int i = 0; i < n; i++) {
        if (ThreadLocalRandom.current().nextInt(8) == 0) Thread.yield();
        own.connected(OwnConnections.key(9000 + i / 60000, i % 60000), waits.get(i));
      }
    });
    listener.start();
    starts.start();
    go.countDown();
    listener.join();
    starts.join();
    for (int i = 0; i < n; i++) assertTrue(waits.get(i).future().isComplete(), "wait " + i);
    assertEquals(0, own.remembered(), "all waits over: nothing kept");
  }

  private static void await(CountDownLatch l) {
    try {
      l.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
