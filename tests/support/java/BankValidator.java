import java.io.FileInputStream;
import java.io.InputStream;
import java.security.Security;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateRevokedException;
import java.security.cert.PKIXParameters;
import java.security.cert.PKIXRevocationChecker;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * What a bank's Java back end does with a PSP's QWAC: PKIX path validation to the QTSP's root
 * with revocation checking switched on, OCSP first and the CRL as fallback, failing hard.
 *
 * Usage: java BankValidator leaf.pem issuing-ca.pem root.pem [prefer-crls]
 * Prints VALID (exit 0), REVOKED: <reason> ... (exit 2) or INVALID: <message> (exit 3).
 *
 * The JVM is expected to run with -Dcom.sun.security.enableCRLDP=true (CRLs from the
 * certificates' distribution points) and, in the tests, -Djdk.net.hosts.file=... so that the
 * host named in the certificates reaches the local test server.
 */
public final class BankValidator {
    private BankValidator() {}

    private static X509Certificate load(CertificateFactory factory, String path) throws Exception {
        try (InputStream in = new FileInputStream(path)) {
            return (X509Certificate) factory.generateCertificate(in);
        }
    }

    public static void main(String[] args) {
        boolean preferCrls = args.length == 4 && args[3].equals("prefer-crls");
        if (args.length != 3 && !preferCrls) {
            System.out.println("INVALID: usage: BankValidator leaf.pem issuing-ca.pem root.pem [prefer-crls]");
            System.exit(3);
        }
        try {
            Security.setProperty("ocsp.enable", "true");
            CertificateFactory factory = CertificateFactory.getInstance("X.509");
            X509Certificate leaf = load(factory, args[0]);
            X509Certificate issuing = load(factory, args[1]);
            X509Certificate root = load(factory, args[2]);

            CertPath path = factory.generateCertPath(List.of(leaf, issuing));
            CertPathValidator validator = CertPathValidator.getInstance("PKIX");
            PKIXRevocationChecker checker = (PKIXRevocationChecker) validator.getRevocationChecker();
            // OCSP preferred (the default order; "prefer-crls" swaps it), the other kept as fallback
            // (no NO_FALLBACK), no SOFT_FAIL: a status that cannot be established makes the
            // certificate unacceptable. The whole chain is checked (no ONLY_END_ENTITY): the
            // issuing CA, which names no OCSP responder, against the root's ARL.
            EnumSet<PKIXRevocationChecker.Option> options = EnumSet.noneOf(PKIXRevocationChecker.Option.class);
            if (preferCrls) {
                options.add(PKIXRevocationChecker.Option.PREFER_CRLS);
            }
            checker.setOptions(options);

            PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
            params.setRevocationEnabled(true);
            params.addCertPathChecker(checker); // used instead of the default revocation checker
            validator.validate(path, params);
            System.out.println("VALID");
            System.exit(0);
        } catch (CertPathValidatorException e) {
            if (e.getReason() == CertPathValidatorException.BasicReason.REVOKED) {
                String reason = e.getCause() instanceof CertificateRevokedException
                        ? ((CertificateRevokedException) e.getCause()).getRevocationReason().name()
                        : "UNKNOWN";
                System.out.println("REVOKED: " + reason + " (certificate " + e.getIndex() + " in the path: " + e.getMessage() + ")");
                System.exit(2);
            }
            System.out.println("INVALID: " + e.getReason() + ": " + e.getMessage()
                    + (e.getCause() != null ? " (cause: " + e.getCause() + ")" : ""));
            System.exit(3);
        } catch (Exception e) {
            System.out.println("INVALID: " + e);
            System.exit(3);
        }
    }
}
