"""What is 2-QWAC only (ETSI TS 119 411-5 V2.1.1 4.2). pkilint 0.13.3 has no 2-QWAC type: its QNCP-w-gen
legal-person type judges the EN 319 412-4/-5 content (``LintTarget.ETSI_QNCP_W_GEN``); ``checks.py``
(``_check_two_qwac``) adds the EKU, the policy and the key a browser can verify a binding with (Chromium's
``net/cert/two_qwac.cc`` accepts ES256 on P-256, RS256, PS256), with the values below."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from . import oids

# TS 119 411-5 4.2.1 names QNCP-w-gen alone; a CA/B TLS policy would claim a TLS certificate it is not.
CABF_TLS_POLICIES = frozenset({oids.CABF_EV, oids.CABF_OV, x509.ObjectIdentifier("2.23.140.1.2.1"),
                               x509.ObjectIdentifier("2.23.140.1.2.3")})


def binding_key_ok(public_key: object) -> bool:
    """A key a browser verifies a binding with: P-256 (ES256) or RSA of 2048 bits or more (RS256, PS256)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.curve.name == "secp256r1"
    return isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= 2048
