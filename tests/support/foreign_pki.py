"""A foreign demo QTSP: certificates this project does not issue, to judge the validator with.

Made with ``cryptography``'s builder directly and, where the qualified content is concerned, DER written by
hand (asn1crypto's primitive encoders, assembled here): none of ``qtsp.core``'s builders, statement encoders
or profiles is used, so a defect shared by our issuing side and our validator cannot hide. The hand-written
DER is also how the deliberately wrong variants are made that a careful builder refuses (empty RolesOfPSP,
critical qcStatements, two QcTypes, a role name that does not match its OID).

    pki = ForeignPKI()                       # a root and an issuing CA, P-256, valid around NOW
    good = pki.issue(Spec.qwac())            # a correct PSD2 QWAC (EV, mutual TLS)
    bad = pki.issue(Spec.qsealc(policies=(QCP_L, QCP_W_PSD2)))   # one rule broken

``VARIANTS`` names one broken certificate per profile rule, with the rule id and clause the validator must
report; ``tests/unit/relying_party/test_profile_rules.py`` walks it. The QTSP's OCSP responder and CRLs, on
loopback: ``foreign_responder.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 1, tzinfo=UTC)  # the time the tests judge at
ISSUED = dt.datetime(2026, 11, 1, tzinfo=UTC)  # the leaves' notBefore
HOST = "foreign-qtsp.localtest.me"
BASE = f"http://{HOST}"

# OIDs written out here, not imported from qtsp.core.oids: the foreign QTSP reads the standards itself.
QC_STATEMENTS = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3")
CABF_ORG_ID = x509.ObjectIdentifier("2.23.140.3.1")
QC_COMPLIANCE, QC_SSCD, QC_PDS, QC_TYPE, QC_CC = (f"0.4.0.1862.1.{n}" for n in (1, 4, 5, 6, 7))
QCT_ESEAL, QCT_WEB = "0.4.0.1862.1.6.2", "0.4.0.1862.1.6.3"
PKIX_QC_SYNTAX_V2, SEMANTICS_LEGAL = "1.3.6.1.5.5.7.11.2", "0.4.0.194121.1.2"
PSD2 = "0.4.0.19495.2"
EV, OV = x509.ObjectIdentifier("2.23.140.1.1"), x509.ObjectIdentifier("2.23.140.1.2.2")
QEVCP_W, QNCP_W, QNCP_W_GEN = (x509.ObjectIdentifier(f"0.4.0.194112.1.{n}") for n in (4, 5, 6))
QCP_L, QCP_L_QSCD = x509.ObjectIdentifier("0.4.0.194112.1.1"), x509.ObjectIdentifier("0.4.0.194112.1.3")
QCP_W_PSD2 = x509.ObjectIdentifier("0.4.0.19495.3.1")
TLS_BINDING = x509.ObjectIdentifier("0.4.0.194115.1.0")
SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
ROLE = {"PSP_AS": "0.4.0.19495.1.1", "PSP_PI": "0.4.0.19495.1.2", "PSP_AI": "0.4.0.19495.1.3",
        "PSP_IC": "0.4.0.19495.1.4", "Unspecified": "0.4.0.19495.1.0", "PSP_CB": "0.4.0.19495.1.5",
        "PSP_PA": "0.4.0.19495.1.6", "VOP_RS": "0.4.0.19495.1.51", "VOP_VS": "0.4.0.19495.1.52"}

ORG_ID = "PSDNL-DNB-R161162"
NCA = ("De Nederlandsche Bank", "NL-DNB")
DOMAIN = "api.foreign-fintech.localtest.me"


# --- DER by hand ----------------------------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def seq(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return b"\x30" + _len(len(body)) + body


def oid(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).dump()


def utf8(text: str) -> bytes:
    return core.UTF8String(text).dump()


def printable(text: str) -> bytes:
    return core.PrintableString(text).dump()


def ia5(text: str) -> bytes:
    return core.IA5String(text).dump()


def statement(sid: str, info: bytes | None = None) -> bytes:
    return seq(oid(sid), *([info] if info is not None else []))


def psd2_statement(roles: list[tuple[str, str]], nca_name: str, nca_id: str) -> bytes:
    return statement(PSD2, seq(seq(*(seq(oid(o), utf8(n)) for o, n in roles)), utf8(nca_name), utf8(nca_id)))


def roles(*names: str) -> list[tuple[str, str]]:
    return [(ROLE[n], n) for n in names]


def pds(*locations: tuple[str, str]) -> bytes:
    return statement(QC_PDS, seq(*(seq(ia5(url), printable(lang)) for url, lang in locations)))


def qc_type(*types: str) -> bytes:
    return statement(QC_TYPE, seq(*(oid(t) for t in types)))


def cabf_org_id(scheme: str, country: str, reference: str) -> bytes:
    return seq(printable(scheme), printable(country), utf8(reference))


ENGLISH_PDS = (f"https://{HOST}/pds/pds-en.pdf", "en")


def statements(kind: str, *, psd2: bytes | None = None, extra: tuple[bytes, ...] = (), types: tuple[str, ...] | None = None,
               pds_entries: tuple[tuple[str, str], ...] = (ENGLISH_PDS,), compliance: bool = True) -> bytes:
    """The qcStatements of a correct certificate of ``kind``, in EN 319 412-5 clause order."""
    out = [statement(QC_COMPLIANCE)] if compliance else []
    out += list(extra)
    if pds_entries:
        out.append(pds(*pds_entries))
    out.append(qc_type(*(types or ((QCT_ESEAL,) if kind == "qsealc" else (QCT_WEB,)))))
    out.append(statement(PKIX_QC_SYNTAX_V2, seq(oid(SEMANTICS_LEGAL))))
    out.append(psd2 if psd2 is not None else psd2_statement(roles("PSP_AI", "PSP_PI"), *NCA))
    return seq(*out)


# --- the PKI --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A leaf to issue; ``Spec.qwac()`` etc. are the correct ones, ``replace(spec, field=...)`` breaks one thing."""

    kind: str
    subject: tuple[tuple[x509.ObjectIdentifier, str], ...]
    ekus: tuple[x509.ObjectIdentifier, ...]
    policies: tuple[x509.ObjectIdentifier, ...]
    key_usage: frozenset[str]
    qc: bytes | None
    qc_critical: bool = False
    cabf: bytes | None = None
    san: tuple[str, ...] = ()
    not_before: dt.datetime = ISSUED
    days: int = 365
    ocsp: str | None = f"{BASE}/ocsp"
    ca_issuers: str | None = f"{BASE}/ca/issuing.der"
    crl: str | None = f"{BASE}/crl/issuing.crl"
    rsa: bool = False
    extra: tuple[tuple[Any, bool], ...] = field(default=())

    @staticmethod
    def qwac(**changes: Any) -> Spec:
        """A PSD2 QWAC for mutual TLS (non-browser: serverAuth + clientAuth), EV, 365 days."""
        subject = ((NameOID.COUNTRY_NAME, "NL"), (NameOID.JURISDICTION_COUNTRY_NAME, "NL"),
                   (NameOID.BUSINESS_CATEGORY, "Private Organization"), (NameOID.SERIAL_NUMBER, "R161162"),
                   (NameOID.LOCALITY_NAME, "Amsterdam"), (NameOID.ORGANIZATION_NAME, "Foreign Fintech B.V."),
                   (NameOID.ORGANIZATION_IDENTIFIER, ORG_ID), (NameOID.COMMON_NAME, DOMAIN))
        spec = Spec("qwac", subject, (SERVER, CLIENT), (EV, QEVCP_W, QCP_W_PSD2), frozenset({"digital_signature"}),
                    statements("qwac"), cabf=cabf_org_id("PSD", "NL", "DNB-R161162"), san=(DOMAIN,))
        return replace(spec, **changes)

    @staticmethod
    def browser_qwac(**changes: Any) -> Spec:
        """A QWAC for browsers: serverAuth only, so CA/B's SC-081 schedule (200 days from 2026-03-15)."""
        return Spec.qwac(**{"ekus": (SERVER,), "days": 200, **changes})

    @staticmethod
    def qsealc(**changes: Any) -> Spec:
        subject = ((NameOID.COUNTRY_NAME, "NL"), (NameOID.ORGANIZATION_NAME, "Foreign Fintech B.V."),
                   (NameOID.ORGANIZATION_IDENTIFIER, ORG_ID), (NameOID.COMMON_NAME, "Foreign Fintech B.V. Seal"))
        spec = Spec("qsealc", subject, (), (QCP_L,), frozenset({"content_commitment"}), statements("qsealc"), days=730)
        return replace(spec, **changes)

    @staticmethod
    def two_qwac(**changes: Any) -> Spec:
        """An eIDAS 2.0 2-QWAC (TS 119 411-5): QNCP-w-gen, id-kp-tls-binding only, QcType web."""
        subject = ((NameOID.COUNTRY_NAME, "NL"), (NameOID.ORGANIZATION_NAME, "Foreign Fintech B.V."),
                   (NameOID.ORGANIZATION_IDENTIFIER, ORG_ID), (NameOID.COMMON_NAME, DOMAIN))
        spec = Spec("2-qwac", subject, (TLS_BINDING,), (QNCP_W_GEN,), frozenset({"digital_signature"}),
                    statements("2-qwac"), san=(DOMAIN,))
        return replace(spec, **changes)


def _ku(bits: frozenset[str]) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign")
    return x509.KeyUsage(**{n: n in bits for n in names}, encipher_only=False, decipher_only=False)


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(o, v) for o, v in attributes])


class ForeignPKI:
    """A root and an issuing CA of the 'Foreign Demo QTSP' (P-256), valid 2026-2036."""

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name((NameOID.COUNTRY_NAME, "NL"), (NameOID.ORGANIZATION_NAME, "Foreign Demo QTSP B.V."),
                          (NameOID.COMMON_NAME, "Foreign Demo QTSP Root CA"))
        ca_name = _name((NameOID.COUNTRY_NAME, "NL"), (NameOID.ORGANIZATION_NAME, "Foreign Demo QTSP B.V."),
                        (NameOID.COMMON_NAME, "Foreign Demo QTSP Qualified CA"))
        start = dt.datetime(2026, 1, 1, tzinfo=UTC)
        ski_root = x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key())
        self.root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
                     .public_key(self.root_key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(_ku(frozenset({"key_cert_sign", "crl_sign"})), critical=True)
                     .add_extension(ski_root, critical=False)
                     .sign(self.root_key, hashes.SHA256()))
        self.ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(root_name)
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(start + dt.timedelta(days=3000))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(_ku(frozenset({"key_cert_sign", "crl_sign", "digital_signature"})), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski_root), critical=False)
                   .add_extension(x509.AuthorityInformationAccess([
                       x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{BASE}/ocsp")),
                       x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                              x509.UniformResourceIdentifier(f"{BASE}/ca/root.der"))]), critical=False)
                   .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                       [x509.UniformResourceIdentifier(f"{BASE}/crl/root.crl")], None, None, None)]), critical=False)
                   .add_extension(x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None)]),
                                  critical=False)
                   .sign(self.root_key, hashes.SHA256()))
        self.keys: dict[int, Any] = {}  # serial -> the leaf's private key

    def issue(self, spec: Spec) -> x509.Certificate:
        key: Any = rsa.generate_private_key(65537, 2048) if spec.rsa else ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(_name(*spec.subject)).issuer_name(self.ca.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(spec.not_before)
             .not_valid_after(spec.not_before + dt.timedelta(days=spec.days) - dt.timedelta(seconds=1))
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False))
        if spec.san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in spec.san]), critical=False)
        b = b.add_extension(_ku(spec.key_usage), critical=True)
        if spec.ekus:
            b = b.add_extension(x509.ExtendedKeyUsage(list(spec.ekus)), critical=False)
        if spec.policies:
            b = b.add_extension(x509.CertificatePolicies([x509.PolicyInformation(p, None) for p in spec.policies]),
                                critical=False)
        access = [x509.AccessDescription(m, x509.UniformResourceIdentifier(u)) for m, u in (
            (AuthorityInformationAccessOID.OCSP, spec.ocsp), (AuthorityInformationAccessOID.CA_ISSUERS, spec.ca_issuers))
            if u is not None]
        if access:
            b = b.add_extension(x509.AuthorityInformationAccess(access), critical=False)
        if spec.crl is not None:
            b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(spec.crl)], None, None, None)]), critical=False)
        if spec.qc is not None:
            b = b.add_extension(x509.UnrecognizedExtension(QC_STATEMENTS, spec.qc), critical=spec.qc_critical)
        if spec.cabf is not None:
            b = b.add_extension(x509.UnrecognizedExtension(CABF_ORG_ID, spec.cabf), critical=False)
        for value, critical in spec.extra:
            b = b.add_extension(value, critical=critical)
        cert = b.sign(self.ca_key, hashes.SHA256())
        self.keys[cert.serial_number] = key
        return cert

    def write(self, directory: Path, name: str, cert: x509.Certificate) -> Path:
        """PEM of ``cert`` in ``directory`` (tests write their own fixtures; product code goes through qtsp.files)."""
        path = directory / f"{name}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def write_cas(self, directory: Path) -> tuple[Path, Path]:
        return self.write(directory, "foreign-root", self.root), self.write(directory, "foreign-ca", self.ca)


# --- one broken certificate per rule --------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    spec: Spec
    rule: str  # the rule id the validator must report
    clause: str  # a piece of the finding's source: document, edition and clause
    purpose: str | None = None  # None: inferred


def _psd2(role_list: list[tuple[str, str]], name: str = NCA[0], nca_id: str = NCA[1]) -> bytes:
    return psd2_statement(role_list, name, nca_id)


def _subject_without(spec: Spec, oid_: x509.ObjectIdentifier) -> tuple[tuple[x509.ObjectIdentifier, str], ...]:
    return tuple(a for a in spec.subject if a[0] != oid_)


_Q, _S, _T = Spec.qwac(), Spec.qsealc(), Spec.two_qwac()
TS495 = "ETSI TS 119 495 V1.8.1"
EN4125 = "ETSI EN 319 412-5 V2.6.1"
VARIANTS: tuple[Variant, ...] = (
    Variant("qsealc-with-psd2-website-policy", replace(_S, policies=(QCP_L, QCP_W_PSD2)), "qcp-w-psd2-on-seal",
            f"{TS495} 6.1 (OVR-6.1-3)"),
    Variant("qsealc-with-qevcp-w", replace(_S, policies=(QCP_L, QEVCP_W)), "policy-type-mismatch",
            "ETSI EN 319 411-2 V2.5.1 (2023-10) 5.3"),
    Variant("qsealc-without-qcp-l", replace(_S, policies=()), "policy-missing", "ETSI EN 319 411-2 V2.5.1 (2023-10) 5.3"),
    Variant("qwac-without-qualified-policy", replace(_Q, policies=(EV, QCP_W_PSD2)), "policy-missing",
            f"{TS495} 6.1 (OVR-6.1-3)"),
    Variant("qwac-with-seal-policy", replace(_Q, policies=(EV, QEVCP_W, QCP_L)), "policy-type-mismatch",
            "ETSI EN 319 411-2 V2.5.1 (2023-10) 5.3"),
    Variant("two-qwac-without-qncp-w-gen", replace(_T, policies=(QNCP_W,)), "policy-missing",
            "ETSI TS 119 411-5 V2.1.1 (2025-02) 6.1", purpose="2-qwac"),
    Variant("qwac-without-cabf-org-id", replace(_Q, cabf=None), "cabf-org-id-missing",
            "CA/Browser Forum EV Guidelines 2.0.2 7.1.2.2"),
    Variant("qwac-cabf-org-id-repeats-psd", replace(_Q, cabf=cabf_org_id("PSD", "NL", "PSDNL-DNB-R161162")),
            "cabf-org-id-mismatch", "CA/Browser Forum EV Guidelines 2.0.2 7.1.2.2"),
    Variant("empty-roles-of-psp", replace(_Q, qc=statements("qwac", psd2=_psd2([]))), "psd2-roles-empty",
            f"{TS495} 5.2.2 (GEN-5.2.2-1)"),
    Variant("role-name-lower-case", replace(_Q, qc=statements("qwac", psd2=_psd2([(ROLE["PSP_AI"], "psp_ai")]))),
            "role-oid-mismatch", f"{TS495} 5.1 and 5.2.2 (GEN-5.2.2-5)"),
    Variant("unspecified-with-other-roles", replace(_Q, qc=statements("qwac", psd2=_psd2(roles("Unspecified", "PSP_AI")))),
            "psd2-roles-combination", f"{TS495} 5.2.2"),
    Variant("ncaid-with-underscore", replace(_Q, qc=statements("qwac", psd2=_psd2(roles("PSP_AI"), nca_id="NL_DNB"))),
            "ncaid-malformed", f"{TS495} 5.2.3 (GEN-5.2.3-2)"),
    Variant("ncaname-empty", replace(_Q, qc=statements("qwac", psd2=_psd2(roles("PSP_AI"), name=""))),
            "ncaname-malformed", f"{TS495} 5.2.3 (GEN-5.2.3-1)"),
    Variant("ncaid-disagrees-with-org-id", replace(_Q, qc=statements("qwac", psd2=_psd2(roles("PSP_AI"), "National Bank of Belgium", "BE-NBB"))),
            "ncaid-mismatch", f"{TS495} 5.2.1 (GEN-5.2.1-3) and 5.2.3"),
    Variant("no-psd2-statement", replace(_Q, qc=seq(statement(QC_COMPLIANCE), pds(ENGLISH_PDS), qc_type(QCT_WEB))),
            "missing-psd2-statement", f"{TS495} 5.1 (GEN-5.1.1)"),
    Variant("psd2-statement-not-decodable", replace(_Q, qc=statements("qwac", psd2=statement(PSD2, seq(utf8("PSP_AI"))))),
            "psd2-statement-malformed", f"{TS495} annex A"),
    Variant("qsealc-without-org-id", replace(_S, subject=_subject_without(_S, NameOID.ORGANIZATION_IDENTIFIER)),
            "org-id-missing", f"{TS495} 5.2.1 and 5.3 (GEN-5.3-3)"),
    Variant("two-qwac-without-tls-binding", replace(_T, ekus=()), "eku-tls-binding-missing",
            "ETSI TS 119 411-5 V2.1.1 (2025-02) 6.2", purpose="2-qwac"),
    Variant("server-only-qwac-as-mtls-client", Spec.browser_qwac(), "eku-client-auth-missing", "IETF RFC 5280 4.2.1.12",
            purpose="qwac-client"),
    Variant("org-id-without-nca", replace(_S, subject=tuple((o, "PSDNL-R161162" if o == NameOID.ORGANIZATION_IDENTIFIER else v)
                                                         for o, v in _S.subject)),
            "org-id-malformed", f"{TS495} 5.2.1 (GEN-5.2.1-3)"),
    Variant("org-id-unknown-scheme", replace(_S, subject=tuple((o, "XYZNL-12345" if o == NameOID.ORGANIZATION_IDENTIFIER else v)
                                                            for o, v in _S.subject)),
            "org-id-malformed", "ETSI EN 319 412-1 V1.5.1 (2023-09) 5.1.4"),
    Variant("no-qcpds", replace(_S, qc=statements("qsealc", pds_entries=())), "qc-pds-missing", f"{EN4125} 4.3.4 (QCS-5-01)"),
    Variant("qcpds-on-http", replace(_Q, qc=statements("qwac", pds_entries=((f"http://{HOST}/pds-en.pdf", "en"),))),
            "qc-pds-not-https", f"{EN4125} 4.3.4"),
    Variant("qcpds-without-english", replace(_S, qc=statements("qsealc", pds_entries=((f"https://{HOST}/pds-nl.pdf", "nl"),))),
            "qc-pds-no-english", f"{EN4125} 4.3.4 (QCS-5-02)"),
    Variant("qcsscd-on-qwac", replace(_Q, qc=statements("qwac", extra=(statement(QC_SSCD),))), "qc-sscd-on-website",
            f"{EN4125} 4.2.2"),
    Variant("qcsscd-without-qscd-policy", replace(_S, qc=statements("qsealc", extra=(statement(QC_SSCD),))), "qc-sscd-policy",
            "ETSI EN 319 411-2 V2.5.1 (2023-10) 5.3"),
    Variant("qc-statements-critical", replace(_Q, qc_critical=True), "qc-statements-critical", f"{EN4125} 4.1 (QCS-4.1-02)"),
    Variant("two-qc-types", replace(_Q, qc=statements("qwac", types=(QCT_WEB, QCT_ESEAL))), "qctype-mismatch", f"{EN4125} 4.2.3"),
    Variant("qctype-eseal-on-qwac", replace(_Q, qc=statements("qwac", types=(QCT_ESEAL,))), "qctype-mismatch", f"{EN4125} 4.2.3"),
    Variant("qcc-legislation-on-eu-cert", replace(_S, qc=statements("qsealc", extra=(statement(QC_CC, seq(printable("NL"))),))),
            "qc-cc-legislation", f"{EN4125} 4.2.4"),
    Variant("no-qc-compliance", replace(_S, qc=statements("qsealc", compliance=False)), "not-qualified", f"{EN4125} 4.2.1"),
    Variant("ev-without-business-category", replace(_Q, subject=_subject_without(_Q, NameOID.BUSINESS_CATEGORY)),
            "subject-ev-attribute", "CA/Browser Forum EV Guidelines 2.0.2 7.1.4.2.3"),
    Variant("ev-without-jurisdiction", replace(_Q, subject=_subject_without(_Q, NameOID.JURISDICTION_COUNTRY_NAME)),
            "subject-ev-attribute", "CA/Browser Forum EV Guidelines 2.0.2 7.1.4.2.4"),
    Variant("ev-without-serial-number", replace(_Q, subject=_subject_without(_Q, NameOID.SERIAL_NUMBER)),
            "subject-ev-attribute", "CA/Browser Forum EV Guidelines 2.0.2 7.1.4.2.5"),
    Variant("qwac-with-ou", replace(_Q, subject=_Q.subject + ((NameOID.ORGANIZATIONAL_UNIT_NAME, "Payments"),)),
            "subject-ou-present", "7.1.2.7.4"),
    Variant("qsealc-without-cn", replace(_S, subject=_subject_without(_S, NameOID.COMMON_NAME)), "subject-seal-attribute",
            "ETSI EN 319 412-3 V1.3.1 (2023-09) 4.2.1"),
    Variant("qwac-key-cert-sign", replace(_Q, key_usage=frozenset({"digital_signature", "key_cert_sign"})), "key-usage",
            "7.1.2.7.11"),
    Variant("qwac-ec-key-encipherment", replace(_Q, key_usage=frozenset({"digital_signature", "key_encipherment"})),
            "key-usage", "7.1.2.7.11"),
    Variant("qsealc-key-encipherment-only", replace(_S, key_usage=frozenset({"key_encipherment"})), "key-usage",
            "ETSI EN 319 412-3 V1.3.1 (2023-09) 4.3.1"),
    Variant("qwac-with-code-signing", replace(_Q, ekus=(SERVER, CLIENT, ExtendedKeyUsageOID.CODE_SIGNING)), "eku-forbidden",
            "7.1.2.7.10"),
    Variant("qwac-without-server-auth", replace(_Q, ekus=(CLIENT,)), "eku-server-auth-missing", "ETSI EN 319 412-4 V1.3.1 (2023-09) 4.1.3",
            purpose="qwac"),
    Variant("qsealc-with-server-auth", replace(_S, ekus=(SERVER,)), "eku-website-on-seal", "ETSI EN 319 412-3 V1.3.1 (2023-09) 4.1",
            purpose="qsealc"),
    Variant("two-qwac-with-server-auth", replace(_T, ekus=(TLS_BINDING, SERVER)), "eku-tls-on-2qwac",
            "ETSI TS 119 411-5 V2.1.1 (2025-02) 6.2", purpose="2-qwac"),
    Variant("browser-qwac-365-days", Spec.browser_qwac(days=365), "validity-too-long", "6.3.2"),
    Variant("mtls-qwac-399-days", replace(_Q, days=399), "validity-too-long", "6.3.2 (as before ballot SC-081"),
    Variant("no-ocsp-url", replace(_Q, ocsp=None), "aia-ocsp-missing", "ETSI EN 319 412-2 V2.3.1 (2023-09) 4.4.1 (GEN-4.4.1-8)"),
    Variant("no-ca-issuers-url", replace(_S, ca_issuers=None), "aia-ca-issuers-missing",
            "ETSI EN 319 412-2 V2.3.1 (2023-09) 4.4.1 (GEN-4.4.1-3)"),
    Variant("no-crl-distribution-point", replace(_Q, crl=None), "crldp-missing",
            "ETSI EN 319 412-2 V2.3.1 (2023-09) 4.3.11 (GEN-4.3.11-2)"),
    Variant("ocsp-url-on-https", replace(_Q, ocsp=f"https://{HOST}/ocsp"), "service-url-not-http", "7.1.2.7.7 and 7.1.2.11.2"),
)
VARIANT = {v.name: v for v in VARIANTS}

# Correct certificates in the forms the standards allow besides the plain ones: each must be accepted.
VALID: dict[str, Spec] = {
    "qwac": _Q,
    "browser-qwac": Spec.browser_qwac(),
    "qsealc": _S,
    "qsealc-qscd": replace(_S, policies=(QCP_L_QSCD,), qc=statements("qsealc", extra=(statement(QC_SSCD),))),
    "two-qwac": _T,
    "qwac-v181-roles": replace(_Q, qc=statements("qwac", psd2=_psd2(roles("PSP_PI", "VOP_RS", "VOP_VS")))),
    "qsealc-central-bank": replace(_S, qc=statements("qsealc", psd2=_psd2(roles("PSP_CB"), "NA", "NA"))),
    "qsealc-unspecified": replace(_S, qc=statements("qsealc", psd2=_psd2(roles("Unspecified")))),
    "qwac-rsa-key-encipherment": replace(_Q, rsa=True, key_usage=frozenset({"digital_signature", "key_encipherment"})),
    "qsealc-non-repudiation-and-signature": replace(_S, key_usage=frozenset({"content_commitment", "digital_signature"})),
    "qwac-client-only": replace(_Q, ekus=(CLIENT,)),
    "qwac-pds-two-languages": replace(_Q, qc=statements("qwac", pds_entries=((f"https://{HOST}/pds-nl.pdf", "nl"), ENGLISH_PDS))),
}

