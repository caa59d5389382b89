"""What a user types for a CA, a token, an NCA or a PSP, turned into the id the services take.

People copy what the listings show: a CA's id (``qwac-ca``) or the CN of its certificate, a token's
name, an NCA's name, a PSP's legal name. Ids keep working. A name that fits several things is refused
with the ids to choose from, never guessed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Iterable, TypeVar

from qtsp.core.errors import Kind, QTSPError

if TYPE_CHECKING:
    from qtsp.services.context import Sandbox

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


def resolve_ca(sandbox: Sandbox, ref: str) -> str:
    """A CA id from its id or the common name of its certificate (case-insensitive)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from ca_store import repositories as repo

    with sandbox.transaction() as session:
        cas = [(ca.id, ca.cert_der) for ca in repo.list_cas(session)]
    if any(ca_id == ref for ca_id, _ in cas):
        return ref
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


def issuers_of_serial(sandbox: Sandbox, serial: str) -> list[str]:
    """The CAs that issued a certificate with this serial (hex, as openssl prints it): usually one."""
    from sqlalchemy import select

    from ca_store.models import Certificate
    from qtsp.core.types import parse_serial, serial_hex

    try:
        canonical = serial_hex(parse_serial(serial))
    except ValueError as exc:
        raise QTSPError(Kind.MALFORMED, str(exc)) from None
    with sandbox.transaction() as session:
        return sorted(session.execute(select(Certificate.issuer_id).where(Certificate.serial == canonical)).scalars())


def resolve_token(sandbox: Sandbox, ref: str) -> int:
    """A token id from its name (the active one, if a name was reused) or its id."""
    from qtsp.services import tokens as tokens_svc

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
    from qtsp.services import nca_identity

    views = nca_identity.list_ncas(sandbox)
    if any(v.nca_id == ref for v in views):
        return ref
    wanted = ref.strip().casefold()
    found = [v for v in views if wanted in (v.nca_id.casefold(), v.name.casefold())]
    return _one(ref, "NCA", found, lambda v: v.nca_id, "qtsp nca list").nca_id


def resolve_psp(sandbox: Sandbox, ref: str) -> str:
    """An organizationIdentifier from itself or the PSP's legal name (case-insensitive)."""
    from qtsp.core.names import parse_org_id
    from qtsp.services import register

    try:
        parse_org_id(ref)
        return ref  # an identifier: the service says whether it is in the register
    except QTSPError:
        pass
    wanted = ref.strip().casefold()
    found = [p for p in register.list_psps(sandbox) if p.legal_name.casefold() == wanted]
    if not found:
        raise QTSPError(Kind.NOT_FOUND, f"no PSP with the organizationIdentifier or legal name {ref!r} "
                                        "(see 'qtsp register list')")
    return _one(ref, "PSP", found, lambda p: p.org_id, "qtsp register list").org_id
