"""The portal's certificate use cases, each one call into the services the CLI and the REST API use:
``issuance.issue`` (the one pipeline: register check, lint, sign, store, publish), ``revocation.revoke``,
``search.certificates`` / ``search.certificate``; the principal's scope goes with every call, so what
the services answer for an API token they answer for a browser. Nothing here touches a signer or the
store's certificate rows directly.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import secrets
import zipfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .. import files
from ..clock import utcnow
from ..core.errors import Kind, QTSPError
from ..core.types import canonical_serial
from . import issuance, revocation, scenarios, search
from .issue_request import IssueRequest
from .output import pkcs12_bytes
from .context import Sandbox
from .portal import PORTAL_KINDS, Principal, require_writer

MAX_LISTED = 500  # certificates a list page reads before filtering and sorting
SORTS = {
    "newest": (lambda r: r.not_before, True),
    "oldest": (lambda r: r.not_before, False),
    "expiry": (lambda r: r.not_after, False),
    "serial": (lambda r: r.serial, False),
}
STATUS_FILTERS = ("", "valid", "expired", "revoked")


@dataclass(frozen=True)
class Listing:
    records: list[search.CertificateRecord]
    total: int
    truncated: bool


def request_certificate(sandbox: Sandbox, who: Principal, *, kind: str, org_id: str, domains: tuple[str, ...] = (),
                        csr: bytes | None = None, generate_key: str | None = None, roles: str | None = None,
                        purpose: str | None = None, qscd: bool = False) -> issuance.Issued:
    """Issue one certificate for an organisation within ``who``'s scope (issuance checks the scope)."""
    require_writer(who)
    choice = next((k for k in PORTAL_KINDS if k.kind == kind), None)
    if choice is None:
        raise QTSPError(Kind.MALFORMED, f"kind must be one of {', '.join(k.kind for k in PORTAL_KINDS)}")
    if not choice.domains:  # the QWAC fields of the form, left filled in while a QSealC was chosen
        domains = ()
    if not choice.purpose:  # the purpose is the 1-QWAC's: a QSealC seals, a 2-QWAC signs bindings
        purpose = None
    if (csr is None) == (generate_key is None):
        raise QTSPError(Kind.MALFORMED, "give a CSR or ask for a generated key, one of the two")
    # IssueRequest reads kind, roles and purpose from text into their types (and refuses what is not one).
    request = IssueRequest(kind=kind, org_id=org_id, domains=domains, csr=csr,  # type: ignore[arg-type]
                           generate_key=generate_key, roles=roles or None,  # type: ignore[arg-type]
                           qscd=qscd and not choice.domains, purpose=purpose)  # type: ignore[arg-type]
    return issuance.issue(sandbox, request, actor=who.actor, scope=who.scope)


def pkcs12(issued: issuance.Issued, password: str) -> bytes:
    """The generated key, the certificate and its chain, encrypted with ``password`` (never kept)."""
    if issued.private_key is None:
        raise QTSPError(Kind.MALFORMED, "a PKCS#12 needs the key generated with the certificate")
    return pkcs12_bytes(issued, password)


def revoke(sandbox: Sandbox, who: Principal, serial: str, reason: str) -> revocation.RevocationResult:
    require_writer(who)
    return revocation.revoke(sandbox, canonical_serial(serial), reason, actor=who.actor, scope=who.scope)


def certificates(sandbox: Sandbox, who: Principal, *, org_id: str | None = None, kind: str | None = None,
                 status: str | None = None, sort: str = "newest", text: str | None = None) -> Listing:
    """The principal's certificates, filtered and sorted; what is outside its scope is not there."""
    from ..core.profiles import PROFILES

    profiles = None if not kind else tuple(sorted(n for n, p in PROFILES.items() if kind in p.tags))
    page = search.certificates(sandbox, now=utcnow(), org_id=org_id or None, profiles=profiles,
                               status=status or None, limit=MAX_LISTED, scope=who.scope)
    records = [r for r in page.items if isinstance(r, search.CertificateRecord)]
    if text:
        needle = text.casefold()
        records = [r for r in records if needle in r.subject.casefold() or needle in r.serial
                   or any(needle in d for d in r.dns_names)]
    key, reverse = SORTS.get(sort, SORTS["newest"])
    records.sort(key=key, reverse=reverse)
    return Listing(records, page.total, page.more)


def certificate(sandbox: Sandbox, who: Principal, serial: str) -> search.CertificateRecord:
    return search.certificate(sandbox, canonical_serial(serial), who.scope)


def chain_of(sandbox: Sandbox, record: search.CertificateRecord) -> list[x509.Certificate]:
    """The issuing CA and its ancestors, as the AIA publication serves them."""
    cas = search.ca_certificates(sandbox)
    chain: list[x509.Certificate] = []
    current: str | None = record.issuer_id
    while current is not None and current in cas and len(chain) < 8:
        cert, parent = cas[current]
        chain.append(cert)
        current = parent
    return chain


def pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def trust_store_zip(sandbox: Sandbox) -> bytes:
    """Every CA certificate of the sandbox (both QWAC hierarchies, QSealC, scenarios), one PEM each and
    all in one bundle: what a bank's gateway loads as its client-CA list."""
    cas = search.ca_certificates(sandbox)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for ca_id, (cert, _parent) in sorted(cas.items()):
            archive.writestr(f"ca/{ca_id}.pem", cert.public_bytes(Encoding.PEM))
        archive.writestr("trust-store.pem", pem([c for _, (c, _p) in sorted(cas.items())]))
        archive.writestr("roots.pem", pem([c for _, (c, parent) in sorted(cas.items()) if parent is None]))
    return buffer.getvalue()


def scenario_bundle(sandbox: Sandbox, who: Principal, now: dt.datetime | None = None) -> bytes:
    """The scenario catalogue issued afresh (``scenarios.issue``, as ``qtsp scenarios issue`` does) and
    handed out as one zip with its manifest.json; the work directory is removed afterwards."""
    require_writer(who)
    # A private work directory under the data dir (made through qtsp.files, as every file is), gone afterwards.
    work = sandbox.data_dir / "run" / "portal" / secrets.token_hex(16)
    files.ensure_dir(work.parent, private=True)
    try:
        out = work
        scenarios.issue(sandbox, None, out, now=now, actor=who.actor)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(out.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, f"scenarios/{path.relative_to(out)}")
        return buffer.getvalue()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def trust_ids(sandbox: Sandbox) -> list[str]:
    """The ids of the sandbox's CAs, whose certificates /ca/<id>.pem serves."""
    return list(search.ca_certificates(sandbox))
