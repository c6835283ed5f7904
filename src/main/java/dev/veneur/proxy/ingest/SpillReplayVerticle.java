package dev.veneur.proxy.ingest;

import dev.veneur.proxy.core.Fatal;
import dev.veneur.proxy.core.ProxyContext;
import dev.veneur.proxy.routing.Dispatch;
import dev.veneur.proxy.spill.Spill;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * At start-up, sends again what a previous run left in {@code spill_dir}: each unsettled chunk is
 * counted received ({@code metrics.replayed_total} says how many of those were replays) and handed
 * to the HTTP verticles to be routed on the current ring, like a chunk a leaving global hands
 * back. Files are read one at a time, off the event loop, and the next is read only once the
 * memory budget has room, so a large spill cannot flood the proxy.
 */
public final class SpillReplayVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(SpillReplayVerticle.class);

  private final ProxyContext ctx;
  private final List<Path> files;
  private long metrics;
  private long chunks;

  public SpillReplayVerticle(ProxyContext ctx, List<Path> files) {
    this.ctx = ctx;
    this.files = new ArrayList<>(files);
  }

  @Override
  public Future<?> start() {
    if (!files.isEmpty()) {
      LOG.info("spill_dir: {} file(s) left by a previous run; sending again what they hold", files.size());
      next(0);
    }
    return Future.succeededFuture();
  }

  private void next(int i) {
    if (i >= files.size()) {
      if (!files.isEmpty()) LOG.info("spill_dir: {} metric(s) in {} chunk(s) sent again", metrics, chunks);
      return;
    }
    if (ctx.budget().used() > ctx.budget().limit() / 2) {
      vertx.setTimer(50, t -> next(i));
      return;
    }
    Path file = files.get(i);
    vertx.executeBlocking(() -> {
      List<Spill.Found> found = new ArrayList<>();
      ctx.spill().replay(file, found::add);
      return found;
    }, false).onComplete(ar -> {
      if (ar.failed()) {
        Fatal.check(ar.cause());
        LOG.error("spill_dir: cannot read {}: {}", file, ar.cause().getMessage());
      } else {
        for (Spill.Found f : ar.result()) {
          f.chunk().spill = f.record();
          ctx.budget().reserve(f.chunk().bytes());
          ctx.accounting().replayed(f.chunk());
          metrics += f.chunk().count;
          chunks++;
          Dispatch.reroute(vertx.eventBus(), ctx, f.chunk(), 0);
        }
      }
      next(i + 1);
    });
  }

}
