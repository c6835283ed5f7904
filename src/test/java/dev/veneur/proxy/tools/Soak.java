package dev.veneur.proxy.tools;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import javax.imageio.ImageIO;

/**
 * A bounded soak: the proxy as its own process, stand-in globals here, and an open-loop load at a
 * fixed rate (half of what the bench measured as capacity, by default) for a fixed time. Every
 * sample period it records the proxy's RSS and the throughput delivered at the globals, then
 * writes {@code <out>.csv} and a plot of both over time, {@code <out>.png}. Stops by itself.
 */
public final class Soak {
  private Soak() {}

  record Sample(double minutes, double rssMiB, double deliveredPerSec, long accepted, long refused, double cpuCores) {}

  public static void main(String[] args) throws Exception {
    int minutes = 30;
    int rate = 200_000;
    int perBody = 1000;
    int sampleSeconds = 10;
    String out = "docs/soak";
    String javaOpts = "-Xmx256m";
    String jar = "target/veneur-proxy.jar";
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--minutes": minutes = Integer.parseInt(args[++i]); break;
        case "--rate": rate = Integer.parseInt(args[++i]); break;
        case "--sample-seconds": sampleSeconds = Integer.parseInt(args[++i]); break;
        case "--out": out = args[++i]; break;
        case "--java-opts": javaOpts = args[++i]; break;
        case "--jar": jar = args[++i]; break;
        default:
          System.err.println("usage: Soak [--minutes 30] [--rate 200000 metrics/s] [--sample-seconds 10]"
              + " [--out docs/soak] [--java-opts -Xmx256m]");
          System.exit(2);
      }
    }
    System.setProperty("java.awt.headless", "true");
    Vertx vertx = Vertx.vertx();
    ProxyRig rig = ProxyRig.launch(vertx, 3, jar, javaOpts, "", "soak");
    List<Sample> samples = new ArrayList<>();
    try {
      io.vertx.core.json.JsonArray captured = new io.vertx.core.json.JsonArray(
          Files.readString(Path.of("src/test/resources/fixtures/captured/large.json")));
      List<Buffer> bodies = new ArrayList<>();
      for (int i = 0; i < 32; i++) bodies.add(Buffer.buffer(SyntheticMetrics.deflate(SyntheticMetrics.fromSample(captured, perBody, i))));
      HttpClient client = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true),
          new PoolOptions().setHttp1MaxSize(32));
      AtomicLong accepted = new AtomicLong();
      AtomicLong refused = new AtomicLong();
      AtomicInteger outstanding = new AtomicInteger();
      AtomicLong skipped = new AtomicLong();
      double bodiesPerTick = rate / (double) perBody / 100.0;
      double[] credit = {0};
      int[] next = {0};
      int fPerBody = perBody;
      // Open loop: a tick every 10 ms sends its share; a cap on outstanding requests keeps a
      // stalled proxy from making the generator itself the thing that grows.
      long timer = vertx.setPeriodic(10, t -> {
        credit[0] += bodiesPerTick;
        while (credit[0] >= 1) {
          credit[0] -= 1;
          if (outstanding.get() >= 64) {
            skipped.incrementAndGet();
            continue;
          }
          outstanding.incrementAndGet();
          Buffer body = bodies.get(next[0]++ % bodies.size());
          client.request(new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(rig.port)
                  .setURI("/import").putHeader("Content-Encoding", "deflate"))
              .compose(req -> req.send(body))
              .compose(resp -> resp.body().map(b -> resp.statusCode()))
              .onComplete(ar -> {
                outstanding.decrementAndGet();
                if (ar.succeeded() && ar.result() == 202) accepted.addAndGet(fPerBody);
                else refused.incrementAndGet();
              });
        }
      });
      System.out.printf(Locale.ROOT, "soak: %d metrics/s for %d min, proxy pid %d (%s); sampling every %ds%n",
          rate, minutes, rig.proxy.pid(), javaOpts, sampleSeconds);
      System.out.println("minute,rss_mib,delivered_per_s,accepted_total,refused_bodies,proxy_cores");
      long start = System.nanoTime();
      long end = start + minutes * 60_000_000_000L;
      long lastDelivered = rig.delivered();
      long lastCpu = rig.cpuTicks();
      long lastT = System.nanoTime();
      while (System.nanoTime() < end) {
        Thread.sleep(sampleSeconds * 1000L);
        long now = System.nanoTime();
        long d = rig.delivered();
        long cpu = rig.cpuTicks();
        double secs = (now - lastT) / 1e9;
        Sample s = new Sample((now - start) / 60e9, rig.memoryKib("VmRSS") / 1024.0, (d - lastDelivered) / secs,
            accepted.get(), refused.get(), (cpu - lastCpu) / 100.0 / secs);
        samples.add(s);
        System.out.printf(Locale.ROOT, "%.2f,%.1f,%.0f,%d,%d,%.2f%n", s.minutes(), s.rssMiB(), s.deliveredPerSec(),
            s.accepted(), s.refused(), s.cpuCores());
        lastDelivered = d;
        lastCpu = cpu;
        lastT = now;
      }
      vertx.cancelTimer(timer);
      Thread.sleep(3000);
      System.out.printf(Locale.ROOT, "accepted %d metrics, delivered %d, refused %d bodies, generator skipped %d ticks%n",
          accepted.get(), rig.delivered(), refused.get(), skipped.get());
    } finally {
      rig.close();
      vertx.close();
    }
    writeCsv(Path.of(out + ".csv"), samples);
    plot(Path.of(out + ".png"), samples, rate);
    System.out.println("wrote " + out + ".csv and " + out + ".png");
  }

  private static void writeCsv(Path file, List<Sample> samples) throws IOException {
    StringBuilder sb = new StringBuilder("minute,rss_mib,delivered_per_s,accepted_total,refused_bodies,proxy_cores\n");
    for (Sample s : samples) {
      sb.append(String.format(Locale.ROOT, "%.2f,%.1f,%.0f,%d,%d,%.2f%n", s.minutes(), s.rssMiB(),
          s.deliveredPerSec(), s.accepted(), s.refused(), s.cpuCores()));
    }
    if (file.getParent() != null) Files.createDirectories(file.getParent());
    Files.writeString(file, sb);
  }

  /** Two stacked panels sharing the time axis: RSS (MiB) and delivered metrics/s. */
  static void plot(Path file, List<Sample> samples, int rate) throws IOException {
    int w = 1000;
    int h = 640;
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, w, h);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
    double maxMin = samples.isEmpty() ? 1 : samples.get(samples.size() - 1).minutes();
    double maxRss = 64;
    double maxRate = rate * 1.25;
    for (Sample s : samples) {
      maxRss = Math.max(maxRss, s.rssMiB() * 1.15);
      maxRate = Math.max(maxRate, s.deliveredPerSec() * 1.1);
    }
    g.setColor(Color.BLACK);
    g.drawString(String.format(Locale.ROOT, "veneur-proxy soak: %d metrics/s offered, %.0f min", rate, maxMin), 70, 22);
    panel(g, samples, 40, 260, w, maxMin, maxRss, "proxy RSS (MiB)", new Color(0xC0392B), true);
    panel(g, samples, 340, 260, w, maxMin, maxRate, "delivered metrics/s", new Color(0x2471A3), false);
    g.setColor(Color.DARK_GRAY);
    g.drawString("minutes", w / 2 - 20, h - 12);
    g.dispose();
    if (file.getParent() != null) Files.createDirectories(file.getParent());
    ImageIO.write(img, "png", file.toFile());
  }

  private static void panel(Graphics2D g, List<Sample> samples, int top, int height, int w, double maxX,
      double maxY, String label, Color color, boolean rss) {
    int left = 80;
    int right = w - 30;
    int bottom = top + height - 30;
    g.setColor(new Color(0xEEEEEE));
    for (int i = 0; i <= 4; i++) {
      int y = bottom - (bottom - top) * i / 4;
      g.drawLine(left, y, right, y);
    }
    g.setColor(Color.DARK_GRAY);
    g.drawRect(left, top, right - left, bottom - top);
    g.drawString(label, left + 8, top + 16);
    for (int i = 0; i <= 4; i++) {
      int y = bottom - (bottom - top) * i / 4;
      double v = maxY * i / 4;
      g.drawString(rss ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.0fk", v / 1000), 20, y + 4);
    }
    for (int i = 0; i <= 6; i++) {
      int x = left + (right - left) * i / 6;
      g.drawString(String.format(Locale.ROOT, maxX < 10 ? "%.1f" : "%.0f", maxX * i / 6), x - 6, bottom + 16);
    }
    g.setColor(color);
    g.setStroke(new BasicStroke(2f));
    int px = -1;
    int py = -1;
    for (Sample s : samples) {
      int x = left + (int) ((right - left) * (maxX == 0 ? 0 : s.minutes() / maxX));
      int y = bottom - (int) ((bottom - top) * (rss ? s.rssMiB() : s.deliveredPerSec()) / maxY);
      if (px >= 0) g.drawLine(px, py, x, y);
      px = x;
      py = y;
    }
  }
}
