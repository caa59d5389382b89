"""What a scheme's ``verify`` hands back once the signature checks out: policy is checked on it after."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509


@dataclass
class Verified:
    scheme: str  # berlin-group | rfc9421 | jades
    certificate: x509.Certificate  # the QSealC whose key verified the signature
    algorithm: str  # JOSE name
    covered: list[str]  # the header names / components the signature covers, lower-case
    signed_at: dt.datetime | None  # Date (cavage), created (RFC 9421), sigT (JAdES)
    body_covered: bool = False  # a digest of the body is covered and matches it
    chain: list[x509.Certificate] = field(default_factory=list)  # certificates sent with it (JAdES x5c)
    expires: dt.datetime | None = None  # RFC 9421 expires, if given
