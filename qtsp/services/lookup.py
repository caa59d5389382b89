"""What a user types for a CA, a token, an NCA, a PSP or a certificate, turned into what the services take;
and the read-only views the command line lists (CAs, certificates, the newest CRL).

People copy what the listings show: a CA's id (``qwac-ca``) or the CN of its certificate, a token's
name, an NCA's name, a PSP's legal name. Ids keep working. A name that fits several things is refused
with the ids to choose from, never guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TypeVar
from collections.abc import Callable, Iterable

from cryptography import x509
from cryptography.x509.oid import NameOID

from ca_store import repositories as repo
from ca_store.models import Certificate

from ..core.errors import Kind, QTSPError
from ..core.names import parse_org_id
from ..core.types import IssuerId, OrgId, canonical_serial
from . import crl as crl_svc, nca_identity, register, tokens as tokens_svc
from .context import Sandbox

T = TypeVar("T")
_CA_ID = re.compile(r"[a-z0-9-]{1,64}")  # what the store accepts as a CA id


def _one(ref: str, what: str, found: list[T], ident: Callable[[T], str], listing: str) -> T:
    if len(found) == 1:
        return found[0]
    if found:
        raise QTSPError(Kind.MALFORMED, f"{ref!r} fits several {what}s ({', '.join(ident(f) for f in found)}): give the id")
    raise QTSPError(Kind.NOT_FOUND, f"no {what} {ref!r} (see '{listing}')")


def _dedupe(items: Iterable[T], key: Callable[[T], object]) -> list[T]:
    seen: dict[object, T] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())


def resolve_ca(sandbox: Sandbox, ref: str) -> IssuerId:
    """A CA id from its id or the common name of its certificate (case-insensitive)."""
    with sandbox.transaction() as session:
        cas = [(ca.id, ca.cert_der) for ca in repo.list_cas(session)]
    if any(ca_id == ref for ca_id, _ in cas):
        return IssuerId(ref)
    wanted = ref.strip().casefold()

    def names(der: bytes) -> set[str]:
        subject = x509.load_der_x509_certificate(der).subject
        return {str(a.value).casefold() for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)}

    found = [ca_id for ca_id, der in cas if ca_id.casefold() == wanted or wanted in names(der)]
    known = ", ".join(ca_id for ca_id, _ in cas)
    if not found and _CA_ID.fullmatch(ref):
        raise QTSPError(Kind.NOT_FOUND, f"no CA {ref!r}: give an id ({known}) or a CA's common name (see 'qtsp ca list')")
    if not found:  # not even shaped like an id: malformed, as the services say for a bad id
        raise QTSPError(Kind.MALFORMED, f"{ref[:80]!r} is neither a CA id ({known}) nor a CA's common name "
                                        "(see 'qtsp ca list')")
    return _one(ref, "CA", found, str, "qtsp ca list")


def issuers_of_serial(sandbox: Sandbox, serial: str) -> list[IssuerId]:
    """The CAs that issued a certificate with this serial (hex, as openssl prints it): usually one."""
    canonical = canonical_serial(serial)
    with sandbox.transaction() as session:
        return repo.issuers_of_serial(session, canonical)


def resolve_token(sandbox: Sandbox, ref: str) -> int:
    """A token id from its name (the active one, if a name was reused) or its id."""
    tokens = tokens_svc.list_tokens(sandbox)
    by_name = [t for t in tokens if t.name == ref]
    active = [t for t in by_name if t.revoked_at is None]
    if len(by_name) > 1 and active:
        by_name = active  # a name given again after the first token was revoked means the live one
    by_id = [t for t in tokens if ref.isdigit() and t.id == int(ref)]
    found = _dedupe(by_name + by_id, lambda t: t.id)
    return _one(ref, "API token", found, lambda t: f"id {t.id}", "qtsp tokens list").id


def resolve_nca(sandbox: Sandbox, ref: str) -> str:
    """An NCA id (``BE-NBB``) from its id or its name (case-insensitive)."""
    views = nca_identity.list_ncas(sandbox)
    if any(v.nca_id == ref for v in views):
        return ref
    wanted = ref.strip().casefold()
    found = [v for v in views if wanted in (v.nca_id.casefold(), v.name.casefold())]
    return _one(ref, "NCA", found, lambda v: v.nca_id, "qtsp nca list").nca_id


def resolve_psp(sandbox: Sandbox, ref: str) -> OrgId:
    """An organizationIdentifier from itself or the PSP's legal name (case-insensitive)."""
    try:
        parse_org_id(ref)
        return OrgId(ref)  # an identifier: the service says whether it is in the register
    except QTSPError:
        pass
    wanted = ref.strip().casefold()
    found = [p for p in register.list_psps(sandbox) if p.legal_name.casefold() == wanted]
    if not found:
        raise QTSPError(Kind.NOT_FOUND, f"no PSP with the organizationIdentifier or legal name {ref!r} "
                                        "(see 'qtsp register list')")
    return _one(ref, "PSP", found, lambda p: p.org_id, "qtsp register list").org_id


# --- views --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CAView:
    id: str
    role: str
    parent: str | None
    subject: x509.Name
    serial: str
    key: str
    key_type: str
    not_after: dt.datetime
    ocsp_responder: bool


def list_cas(sandbox: Sandbox) -> list[CAView]:
    with sandbox.transaction() as session:
        return [CAView(ca.id, ca.role, ca.parent_id, x509.load_der_x509_certificate(ca.cert_der).subject, ca.serial,
                       ca.key.ref, ca.key.key_type, ca.not_after, ca.ocsp_responder_der is not None)
                for ca in repo.list_cas(session)]


@dataclass(frozen=True)
class CertificateView:
    serial: str
    issuer: str
    profile: str
    org_id: str | None
    nca_id: str | None
    roles: str | None
    dns_names: str | None
    not_before: dt.datetime
    not_after: dt.datetime
    status: str
    sha256: str
    certificate: x509.Certificate


def _certificate_view(c: Certificate) -> CertificateView:
    return CertificateView(c.serial, c.issuer_id, c.profile, c.org_id, c.nca_id, c.roles, c.dns_names, c.not_before,
                           c.not_after, c.status, c.fingerprint_sha256, x509.load_der_x509_certificate(c.der))


def list_certificates(sandbox: Sandbox, *, org_id: str | None = None, limit: int = 100) -> list[CertificateView]:
    """Issued certificates, newest first."""
    with sandbox.transaction() as session:
        return [_certificate_view(c) for c in repo.list_certificates(session, org_id=org_id, limit=limit)]


def certificate(sandbox: Sandbox, serial: str, issuer_id: IssuerId | None = None) -> CertificateView:
    """One certificate by serial (and issuer, when the serial exists under several)."""
    canonical = canonical_serial(serial)
    with sandbox.transaction() as session:
        return _certificate_view(repo.get_certificate(session, canonical, issuer_id))


@dataclass(frozen=True)
class CrlView:
    issuer_id: str
    number: int
    delta_base: int | None
    entries: int
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


def newest_crl(sandbox: Sandbox, ca_id: IssuerId, *, delta: bool = False) -> CrlView | None:
    """The newest full (or delta) CRL of a CA; NOT_FOUND for no such CA, None if it has none yet."""
    with sandbox.transaction() as session:
        repo.get_ca(session, ca_id)
        record = crl_svc.latest(session, ca_id, delta=delta)
        if record is None:
            return None
        return CrlView(record.issuer_id, record.number, record.delta_base, record.entries, record.this_update,
                       record.next_update, record.der)


def ca_ids(sandbox: Sandbox) -> list[IssuerId]:
    with sandbox.transaction() as session:
        return [ca.id for ca in repo.list_cas(session)]
