"""What is 2-QWAC only (ETSI TS 119 411-5 V2.1.1 4.2), checked on the lint copy before the CA signs and on
every issued 2-QWAC in tests. pkilint 0.13.3 has no 2-QWAC type: its QNCP-w-gen legal-person type judges the
EN 319 412-4/-5 content (``LintTarget.ETSI_QNCP_W_GEN``); these checks add the EKU, the policy and the key a
browser can verify a binding with (Chromium's ``net/cert/two_qwac.cc`` accepts ES256 on P-256, RS256, PS256)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from . import oids
from .rules import problem

Problem = tuple[str, str]
# TS 119 411-5 4.2.1 names QNCP-w-gen alone; a CA/B TLS policy would claim a TLS certificate it is not.
_CABF_TLS_POLICIES = frozenset({oids.CABF_EV, oids.CABF_OV, x509.ObjectIdentifier("2.23.140.1.2.1"),
                                x509.ObjectIdentifier("2.23.140.1.2.3")})


def binding_key_ok(public_key: object) -> bool:
    """A key a browser verifies a binding with: P-256 (ES256) or RSA of 2048 bits or more (RS256, PS256)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.curve.name == "secp256r1"
    return isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= 2048


def check(cert: x509.Certificate) -> list[Problem]:
    problems: list[Problem] = []
    try:
        ekus = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = []
    if ekus != [oids.KP_TLS_BINDING]:
        problems.append(problem("qtsp.two_qwac.eku", f"EKU {[o.dotted_string for o in ekus]}: id-kp-tls-binding only"))
    try:
        policies = [p.policy_identifier for p in cert.extensions.get_extension_for_class(x509.CertificatePolicies).value]
    except x509.ExtensionNotFound:
        policies = []
    if oids.QNCP_W_GEN not in policies or _CABF_TLS_POLICIES & set(policies):
        problems.append(problem("qtsp.two_qwac.policy", f"policies {[p.dotted_string for p in policies]}"))
    if not binding_key_ok(cert.public_key()):
        problems.append(problem("qtsp.two_qwac.key"))
    return problems
