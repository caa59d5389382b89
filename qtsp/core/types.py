"""Typed identifiers, so a serial is never passed where an issuer id was meant."""

from __future__ import annotations

from typing import NewType

Serial = NewType("Serial", int)
IssuerId = NewType("IssuerId", str)  # e.g. "root", "qwac-ca", "qseal-ca"
KeyRef = NewType("KeyRef", str)  # "file:keys/root.p8", "vault-transit:...", "pkcs11:..."
OrgId = NewType("OrgId", str)  # organizationIdentifier, e.g. "PSDBE-NBB-0123456789"


def serial_hex(serial: int) -> str:
    """Canonical text form of a serial: upper-case hex, even length (as openssl prints it)."""
    text = format(serial, "X")
    return text if len(text) % 2 == 0 else "0" + text


def parse_serial(text: str) -> Serial:
    """Accept hex with optional 0x prefix and colons, as people copy it from openssl."""
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
