"""Linting what a QTSP publishes, as a relying party receives it: a certificate, a CRL or an OCSP response,
PEM or DER, its type detected from the bytes.

``lint_artifact(data, issuer=..., at=...)`` returns an ``ArtifactReport``: the type, and the findings of our
own rules (``lint_crl.py``: RFC 5280 5 and CA/B BR 4.9.7 / 7.2; ``lint_ocsp.py``: RFC 6960, RFC 5019, RFC 9654
and CA/B BR 4.9.10 / 7.3), each naming its document, edition and clause. pkilint's linters (certificates,
CRLs, OCSP responses) run beside these in the CLI (``qtsp lint``), outside this package, which imports
only the core. A certificate gets no profile rules of ours here (they are the validator's); with an
issuer, its name chaining and signature are checked.

Time is the caller's (``at``): freshness is judged as of then.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509 import ocsp

from ..core.errors import Kind, QTSPError
from .findings import Finding

__all__ = ["CERTIFICATE", "CRL", "MAX_ARTIFACT_BYTES", "OCSP_RESPONSE", "TYPES", "ArtifactReport", "ArtifactType",
           "detect", "lint_artifact"]

ArtifactType = Literal["certificate", "crl", "ocsp-response"]
CERTIFICATE: ArtifactType = "certificate"
CRL: ArtifactType = "crl"
OCSP_RESPONSE: ArtifactType = "ocsp-response"
TYPES: tuple[ArtifactType, ...] = (CERTIFICATE, CRL, OCSP_RESPONSE)
MAX_ARTIFACT_BYTES = 32 * 1024 * 1024  # the largest CRL the revocation client accepts

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)
_LABELS: dict[bytes, ArtifactType] = {b"CERTIFICATE": CERTIFICATE, b"X509 CRL": CRL, b"OCSP RESPONSE": OCSP_RESPONSE}


@dataclass
class ArtifactReport:
    type: ArtifactType
    der: bytes
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    def as_dict(self) -> dict[str, object]:
        return {"type": self.type, "findings": [f.as_dict() for f in self.findings]}


def _der_of(data: bytes) -> tuple[bytes, ArtifactType | None]:
    """The DER bytes and, for PEM, the type its label names."""
    if b"-----BEGIN" not in data:
        return data, None
    blocks = _PEM.findall(data)
    if len(blocks) != 1:
        raise QTSPError(Kind.MALFORMED, f"the PEM input holds {len(blocks)} blocks; give one artifact per file")
    label, body = blocks[0]
    kind = _LABELS.get(label)
    if kind is None:
        raise QTSPError(Kind.MALFORMED, f"PEM label '{label.decode(errors='replace')[:40]}' is not a certificate, "
                        "a CRL (X509 CRL) or an OCSP response")
    try:
        return base64.b64decode(b"".join(body.split()), validate=True), kind
    except ValueError:
        raise QTSPError(Kind.MALFORMED, "the PEM body is not base64") from None


def _parses(kind: ArtifactType, der: bytes) -> bool:
    try:
        if kind == CERTIFICATE:
            cert = x509.load_der_x509_certificate(der)
            cert.issuer, cert.subject  # noqa: B018  # parsed on first use: names that do not parse are no certificate
        elif kind == CRL:
            x509.load_der_x509_crl(der)
        else:
            ocsp.load_der_ocsp_response(der)
        return True
    except (ValueError, x509.InvalidVersion):  # InvalidVersion: a version number no X.509 edition has
        return False


def detect(data: bytes) -> tuple[ArtifactType, bytes]:
    """(type, DER) of ``data``, PEM or DER; QTSPError(MALFORMED) if it is none of the three."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise QTSPError(Kind.MALFORMED, "the input is empty")
    if len(data) > MAX_ARTIFACT_BYTES:
        raise QTSPError(Kind.MALFORMED, f"the input is {len(data)} bytes; at most {MAX_ARTIFACT_BYTES} are read")
    der, labelled = _der_of(bytes(data))
    # An OCSPResponse starts with an ENUMERATED; a certificate and a CRL with a SEQUENCE each. Try in that order.
    for kind in ([labelled] if labelled else [OCSP_RESPONSE, CERTIFICATE, CRL]):
        if _parses(kind, der):
            return kind, der
    what = labelled or "a certificate, a CRL or an OCSP response"
    raise QTSPError(Kind.MALFORMED, f"the input is not {what} that parses (PEM or DER)")


def lint_artifact(data: bytes, *, at: dt.datetime, issuer: x509.Certificate | None = None,
                  request: bytes | None = None) -> ArtifactReport:
    """Detect the artifact and apply our rules for its type. ``issuer``: the CA that issued the CRL or the
    certificate the OCSP response is about (signature, name and responder authorisation are checked against
    it); ``request``: the DER OCSP request the response answers (its nonce and CertIDs are checked)."""
    if at.tzinfo is None:
        raise QTSPError(Kind.MALFORMED, "lint needs an aware 'at' (UTC)")
    kind, der = detect(data)
    if request is not None and kind != OCSP_RESPONSE:
        raise QTSPError(Kind.MALFORMED, f"an OCSP request goes with an OCSP response, not a {kind}")
    report = ArtifactReport(kind, der)
    if kind == CRL:
        from .lint_crl import lint_crl

        report.findings = lint_crl(der, at=at, issuer=issuer)
    elif kind == OCSP_RESPONSE:
        from .lint_ocsp import lint_ocsp_response

        report.findings = lint_ocsp_response(der, at=at, issuer=issuer, request=request)
    elif issuer is not None:
        try:
            report.findings = _certificate_issuer(x509.load_der_x509_certificate(der), issuer)
        except ValueError as exc:  # a part cryptography parses on first use
            raise QTSPError(Kind.MALFORMED, f"the certificate does not parse: {str(exc)[:160]}") from None
    return report


def _certificate_issuer(cert: x509.Certificate, issuer: x509.Certificate) -> list[Finding]:
    """With --issuer, a certificate's name chaining and signature (RFC 5280 6.1.3 (a)(1), (a)(4))."""
    out = []
    if cert.issuer != issuer.subject:
        out.append(Finding("certificate-issuer-name", "IETF RFC 5280 (2008-05) 6.1.3 (a)(4)", "error",
                           f"the certificate's issuer '{cert.issuer.rfc4514_string()}' is not the subject of the CA "
                           f"given ('{issuer.subject.rfc4514_string()}')"))
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        out.append(Finding("certificate-signature-invalid", "IETF RFC 5280 (2008-05) 6.1.3 (a)(1)", "error",
                           f"the certificate's signature does not verify with the key of "
                           f"'{issuer.subject.rfc4514_string()}'"))
    return out

