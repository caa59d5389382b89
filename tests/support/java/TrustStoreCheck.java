import java.io.FileInputStream;
import java.io.InputStream;
import java.security.KeyStore;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What a bank's Java back end does with a trust store it was handed: load it (JKS or PKCS12, as
 * -Djavax.net.ssl.trustStore would), take its trusted-certificate entries as the PKIX trust anchors, and
 * validate each certificate path against them (revocation off: the trust store is what is judged).
 *
 * Usage: java TrustStoreCheck TYPE STORE PASSWORD label=leaf.pem[:intermediate.pem...] ...
 * Prints "ANCHOR alias" for every trusted entry, then "label VALID" or "label INVALID: reason".
 */
public final class TrustStoreCheck {
    private TrustStoreCheck() {}

    public static void main(String[] args) throws Exception {
        KeyStore store = KeyStore.getInstance(args[0]);
        try (InputStream in = new FileInputStream(args[1])) {
            store.load(in, args[2].toCharArray());
        }
        List<String> aliases = Collections.list(store.aliases());
        Collections.sort(aliases);
        for (String alias : aliases) {
            System.out.println((store.isCertificateEntry(alias) ? "ANCHOR " : "OTHER ") + alias);
        }
        PKIXParameters params = new PKIXParameters(store);
        params.setRevocationEnabled(false);
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        CertPathValidator validator = CertPathValidator.getInstance("PKIX");
        for (int i = 3; i < args.length; i++) {
            String label = args[i].substring(0, args[i].indexOf('='));
            List<X509Certificate> path = new ArrayList<>();
            for (String file : args[i].substring(label.length() + 1).split(":")) {
                try (InputStream in = new FileInputStream(file)) {
                    path.add((X509Certificate) factory.generateCertificate(in));
                }
            }
            try {
                CertPath certPath = factory.generateCertPath(path);
                validator.validate(certPath, params);
                System.out.println(label + " VALID");
            } catch (CertPathValidatorException e) {
                System.out.println(label + " INVALID: " + e.getReason() + ": " + e.getMessage());
            }
        }
    }
}
