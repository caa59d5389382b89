"""What a caller asks to be issued: one typed request, parsed strictly in one place.

The command line (``qtsp issue qwac|qsealc``), the REST API (``POST /api/v1/certificates``) and
bulk issuance (one JSON object per line) all hand ``parse_issue_request`` a mapping; the table
``FIELDS`` says which fields each of them may send, and of which types. An unknown field is
refused rather than dropped (a typo such as ``"qcsd": true`` must not issue a certificate without
QcSSCD), and every refusal names the field. The domain words are read here, once: ``kind`` as a
``CertificateKind``, ``roles`` as ``PspRole``s (an unknown or repeated role is refused, POLICY, as the
register refuses it). What the fields mean for this subscriber (PSD2 data against the register, key
policy) is checked later, by ``issuance.prepare``.

Import-light: the CLI imports this for every issue command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping, Sequence

from ..core import profiles
from ..core.errors import Kind, QTSPError
from ..core.keys import MAX_CSR_BYTES, KeyType
from ..core.profiles import CERTIFICATE_KINDS, PURPOSES, QWAC_BY_PURPOSE, CertificateKind, Profile, Purpose
from ..core.psd2 import PspRole, parse_roles

KINDS = CERTIFICATE_KINDS
MAX_DOMAINS = 100
SOURCES = ("cli", "api", "bulk")


@dataclass(frozen=True)
class IssueRequest:
    """One request. Made from text (``IssueRequest("qwac", ..., roles="PSP_AI")``), ``kind`` and ``roles``
    are read as the types below when it is made; ``parse_issue_request`` is the strict way in."""

    kind: CertificateKind
    org_id: str
    domains: tuple[str, ...] = ()
    csr: bytes | None = None
    # Generate the subscriber key here: a key type ("rsa-3072"), or True for the sandbox's
    # ``subscriber_key_type``. None: the key is the CSR's. (Text until ``issuance.prepare`` checks it
    # against the profile: an unknown type is refused there, naming the profile.)
    generate_key: str | bool | None = None
    roles: tuple[PspRole, ...] | None = None  # narrows the register's roles
    qscd: bool = False
    browser: bool = False  # the older spelling of purpose="server", kept as its alias
    # QWACs only: server (browser hierarchy, serverAuth only), client (non-browser, clientAuth only) or both
    # (non-browser, serverAuth + clientAuth). None: both, or server with ``browser``.
    purpose: Purpose | None = None

    def __post_init__(self) -> None:
        if self.kind not in CERTIFICATE_KINDS:
            raise QTSPError(Kind.MALFORMED, f"unknown certificate kind {str(self.kind)!r}: {', '.join(CERTIFICATE_KINDS)}")
        object.__setattr__(self, "kind", CertificateKind(self.kind))
        if self.roles is not None:
            object.__setattr__(self, "roles", _parse_roles(self.roles))
        if self.purpose is not None:
            if self.purpose not in PURPOSES:
                raise QTSPError(Kind.MALFORMED, f"purpose must be {', '.join(PURPOSES)}, not {str(self.purpose)[:40]!r}")
            object.__setattr__(self, "purpose", Purpose(self.purpose))
            if self.browser and self.purpose is not Purpose.SERVER:
                raise QTSPError(Kind.MALFORMED, f"browser means purpose server; it contradicts purpose {self.purpose}")

    @property
    def qwac_purpose(self) -> Purpose:
        """The purpose asked for, ``browser`` read as server, and both when neither is given."""
        if self.purpose is not None:
            return self.purpose
        return Purpose.SERVER if self.browser else Purpose.BOTH

    def profile(self) -> Profile:
        if self.kind is CertificateKind.TWO_QWAC:
            if self.qscd or self.browser or self.purpose is not None:
                raise QTSPError(Kind.MALFORMED, "purpose, browser and qscd do not apply to a 2-QWAC: it signs TLS "
                                                "certificate bindings, from its own CA (TS 119 411-5 4.2)")
            return profiles.TWO_QWAC
        if self.kind is CertificateKind.QWAC:
            if self.qscd:
                raise QTSPError(Kind.POLICY, "a key in a QSCD (qscd) applies to QSealCs only: QcSSCD must not appear on a QWAC")
            return QWAC_BY_PURPOSE[self.qwac_purpose]
        if self.domains:
            raise QTSPError(Kind.MALFORMED, "a QSealC carries no domain names")
        if self.browser or self.purpose is not None:
            raise QTSPError(Kind.MALFORMED, "purpose (and browser) apply to QWACs only: a QSealC seals, it authenticates "
                                            "no TLS endpoint")
        return profiles.QSEALC_QSCD if self.qscd else profiles.QSEALC

    def key_type(self, configured: KeyType) -> str | None:
        """The type of key to generate (``configured``: the sandbox's subscriber_key_type), or None for a CSR."""
        if self.generate_key is None or self.generate_key is False:
            return None
        return configured if self.generate_key is True else str(self.generate_key)


# --- the field table ---------------------------------------------------------------------------------

Accepts = dict[str, tuple[tuple[type, ...], str]]  # source -> (types accepted, what the value must be)
_NONE = type(None)
_ROLES = 'a string such as "PSP_AI,PSP_PI"'
_PEM = f"a PEM PKCS#10 request (-----BEGIN CERTIFICATE REQUEST-----), at most {MAX_CSR_BYTES} bytes"


def _everywhere(described: str, *types: type) -> Accepts:
    return {source: (types, described) for source in SOURCES}


FIELDS: dict[str, Accepts] = {
    "kind": _everywhere(f"a string, one of {', '.join(CERTIFICATE_KINDS)}", str),
    "org_id": _everywhere("a string", str),
    "domains": _everywhere("a list of strings", list, tuple),
    "csr": {"api": ((str,), _PEM), "cli": ((bytes,), "the bytes of a PKCS#10 request, PEM or DER")},
    "roles": {"cli": ((str, _NONE), _ROLES), "bulk": ((str,), _ROLES),
              "api": ((str, list, _NONE), f"{_ROLES} or a non-empty list of role names")},
    "qscd": _everywhere("true or false", bool),
    "browser": _everywhere("true or false", bool),
    "purpose": {"cli": ((str, _NONE), f"one of {', '.join(PURPOSES)}"), "api": ((str,), f"one of {', '.join(PURPOSES)}"),
                "bulk": ((str,), f"one of {', '.join(PURPOSES)}")},
    # Bulk lines always generate their keys; the type defaults to the sandbox's subscriber_key_type.
    "key_type": {"cli": ((str, _NONE), "a string such as ecdsa-p256"), "bulk": ((str,), "a string such as ecdsa-p256")},
    "generate_key": {"cli": ((bool,), "true or false")},
}
REQUIRED = {"cli": ("kind", "org_id"), "api": ("kind", "org_id", "csr"), "bulk": ("kind", "org_id")}


def _malformed(detail: str) -> QTSPError:
    return QTSPError(Kind.MALFORMED, detail)


def _typed(name: str, value: Any, accepts: tuple[tuple[type, ...], str]) -> None:
    types, described = accepts
    # bool is an int in Python: a boolean is accepted only where one is meant.
    wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
    if isinstance(value, (list, tuple)) and not wrong:
        wrong = not all(isinstance(item, str) for item in value)
    if wrong:
        raise _malformed(f"{name} must be {described}")


def _fields(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The fields of ``data``: known to ``source``, the required ones there, each of its types."""
    known = [name for name, accepts in FIELDS.items() if source in accepts]
    unknown = sorted(str(name)[:80] for name in data if name not in known)
    if unknown:
        raise _malformed(f"unknown fields {unknown[:10]} (known: {', '.join(known)})")
    missing = [name for name in REQUIRED[source] if name not in data]
    if missing:
        raise _malformed(f"missing {' and '.join(missing)}")
    for name, value in data.items():
        _typed(name, value, FIELDS[name][source])
    return dict(data)


def _roles(value: str | list[str] | None) -> tuple[PspRole, ...] | None:
    if isinstance(value, list):
        if not value or not all(role and "," not in role for role in value):
            raise _malformed(f"roles must be {FIELDS['roles']['api'][1]}")
    return None if value is None else _parse_roles(value)


def _parse_roles(value: str | Sequence[str]) -> tuple[PspRole, ...]:
    """Roles as text ("PSP_AI,PSP_PI"), or already a sequence of them (PspRoles or their names)."""
    return parse_roles(value if isinstance(value, str) else ",".join(value))


def parse_issue_request(data: Mapping[str, Any], *, source: str) -> IssueRequest:
    """The request in ``data``, as sent by ``source`` (cli, api or bulk); MALFORMED naming the field if not."""
    if source not in SOURCES:
        raise ValueError(f"source is one of {', '.join(SOURCES)}, not {source!r}")
    item = _fields(data, source)
    if item["kind"] not in KINDS:
        raise _malformed(f"kind must be one of {', '.join(KINDS)}, not {str(item['kind'])[:40]!r}")
    domains = tuple(item.get("domains", ()))
    if len(domains) > MAX_DOMAINS:
        raise _malformed(f"domains: at most {MAX_DOMAINS} per certificate")
    csr = item.get("csr")
    if isinstance(csr, str):
        if not csr.lstrip().startswith("-----BEGIN") or len(csr) > MAX_CSR_BYTES:
            raise _malformed(f"csr must be {_PEM}")
        csr = csr.encode("utf-8")
    if source == "bulk":
        generate: str | bool | None = item.get("key_type", True)
    elif item.get("generate_key"):
        generate = item.get("key_type") or True
    else:
        generate = None
    purpose = item.get("purpose")
    if purpose is not None and purpose not in PURPOSES:
        raise _malformed(f"purpose must be one of {', '.join(PURPOSES)}, not {str(purpose)[:40]!r}")
    return IssueRequest(kind=item["kind"], org_id=item["org_id"], domains=domains, csr=csr, generate_key=generate,
                        roles=_roles(item.get("roles")), qscd=item.get("qscd", False), browser=item.get("browser", False),
                        purpose=None if purpose is None else Purpose(purpose))
