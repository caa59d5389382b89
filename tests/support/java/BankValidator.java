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
 * Or: java BankValidator --batch root.pem label=leaf.pem:issuing-ca.pem ... (a line per path).
 *
 * The JVM runs with the JDK's defaults for revocation (OCSP from the certificates' AIA, no CRL
 * fetching), or with -Dcom.sun.security.enableCRLDP=true (CRLs from the distribution points as
 * fallback), or -Djdk.security.certpath.ocspNonce=true (a nonce in every OCSP request); in the
 * tests with -Djdk.net.hosts.file=... so that the host named in the certificates reaches the
 * local test server.
 */
public final class BankValidator {
    private BankValidator() {}

    private static X509Certificate load(CertificateFactory factory, String path) throws Exception {
        try (InputStream in = new FileInputStream(path)) {
            return (X509Certificate) factory.generateCertificate(in);
        }
    }

    /** The verdict on one path: "VALID", "REVOKED: <reason> ..." or "INVALID: ..."; its exit code in {@code code[0]}. */
    static String validate(CertificateFactory factory, X509Certificate leaf, X509Certificate issuing, X509Certificate root,
                           boolean preferCrls, int[] code) {
        try {
            CertPath path = factory.generateCertPath(List.of(leaf, issuing));
            CertPathValidator validator = CertPathValidator.getInstance("PKIX");
            PKIXRevocationChecker checker = (PKIXRevocationChecker) validator.getRevocationChecker();
            // OCSP preferred (the default order; "prefer-crls" swaps it), the other kept as fallback
            // (no NO_FALLBACK), no SOFT_FAIL: a status that cannot be established makes the
            // certificate unacceptable. The whole chain is checked (no ONLY_END_ENTITY): the
            // issuing CA against the root-delegated responder (or the root's ARL).
            EnumSet<PKIXRevocationChecker.Option> options = EnumSet.noneOf(PKIXRevocationChecker.Option.class);
            if (preferCrls) {
                options.add(PKIXRevocationChecker.Option.PREFER_CRLS);
            }
            checker.setOptions(options);

            PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
            params.setRevocationEnabled(true);
            params.addCertPathChecker(checker); // used instead of the default revocation checker
            validator.validate(path, params);
            code[0] = 0;
            return "VALID";
        } catch (CertPathValidatorException e) {
            if (e.getReason() == CertPathValidatorException.BasicReason.REVOKED) {
                String reason = e.getCause() instanceof CertificateRevokedException
                        ? ((CertificateRevokedException) e.getCause()).getRevocationReason().name()
                        : "UNKNOWN";
                code[0] = 2;
                return "REVOKED: " + reason + " (certificate " + e.getIndex() + " in the path: " + e.getMessage() + ")";
            }
            code[0] = 3;
            return "INVALID: " + e.getReason() + ": " + e.getMessage()
                    + (e.getCause() != null ? " (cause: " + e.getCause() + ")" : "");
        } catch (Exception e) {
            code[0] = 3;
            return "INVALID: " + e;
        }
    }

    public static void main(String[] args) {
        Security.setProperty("ocsp.enable", "true");
        int[] code = {3};
        if (args.length >= 2 && args[0].equals("--batch")) {
            // --batch root.pem label=leaf.pem:issuing-ca.pem ...: one line "label: verdict" per path, in one
            // JVM (the relying-party matrix); exit 0 once every path was judged.
            try {
                CertificateFactory factory = CertificateFactory.getInstance("X.509");
                X509Certificate root = load(factory, args[1]);
                for (int i = 2; i < args.length; i++) {
                    String[] labelled = args[i].split("=", 2);
                    String[] files = labelled[1].split(":", 2);
                    String verdict = validate(factory, load(factory, files[0]), load(factory, files[1]), root, false, code);
                    System.out.println(labelled[0] + ": " + verdict);
                }
                System.exit(0);
            } catch (Exception e) {
                System.out.println("INVALID: " + e);
                System.exit(3);
            }
        }
        boolean preferCrls = args.length == 4 && args[3].equals("prefer-crls");
        if (args.length != 3 && !preferCrls) {
            System.out.println("INVALID: usage: BankValidator leaf.pem issuing-ca.pem root.pem [prefer-crls]");
            System.exit(3);
        }
        String verdict;
        try {
            CertificateFactory factory = CertificateFactory.getInstance("X.509");
            verdict = validate(factory, load(factory, args[0]), load(factory, args[1]), load(factory, args[2]), preferCrls, code);
        } catch (Exception e) {
            verdict = "INVALID: " + e;
        }
        System.out.println(verdict);
        System.exit(code[0]);
    }
}
