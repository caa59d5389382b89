"""What the key may be used for and under which policy, by type: keyUsage, extendedKeyUsage, certificate
policies, the validity ceiling by issuance date, and the service URLs (AIA, CRL distribution points)."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ...core import oids
from ...core.rules import tls_validity_rule
from ...core.validity import NON_BROWSER_MAX_DAYS, ONE_SECOND
from .facts import Facts
from .sources import BR, EN_411_2, EN_412_2, EN_412_3, EN_412_4, RFC_5280, TS_411_5, TS_495, cite
from .types import QWAC, QWAC_CLIENT, SEAL, TWO_QWAC, Collect

__all__ = ["check_policies", "check_services", "check_usage", "check_validity"]

_KU_NAMES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign")
_WEBSITE_POLICIES = {oids.QEVCP_W: "QEVCP-w", oids.QNCP_W: "QNCP-w", oids.QNCP_W_GEN: "QNCP-w-gen",
                     oids.CABF_EV: "CA/B EV", oids.CABF_OV: "CA/B OV"}
_SEAL_POLICIES = {oids.QCP_L: "QCP-l", oids.QCP_L_QSCD: "QCP-l-qscd"}


def _is_rsa(cert: x509.Certificate) -> bool:
    try:
        return isinstance(cert.public_key(), rsa.RSAPublicKey)
    except (ValueError, UnsupportedAlgorithm):  # a key cryptography cannot load: judged by its other bits
        return False


def _bits(ku: x509.KeyUsage) -> set[str]:
    return {name for name in _KU_NAMES if getattr(ku, name)}


def check_usage(f: Facts, kind: str, add: Collect) -> None:
    ku = f.key_usage
    bits = _bits(ku) if ku is not None else set()
    problems: list[str] = []
    if kind in (QWAC, QWAC_CLIENT):
        source = cite(BR, "7.1.2.7.11") + "; " + cite(EN_412_4, "4.1")
        allowed = {"digital_signature"} | ({"key_encipherment"} if _is_rsa(f.cert) else set())
        if "digital_signature" not in bits:
            problems.append("digitalSignature is missing: the key cannot authenticate a TLS handshake")
        if bits - allowed:
            problems.append(f"{', '.join(sorted(bits - allowed))} not allowed on a TLS certificate with this key type")
    elif kind == SEAL:
        source = cite(EN_412_3, "4.3.1 (LEG-4.3.1-3)")
        if not bits & {"content_commitment", "digital_signature"}:
            problems.append("a seal's keyUsage needs nonRepudiation (alone or with digitalSignature)")
        if bits & {"key_cert_sign", "crl_sign"}:
            problems.append("keyCertSign/cRLSign belong to CA certificates")
    else:  # a 2-QWAC signs TLS certificate bindings (JAdES), nothing else
        source = cite(TS_411_5, "6.2")
        if "digital_signature" not in bits:
            problems.append("a 2-QWAC's keyUsage needs digitalSignature: it signs TLS certificate bindings")
        if bits & {"key_cert_sign", "crl_sign"}:
            problems.append("keyCertSign/cRLSign belong to CA certificates")
    if ku is None:
        problems = ["the certificate has no keyUsage extension"]
    if problems:
        add("key-usage", source, "; ".join(problems))
    _check_eku(f, kind, add)


def _check_eku(f: Facts, kind: str, add: Collect) -> None:
    server, client = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
    if kind == QWAC and not f.has_eku(server):
        add("eku-server-auth-missing", cite(EN_412_4, "4.1.3 (WEB-4.1.3-4)") + "; " + cite(BR, "7.1.2.7.10"),
            "extendedKeyUsage lacks serverAuth: not for use as a TLS server certificate")
    if kind == QWAC_CLIENT and not f.has_eku(client):
        add("eku-client-auth-missing", cite(RFC_5280, "4.2.1.12") + "; " + cite(TS_495, "5.3 (note 3)"),
            "extendedKeyUsage lacks clientAuth: not for use as a TLS client certificate")
    if kind in (QWAC, QWAC_CLIENT):
        other = [o.dotted_string for o in f.ekus if o not in (server, client)]
        if other:
            add("eku-forbidden", cite(BR, "7.1.2.7.10"),
                f"a TLS subscriber certificate asserts serverAuth and/or clientAuth only, not {', '.join(other)}")
    if kind == TWO_QWAC:
        if not f.has_eku(oids.KP_TLS_BINDING):
            add("eku-tls-binding-missing", cite(TS_411_5, "6.2"),
                "extendedKeyUsage lacks id-kp-tls-binding (0.4.0.194115.1.0): not a 2-QWAC")
        elif f.has_eku(server) or f.has_eku(client):
            add("eku-tls-on-2qwac", cite(TS_411_5, "6.2"),
                "a 2-QWAC must not be usable for TLS (serverAuth/clientAuth in its extendedKeyUsage)")
    if kind == SEAL and (f.has_eku(server) or f.has_eku(oids.KP_TLS_BINDING)):
        add("eku-website-on-seal", cite(EN_412_3, "4.1") + "; " + cite(TS_495, "5.3"),
            "a seal carries no website EKU (serverAuth, id-kp-tls-binding)")


def check_policies(f: Facts, kind: str, add: Collect) -> None:
    source = cite(EN_411_2, "5.3")
    present = [o.dotted_string for o in f.policies]
    if kind == SEAL:
        if f.has_policy(oids.QCP_W_PSD2):
            add("qcp-w-psd2-on-seal", cite(TS_495, "6.1 (OVR-6.1-3)"),
                "QCP-w-psd2 (0.4.0.19495.3.1) augments QEVCP-w or QNCP-w: website certificates only, never a seal")
        wrong = [name for oid, name in _WEBSITE_POLICIES.items() if f.has_policy(oid)]
        if wrong:
            add("policy-type-mismatch", source, f"website certificate policies on a seal: {', '.join(wrong)}")
        if not any(f.has_policy(oid) for oid in _SEAL_POLICIES):
            add("policy-missing", source, f"a qualified seal is issued under QCP-l or QCP-l-qscd; policies: {present}")
        return
    wrong = [name for oid, name in _SEAL_POLICIES.items() if f.has_policy(oid)]
    if wrong:
        add("policy-type-mismatch", source, f"seal policies on a website certificate: {', '.join(wrong)}")
    if kind == TWO_QWAC:
        if not f.has_policy(oids.QNCP_W_GEN):
            add("policy-missing", cite(TS_411_5, "6.1") + "; " + source,
                f"a 2-QWAC is issued under QNCP-w-gen (0.4.0.194112.1.6); policies: {present}")
        tls = [name for oid, name in _WEBSITE_POLICIES.items() if oid != oids.QNCP_W_GEN and f.has_policy(oid)]
        if tls:
            add("policy-type-mismatch", cite(TS_411_5, "6.1"),
                f"TLS certificate policies on a 2-QWAC, which is not a TLS certificate: {', '.join(tls)}")
        return
    if not (f.has_policy(oids.QEVCP_W) or f.has_policy(oids.QNCP_W)):
        add("policy-missing", cite(TS_495, "6.1 (OVR-6.1-3)") + "; " + source,
            f"a PSD2 QWAC is issued under QEVCP-w or QNCP-w; policies: {present}")
    if f.has_policy(oids.QEVCP_W) and not f.has_policy(oids.CABF_EV):
        add("policy-missing", cite(EN_411_2, "5.3") + "; " + cite(BR, "7.1.6.1"),
            "QEVCP-w without the CA/B EV policy 2.23.140.1.1")
    if f.has_policy(oids.QNCP_W_GEN):
        add("policy-type-mismatch", cite(TS_411_5, "6.1"),
            "QNCP-w-gen marks a 2-QWAC (TS 119 411-5); a TLS QWAC is issued under QEVCP-w or QNCP-w", severity="warning")


def check_validity(f: Facts, kind: str, add: Collect) -> None:
    """Browser QWACs (serverAuth without clientAuth): the CA/B schedule of ballot SC-081 by notBefore (200,
    100, 47 days); other website certificates (mutual TLS, 2-QWACs): 398 days. Seals: no such limit."""
    if kind == SEAL:
        return
    cert = f.cert
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc + ONE_SECOND).total_seconds() / 86400
    browser = kind == QWAC and not f.has_eku(ExtendedKeyUsageOID.CLIENT_AUTH)
    if browser:
        rule = tls_validity_rule(cert.not_valid_before_utc)
        limit, source = rule.max_days or 0, cite(BR, "6.3.2")
        why = f"a browser QWAC issued {cert.not_valid_before_utc:%Y-%m-%d} is valid at most {limit} days"
    else:
        limit, source = NON_BROWSER_MAX_DAYS, cite(BR, "6.3.2 (as before ballot SC-081, for non-browser hierarchies)")
        why = f"a non-browser website certificate is valid at most {limit} days"
    if days > limit:
        add("validity-too-long", source, f"valid {days:g} days; {why} (counted inclusively, RFC 5280 4.1.2.5)")


def check_services(f: Facts, add: Collect) -> None:
    """AIA with OCSP and caIssuers, a CRL distribution point, every one of them a plain http URL (a relying
    party fetches them before it can trust TLS, so https would be circular)."""
    cert = f.cert
    try:
        aia = list(cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value)
    except x509.ExtensionNotFound:
        aia = []
    try:
        points = list(cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value)
    except x509.ExtensionNotFound:
        points = []
    methods = {d.access_method for d in aia}
    if AuthorityInformationAccessOID.OCSP not in methods:
        add("aia-ocsp-missing", cite(EN_412_2, "4.4.1 (GEN-4.4.1-8)") + "; " + cite(BR, "7.1.2.7.7"),
            "no OCSP responder URL in authorityInfoAccess")
    if AuthorityInformationAccessOID.CA_ISSUERS not in methods:
        add("aia-ca-issuers-missing", cite(EN_412_2, "4.4.1 (GEN-4.4.1-3)") + "; " + cite(BR, "7.1.2.7.7"),
            "no caIssuers URL in authorityInfoAccess")
    crl_urls = [n.value for p in points for n in (p.full_name or []) if isinstance(n, x509.UniformResourceIdentifier)]
    if not crl_urls:
        add("crldp-missing", cite(EN_412_2, "4.3.11 (GEN-4.3.11-2)"), "no CRL distribution point URL")
    urls = [d.access_location.value for d in aia if isinstance(d.access_location, x509.UniformResourceIdentifier)]
    not_http = [u for u in urls + crl_urls if not u.lower().startswith("http://")]
    if not_http:
        add("service-url-not-http", cite(BR, "7.1.2.7.7 and 7.1.2.11.2") + "; " + cite(EN_412_2, "4.4.1, 4.3.11"),
            f"AIA and CRL URLs are plain http (https would be circular for a relying party): {', '.join(not_http)}")
