"""Typed identifiers, so a serial is never passed where an issuer id was meant.

A serial has two forms: ``Serial``, the number (what certificates, CRLs and OCSP requests carry), and
``SerialHex``, its one canonical text (what the store keeps, every listing and audit event shows, and
URLs name). Text from outside (a command line, a URL, a ceremony file) is read once, where it comes
in, by ``parse_serial`` or ``canonical_serial``.

The domain words that are enumerations live beside the rules that use them: ``psd2.PspRole``,
``keys.KeyType``, ``profiles.CertificateKind``.
"""

from __future__ import annotations

from typing import NewType

from .errors import malformed

Serial = NewType("Serial", int)
SerialHex = NewType("SerialHex", str)  # upper-case hex, even length: "0A1B..."
IssuerId = NewType("IssuerId", str)  # e.g. "root", "qwac-ca", "qseal-ca"
KeyRef = NewType("KeyRef", str)  # "file:keys/root.p8", "vault-transit:...", "pkcs11:..."
OrgId = NewType("OrgId", str)  # organizationIdentifier, e.g. "PSDBE-NBB-0123456789"


def serial_hex(serial: int) -> SerialHex:
    """Canonical text form of a serial: upper-case hex, even length (as openssl prints it)."""
    text = format(serial, "X")
    return SerialHex(text if len(text) % 2 == 0 else "0" + text)


def parse_serial(text: str) -> Serial:
    """Accept hex with optional 0x prefix and colons, as people copy it from openssl (ValueError if not)."""
    cleaned = text.strip().replace(":", "").lower()
    if cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    if not cleaned or len(cleaned) > 40:
        raise ValueError(f"not a certificate serial: {text!r}")
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise ValueError(f"not a certificate serial (hex expected): {text!r}") from None
    return Serial(value)


def canonical_serial(text: str) -> SerialHex:
    """A serial as people give it (hex, colons, 0x) in its canonical form; QTSPError MALFORMED if it is none."""
    try:
        return serial_hex(parse_serial(text))
    except ValueError as exc:
        raise malformed(str(exc)) from None
