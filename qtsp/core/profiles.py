"""Certificate profiles: validated data, each rule citing the clause it implements.

A profile says what a certificate of its kind looks like; ``builder.py`` turns a profile,
a subject and an issuer into a ``CertificateBuilder``. Profiles refuse inconsistent
combinations when constructed, so a bad one never reaches the signer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from . import oids, rules
from .errors import policy

KEY_USAGE_FIELDS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


class CertificateKind(enum.StrEnum):
    """What a subscriber asks for (``qtsp issue qwac|qsealc``, the API's and bulk's ``kind``). The
    profiles of a kind carry its name among their tags, which the certificate lists filter by."""

    QWAC = "qwac"  # the 1-QWAC of ETSI TS 119 411-5 V2.1.1 4.1: the TLS certificate itself is qualified
    QSEALC = "qsealc"
    TWO_QWAC = "two-qwac"  # the 2-QWAC of TS 119 411-5 V2.1.1 4.2: signs TLS certificate bindings, never TLS


CERTIFICATE_KINDS: tuple[str, ...] = tuple(kind.value for kind in CertificateKind)


class Purpose(enum.StrEnum):
    """What a QWAC authenticates (``qtsp issue qwac --purpose``, the API's and bulk's ``purpose``), and so
    which hierarchy issues it. Chrome Root Program Policy v1.6 (2025-02-15) 3.2.2 (4.2.2 from v1.7): a
    hierarchy in the Chrome Root Store is dedicated to TLS server authentication, its subscriber
    certificates issued from 2026-06-15 assert id-kp-serverAuth only. So a browser QWAC (``server``) comes
    from its own root; a PSD2 mutual-TLS QWAC (``client``, ``both``: clientAuth, TS 119 495 5.3 note 3)
    from the other, non-browser root."""

    SERVER = "server"  # browser hierarchy: serverAuth only
    CLIENT = "client"  # non-browser hierarchy: clientAuth only
    BOTH = "both"  # non-browser hierarchy: serverAuth + clientAuth (the PSD2 mTLS QWAC, the default)


PURPOSES: tuple[str, ...] = tuple(purpose.value for purpose in Purpose)


class Hierarchy(enum.StrEnum):
    """The two QWAC hierarchies: their roots never sign each other's CAs."""

    BROWSER = "browser"
    NON_BROWSER = "non-browser"


class SubjectShape(enum.Enum):
    QWAC_EV = "qwac-ev"  # EN 319 412-4 + EVG 9.2
    QSEAL = "qseal"  # EN 319 412-3 4.2.1 / TS 119 495 5.2.1
    CA = "ca"  # BR 7.1.2.10.2: C, O, CN (+ organizationIdentifier of the QTSP)


class LintTarget(enum.Enum):
    """Which pkilint linter set checks certificates of this profile."""

    ETSI_QWAC = "QEVCP-W-PSD2-EIDAS-FINAL-CERTIFICATE"
    ETSI_QWAC_NON_BROWSER = "QEVCP-W-PSD2-EIDAS-NON-BROWSER-FINAL-CERTIFICATE"
    ETSI_DETECT = "detect"  # seals have no pkilint type; they detect as a legal-person cert
    CABF_ROOT = "ROOT_CA"
    CABF_TLS_CA = "INTERNAL_UNCONSTRAINED_TLS_CA"
    CABF_NON_TLS_CA = "NON_TLS_CA"
    CABF_OCSP = "OCSP_RESPONDER"
    # The 2-QWAC (TS 119 411-5 V2.1.1 4.2): pkilint 0.13.3 has no 2-QWAC type; QNCP-w-gen legal person (EN 319
    # 411-2 policy, EN 319 412-4 content) is the closest, and qtsp/core/two_qwac.py checks what is 2-QWAC only.
    ETSI_QNCP_W_GEN = "QNCP-W-GEN-LEGAL-PERSON-EIDAS-FINAL-CERTIFICATE"
    CABF_CROSS_CA = "INTERNAL_CROSS_CA"  # BR 7.1.2.2: a cross-certified subordinate CA (the ceremonies' root links)
    PKIX = "pkix"  # RFC 5280 only: certificates outside the TLS and qualified hierarchies


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    shape: SubjectShape
    lint: LintTarget
    key_usage: frozenset[str]
    ext_key_usage: tuple[x509.ObjectIdentifier, ...] = ()
    policies: tuple[x509.ObjectIdentifier, ...] = ()
    is_ca: bool = False
    path_length: int | None = None
    qc_type: str | None = None  # QcType statement; None: no QCStatements at all
    qc_sscd: bool = False
    validity_days: int | None = None  # None: the BR TLS schedule (QWACs)
    ocsp_nocheck: bool = False
    aia: bool = True
    crl_dp: bool = True
    san: bool = False
    cabf_org_id: bool = False
    ski: bool = True  # BR 7.1.2.7.6: NOT RECOMMENDED on TLS subscriber certificates
    allow_ed25519: bool = False
    tags: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = self.key_usage - set(KEY_USAGE_FIELDS)
        if unknown:
            raise policy(f"profile {self.name}: unknown key usages {sorted(unknown)}")
        if self.is_ca != ("key_cert_sign" in self.key_usage):
            raise policy(f"profile {self.name}: CA certificates and only they carry keyCertSign (RFC 5280 4.2.1.3)")
        if self.qc_type == oids.QCT_ESEAL:
            if oids.QCP_W_PSD2 in self.policies:
                raise policy(f"profile {self.name}: QCP-w-psd2 belongs to website certificates only (TS 119 495 5.3)")
            if ExtendedKeyUsageOID.SERVER_AUTH in self.ext_key_usage:
                raise policy(f"profile {self.name}: a seal never carries serverAuth (EN 319 412-3)")
            if self.qc_sscd != (oids.QCP_L_QSCD in self.policies):
                raise policy(f"profile {self.name}: QcSSCD goes with QCP-l-qscd and only with it (EN 319 412-5)")
        if self.qc_type == oids.QCT_WEB and self.is_two_qwac:
            if self.qc_sscd or not self.san:
                raise policy(f"profile {self.name}: a 2-QWAC names its sites (SAN) and has no QcSSCD")
            if set(self.ext_key_usage) != {oids.KP_TLS_BINDING} or oids.QNCP_W_GEN not in self.policies:
                raise policy(f"profile {self.name}: a 2-QWAC asserts id-kp-tls-binding only, under QNCP-w-gen "
                             "(ETSI TS 119 411-5 V2.1.1 4.2.1, 4.2.2)")
        elif self.qc_type == oids.QCT_WEB:
            if self.qc_sscd:
                raise policy(f"profile {self.name}: QcSSCD must not appear on a QWAC")
            if self.policies[:1] != (oids.CABF_EV,):
                raise policy(f"profile {self.name}: the CA/B policy OID comes first (BR 7.1.6.4)")
            if not self.san or not self.cabf_org_id:
                raise policy(f"profile {self.name}: a QWAC needs SAN and cabfOrganizationIdentifier")
        if self.qc_type == oids.QCT_WEB and not self.is_ca:
            ekus = set(self.ext_key_usage)
            if self.lint is LintTarget.ETSI_QWAC and ekus != {ExtendedKeyUsageOID.SERVER_AUTH}:
                raise policy(f"profile {self.name}: a browser QWAC asserts serverAuth only (Chrome Root Program "
                             "Policy v1.6 3.2.2)")
            if self.lint is LintTarget.ETSI_QWAC_NON_BROWSER and ExtendedKeyUsageOID.CLIENT_AUTH not in ekus:
                raise policy(f"profile {self.name}: a non-browser (mutual-TLS) QWAC asserts clientAuth")
        if self.ocsp_nocheck and self.ext_key_usage != (ExtendedKeyUsageOID.OCSP_SIGNING,):
            raise policy(f"profile {self.name}: an OCSP responder has id-kp-OCSPSigning as its only EKU (RFC 6960)")
        if self.validity_days is not None and self.validity_days < 1:
            raise policy(f"profile {self.name}: validity must be at least one day")

    @property
    def is_two_qwac(self) -> bool:
        """A 2-QWAC (TS 119 411-5 V2.1.1 4.2): a website certificate whose only EKU is id-kp-tls-binding."""
        return not self.is_ca and oids.KP_TLS_BINDING in self.ext_key_usage

    @property
    def hierarchy(self) -> Hierarchy | None:
        """Which QWAC hierarchy issues certificates of this profile (None: not a QWAC profile)."""
        if self.lint is LintTarget.ETSI_QWAC:
            return Hierarchy.BROWSER
        if self.lint is LintTarget.ETSI_QWAC_NON_BROWSER:
            return Hierarchy.NON_BROWSER
        return None

    @property
    def rule_tags(self) -> frozenset[str]:
        """What the rules of qtsp/core/rules.py call this profile's certificates."""
        tags = set()
        if self.qc_type is not None:
            tags.add(rules.QUALIFIED)
        if self.is_two_qwac:
            tags.add(rules.TWO_QWAC)  # a website certificate, but no TLS one: the CA/B validity rows do not bind it
        elif self.qc_type == oids.QCT_WEB or (self.san and not self.is_ca):
            tags.add(rules.WEBSITE)
        if self.qc_type == oids.QCT_ESEAL:
            tags.add(rules.SEAL)
        if "psd2" in self.tags:
            tags.add(rules.PSD2)
        if self.hierarchy is Hierarchy.BROWSER:
            tags.add(rules.BROWSER_QWAC)
        if self.hierarchy is Hierarchy.NON_BROWSER:
            tags.add(rules.NON_BROWSER_QWAC)
        if self.ocsp_nocheck:
            tags.add(rules.OCSP_SIGNER)
        return frozenset(tags)

    def with_validity(self, days: int) -> Profile:
        return replace(self, validity_days=days)


_QWAC_POLICIES = (oids.CABF_EV, oids.QEVCP_W, oids.QCP_W_PSD2)

# The non-browser QWACs' validity is the sandbox's qwac_mtls_validity_days (qtsp/config.py), at most
# validity.NON_BROWSER_MAX_DAYS; ``validity_days=None`` here keeps the BR schedule for what else builds
# from these profiles (the simulator's scenario certificates).
QWAC = Profile(
    name="qwac",
    description="PSD2 QWAC for mutual TLS to bank APIs (non-browser hierarchy: serverAuth + clientAuth)",
    shape=SubjectShape.QWAC_EV,
    lint=LintTarget.ETSI_QWAC_NON_BROWSER,
    key_usage=frozenset({"digital_signature"}),  # EN 319 412-4 / BR 7.1.2.7.11
    ext_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    policies=_QWAC_POLICIES,
    qc_type=oids.QCT_WEB,
    san=True,
    cabf_org_id=True,
    ski=False,
    tags=frozenset({"psd2", CertificateKind.QWAC.value}),
)
QWAC_CLIENT = replace(
    QWAC,
    name="qwac-client",
    description="PSD2 QWAC for the client side of mutual TLS only (non-browser hierarchy: clientAuth)",
    ext_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH,),
)
QWAC_BROWSER = replace(
    QWAC,
    name="qwac-browser",
    description="PSD2 QWAC for browsers (browser hierarchy, serverAuth only: Chrome Root Program Policy v1.6 3.2.2)",
    lint=LintTarget.ETSI_QWAC,
    ext_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
)
QSEALC = Profile(
    name="qsealc",
    description="PSD2 QSealC under QCP-l (EN 319 412-3, TS 119 495)",
    shape=SubjectShape.QSEAL,
    lint=LintTarget.ETSI_DETECT,
    key_usage=frozenset({"content_commitment"}),  # nonRepudiation alone (EN 319 412-3 recommendation)
    policies=(oids.QCP_L,),
    qc_type=oids.QCT_ESEAL,
    validity_days=365,
    tags=frozenset({"psd2", CertificateKind.QSEALC.value}),
)
QSEALC_QSCD = replace(
    QSEALC,
    name="qsealc-qscd",
    description="PSD2 QSealC under QCP-l-qscd: key in a QSCD, QcSSCD statement",
    policies=(oids.QCP_L_QSCD,),
    qc_sscd=True,
)
ROOT_CA = Profile(
    name="root-ca",
    description="Sandbox root CA (BR 7.1.2.1)",
    shape=SubjectShape.CA,
    lint=LintTarget.CABF_ROOT,
    key_usage=frozenset({"key_cert_sign", "crl_sign"}),
    is_ca=True,
    validity_days=20 * 365,
    aia=False,
    crl_dp=False,
)
QWAC_ISSUING_CA = Profile(
    name="qwac-issuing-ca",
    description="Issuing CA for PSD2 mutual-TLS QWACs, non-browser hierarchy (BR 7.1.2.10 TLS subordinate CA)",
    shape=SubjectShape.CA,
    lint=LintTarget.CABF_TLS_CA,
    key_usage=frozenset({"key_cert_sign", "crl_sign", "digital_signature"}),
    ext_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    policies=_QWAC_POLICIES,
    is_ca=True,
    path_length=0,
    validity_days=10 * 365,
)
# Chrome Root Program Policy v1.6 3.2.1/3.2.2: a subordinate CA of a hierarchy dedicated to TLS server
# authentication asserts id-kp-serverAuth only, on a key no certificate with other EKUs shares (a new key).
QWAC_BROWSER_ISSUING_CA = replace(
    QWAC_ISSUING_CA,
    name="qwac-browser-issuing-ca",
    description="Issuing CA for browser QWACs, browser hierarchy (serverAuth only, its own root)",
    ext_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
)
QSEAL_ISSUING_CA = Profile(
    name="qseal-issuing-ca",
    description="Issuing CA for PSD2 QSealCs, outside the serverAuth hierarchy (EKU without serverAuth)",
    shape=SubjectShape.CA,
    lint=LintTarget.CABF_NON_TLS_CA,
    key_usage=frozenset({"key_cert_sign", "crl_sign", "digital_signature"}),
    ext_key_usage=(oids.KP_DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION),
    policies=(oids.QCP_L, oids.QCP_L_QSCD),
    is_ca=True,
    path_length=0,
    validity_days=10 * 365,
)
# The 2-QWAC (ETSI TS 119 411-5 V2.1.1 4.2, issue 18): a qualified website certificate that is no TLS
# certificate. It signs a JAdES "TLS certificate binding" (qtsp/core/tls_binding.py) naming the hashes of the
# site's ordinary TLS certificates. 4.2.1: policy QNCP-w-gen (EN 319 411-2); 4.2.2: id-kp-tls-binding as its only
# EKU; content per EN 319 412-4 (SAN dNSNames, legal-person subject) and EN 319 412-5 (QcCompliance, QcType web,
# QcPDS). The PSD2 statement is kept (TS 119 495 5.1): the sandbox issues to PSPs of its NCA register, and a bank
# reading the 2-QWAC learns the same roles and NCA as from a 1-QWAC. No CA/B policy OID, no
# cabfOrganizationIdentifier: those belong to CA/B TLS certificates, which a 2-QWAC is not.
# Validity: TS 119 411-5 and EN 319 411-2 set no maximum for a 2-QWAC and the CA/B TLS schedule binds only
# serverAuth certificates; the sandbox chooses 365 days, the validity of its QSealCs (the binding, not the
# 2-QWAC, is what a site renews with each TLS certificate).
TWO_QWAC = Profile(
    name="two-qwac",
    description="2-QWAC: signs TLS certificate bindings (QNCP-w-gen, id-kp-tls-binding only; TS 119 411-5 4.2)",
    shape=SubjectShape.QWAC_EV,
    lint=LintTarget.ETSI_QNCP_W_GEN,
    key_usage=frozenset({"digital_signature"}),  # it signs JWS; EN 319 412-4 4.3.2 leaves nonRepudiation out
    ext_key_usage=(oids.KP_TLS_BINDING,),
    policies=(oids.QNCP_W_GEN,),
    qc_type=oids.QCT_WEB,
    validity_days=365,
    san=True,
    tags=frozenset({"psd2", CertificateKind.TWO_QWAC.value}),
)
# Its issuing CA, under the sandbox root: EKU id-kp-tls-binding only, so nothing it signs is usable for TLS
# (as the QSealC CA's documentSigning keeps seals out of TLS); a CA/B "non-TLS CA" for pkilint.
TWO_QWAC_ISSUING_CA = Profile(
    name="two-qwac-issuing-ca",
    description="Issuing CA for 2-QWACs (EKU id-kp-tls-binding only: outside the TLS hierarchies)",
    shape=SubjectShape.CA,
    lint=LintTarget.CABF_NON_TLS_CA,
    key_usage=frozenset({"key_cert_sign", "crl_sign", "digital_signature"}),
    ext_key_usage=(oids.KP_TLS_BINDING,),
    policies=(oids.QNCP_W_GEN,),
    is_ca=True,
    path_length=0,
    validity_days=10 * 365,
)
OCSP_RESPONDER = Profile(
    name="ocsp-responder",
    description="Delegated OCSP responder of an issuing CA (RFC 6960 4.2.2.2, BR 7.1.2.8)",
    shape=SubjectShape.CA,
    lint=LintTarget.CABF_OCSP,
    key_usage=frozenset({"digital_signature"}),
    ext_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,),
    ocsp_nocheck=True,
    validity_days=365,
    aia=False,  # BR 7.1.2.8.2: no caIssuers on a responder certificate
    crl_dp=False,
)

# TS 119 495 6.2.6 asks for NCA requests to be "verifiably authentic". The sandbox issues each
# simulated NCA a seal-like certificate for signing them, from a CA kept apart from the
# qualified hierarchies, and signs its own receipts with a certificate from the same CA.
NCA_ISSUING_CA = Profile(
    name="nca-issuing-ca",
    description="CA for NCA request-signing and QTSP receipt certificates (not a qualified hierarchy)",
    shape=SubjectShape.CA,
    lint=LintTarget.CABF_NON_TLS_CA,
    key_usage=frozenset({"key_cert_sign", "crl_sign", "digital_signature"}),
    ext_key_usage=(oids.KP_DOCUMENT_SIGNING,),
    policies=(oids.ANY_POLICY,),
    is_ca=True,
    path_length=0,
    validity_days=10 * 365,
)
NCA_SEAL = Profile(
    name="nca-seal",
    description="Signs NCA requests (or QTSP receipts) as JWS",
    shape=SubjectShape.CA,
    lint=LintTarget.PKIX,
    key_usage=frozenset({"digital_signature", "content_commitment"}),
    ext_key_usage=(oids.KP_DOCUMENT_SIGNING,),
    validity_days=2 * 365,
    crl_dp=True,
)

# The simulator's CAs (issue 7): they issue the catalogue of negative certificates, never the normal
# sandbox certificates. No EKU, so one CA can sign QWAC and QSealC scenarios alike; pathLen 1 so
# that the "missing intermediate" scenario has a sub-CA under it.
SCENARIOS_CA = Profile(
    name="scenarios-ca",
    description="Simulator CA for negative and edge-case certificates (never for normal issuance)",
    shape=SubjectShape.CA,
    lint=LintTarget.PKIX,
    key_usage=frozenset({"key_cert_sign", "crl_sign", "digital_signature"}),
    policies=(oids.ANY_POLICY,),
    is_ca=True,
    path_length=1,
    validity_days=10 * 365,
)
SCENARIOS_SUB_CA = replace(SCENARIOS_CA, name="scenarios-sub-ca", path_length=0,
                           description="Simulator sub-CA, for the missing-intermediate scenario")

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (QWAC, QWAC_CLIENT, QWAC_BROWSER, QSEALC, QSEALC_QSCD, ROOT_CA, QWAC_ISSUING_CA, QWAC_BROWSER_ISSUING_CA,
              QSEAL_ISSUING_CA, TWO_QWAC, TWO_QWAC_ISSUING_CA, OCSP_RESPONDER, NCA_ISSUING_CA, NCA_SEAL, SCENARIOS_CA, SCENARIOS_SUB_CA)
}

# A CA certificate is a certificate of its parent too (for OCSP and CRL status); listings of issued
# certificates leave these out.
CA_PROFILES = frozenset(name for name, p in PROFILES.items() if p.is_ca)


QWAC_BY_PURPOSE: dict[Purpose, Profile] = {Purpose.SERVER: QWAC_BROWSER, Purpose.CLIENT: QWAC_CLIENT, Purpose.BOTH: QWAC}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise policy(f"unknown profile {name!r}: known profiles are {', '.join(PROFILES)}") from None
