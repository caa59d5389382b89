"""NCA request-signing credentials: what a certificate must be before its signature counts.

Checked when the credential is registered and again on every request it signs (a credential registered
while valid expires, and a chain can stop verifying when an anchor is replaced): the documentSigning EKU
(RFC 9336, 1.3.6.1.5.5.7.3.36, the one the sandbox's NCA CA issues), a current validity period, not a
CA, and a chain of signatures, each CA certificate current and a CA, up to a configured anchor (the
sandbox's NCA CA, or an anchor file the operator gave). cryptography's own verifier is not used: it
accepts only the web PKI's serverAuth and clientAuth EKUs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from .errors import Kind, QTSPError

DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
MAX_INTERMEDIATES = 3


def _current(cert: x509.Certificate, now: dt.datetime, what: str) -> None:
    if now < cert.not_valid_before_utc:
        raise QTSPError(Kind.POLICY, f"{what} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z")
    if now >= cert.not_valid_after_utc:
        raise QTSPError(Kind.POLICY, f"{what} expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z")


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_leaf(leaf: x509.Certificate, now: dt.datetime) -> None:
    _current(leaf, now, "the NCA certificate")
    if is_ca(leaf):
        raise QTSPError(Kind.POLICY, "the NCA certificate is a CA certificate; register the NCA's request-signing certificate")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise QTSPError(Kind.POLICY, "the NCA certificate has no extended key usage; it needs documentSigning "
                                     f"({DOCUMENT_SIGNING.dotted_string})") from None
    if DOCUMENT_SIGNING not in eku:
        raise QTSPError(Kind.POLICY, f"the NCA certificate's extended key usage lacks documentSigning ({DOCUMENT_SIGNING.dotted_string})")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.digital_signature:
        raise QTSPError(Kind.POLICY, "the NCA certificate's key usage does not allow digitalSignature")


def check_credential(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                     anchors: Sequence[x509.Certificate], now: dt.datetime) -> None:
    """Raise QTSPError(POLICY) unless ``leaf`` is a current documentSigning certificate chaining to an anchor."""
    _check_leaf(leaf, now)
    if len(intermediates) > MAX_INTERMEDIATES:
        raise QTSPError(Kind.POLICY, f"at most {MAX_INTERMEDIATES} intermediate certificates")
    current, used = leaf, 0
    while True:
        anchor = next((a for a in anchors if issued_by(current, a)), None)
        if anchor is not None:
            if not is_ca(anchor):
                raise QTSPError(Kind.POLICY, "the anchor is not a CA certificate")
            _current(anchor, now, "the anchor")
            return
        parent = next((c for c in intermediates if c is not current and issued_by(current, c)), None)
        if parent is None or used == MAX_INTERMEDIATES:
            raise QTSPError(Kind.POLICY, "the NCA certificate does not chain to a configured NCA anchor "
                                         "(the sandbox's NCA CA, or the --anchor given)")
        if not is_ca(parent):
            raise QTSPError(Kind.POLICY, "an intermediate certificate of the NCA chain is not a CA")
        _current(parent, now, "an intermediate certificate of the NCA chain")
        current, used = parent, used + 1
