"""Certificates as users hand them over: a PEM bundle (one or more) or a single DER certificate."""

from __future__ import annotations

from cryptography import x509

from .errors import Kind, QTSPError

__all__ = ["load_certificates"]


def load_certificates(data: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate in ``data``, PEM (one or more) or DER (exactly one); anything else is unusable input
    (QTSPError MALFORMED, exit 2) naming ``what``."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise QTSPError(Kind.MALFORMED, f"{what} is not a PEM or DER certificate") from None
