package dev.veneur.proxy.support;

import io.vertx.core.net.PemKeyCertOptions;
import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * Certificates made for a test run: a CA, and server and client certificates it signs (for
 * 127.0.0.1 and localhost), expired ones too, written as the PEM files a proxy reads.
 */
public final class TestCerts {
  private static final AtomicLong SERIAL = new AtomicLong(System.currentTimeMillis());

  private TestCerts() {}

  /** A certificate with its key, and where they were written. */
  public record Issued(X509Certificate cert, KeyPair key, Path certFile, Path keyFile) {
    public PemKeyCertOptions options() {
      return new PemKeyCertOptions().setCertPath(certFile.toString()).setKeyPath(keyFile.toString());
    }

    public BigInteger serial() {
      return cert.getSerialNumber();
    }
  }

  /** A certificate authority: its certificate is {@code <dir>/<name>.crt}. */
  public static final class Ca {
    final X509Certificate cert;
    final KeyPair key;
    public final Path certFile;

    Ca(X509Certificate cert, KeyPair key, Path certFile) {
      this.cert = cert;
      this.key = key;
      this.certFile = certFile;
    }

    /** A server and client certificate for 127.0.0.1 and localhost, valid for a day. */
    public Issued issue(Path dir, String name) {
      return issue(dir, name, Instant.now().minus(Duration.ofHours(1)), Instant.now().plus(Duration.ofDays(1)));
    }

    /** One that expired an hour ago. */
    public Issued issueExpired(Path dir, String name) {
      return issue(dir, name, Instant.now().minus(Duration.ofDays(2)), Instant.now().minus(Duration.ofHours(1)));
    }

    public Issued issue(Path dir, String name, Instant from, Instant to) {
      try {
        KeyPair kp = keyPair();
        X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(cert, BigInteger.valueOf(SERIAL.incrementAndGet()),
            Date.from(from), Date.from(to), new X500Name("CN=" + name), kp.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment));
        b.addExtension(Extension.extendedKeyUsage, false,
            new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
        b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName[] {
            new GeneralName(GeneralName.iPAddress, "127.0.0.1"), new GeneralName(GeneralName.dNSName, "localhost")}));
        X509Certificate c = new JcaX509CertificateConverter()
            .getCertificate(b.build(new JcaContentSignerBuilder("SHA256withRSA").build(key.getPrivate())));
        Path certFile = dir.resolve(name + ".crt");
        Path keyFile = dir.resolve(name + ".key");
        write(certFile, c);
        write(keyFile, kp.getPrivate());
        return new Issued(c, kp, certFile, keyFile);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }

  public static Ca ca(Path dir, String name) {
    try {
      KeyPair kp = keyPair();
      X500Name subject = new X500Name("CN=" + name);
      X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(subject, BigInteger.valueOf(SERIAL.incrementAndGet()),
          Date.from(Instant.now().minus(Duration.ofDays(1))), Date.from(Instant.now().plus(Duration.ofDays(30))),
          subject, kp.getPublic());
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      X509Certificate c = new JcaX509CertificateConverter()
          .getCertificate(b.build(new JcaContentSignerBuilder("SHA256withRSA").build(kp.getPrivate())));
      Path file = dir.resolve(name + ".crt");
      write(file, c);
      return new Ca(c, kp, file);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Puts {@code next}'s files where {@code at}'s are, each by an atomic rename, as cert-manager
   * and Kubernetes replace them (a reader sees the old file or the new one, never half of one).
   */
  public static void rotate(Issued next, Issued at) throws IOException {
    Path tmpKey = at.keyFile().resolveSibling(at.keyFile().getFileName() + ".new");
    Path tmpCert = at.certFile().resolveSibling(at.certFile().getFileName() + ".new");
    Files.copy(next.keyFile(), tmpKey, StandardCopyOption.REPLACE_EXISTING);
    Files.copy(next.certFile(), tmpCert, StandardCopyOption.REPLACE_EXISTING);
    Files.move(tmpKey, at.keyFile(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    Files.move(tmpCert, at.certFile(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  private static KeyPair keyPair() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    return g.generateKeyPair();
  }

  private static void write(Path file, Object pem) throws IOException {
    StringWriter w = new StringWriter();
    try (JcaPEMWriter pw = new JcaPEMWriter(w)) {
      pw.writeObject(pem);
    }
    Files.writeString(file, w.toString());
  }
}
