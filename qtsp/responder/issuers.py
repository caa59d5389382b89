"""Which CA a request is about, and which responder signs for it (RFC 6960 4.1.1 CertID, 4.2.2.2).

A CertID names its issuer by hashes of the issuer's name and public key, in SHA-1 or SHA-256; the
index maps both to the CA's OCSP identity (its delegated responder and its key). It is reloaded when
the freshness watch says something changed (a responder rotation bumps the generation counter), and
on a miss at most every ISSUER_RELOAD_INTERVAL seconds (a CA generation from a rollover elsewhere).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from ..core import ocsp as core_ocsp
from ..core.types import IssuerId
from ..services import ocsp as ocsp_svc
from ..services.context import Sandbox
from ..services.ocsp import IssuerEntry, PastResponder

ISSUER_RELOAD_INTERVAL = 5.0


class IssuerIndex:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._by_hash: dict[tuple[str, bytes, bytes], IssuerEntry] = {}
        self._past: dict[IssuerId, list[PastResponder]] = {}
        self._infos: dict[tuple[str, bytes], core_ocsp.ResponderInfo] = {}  # past responders, loaded when first needed
        self._loaded = 0.0
        self.reload()

    def reload(self) -> None:
        with self.sandbox.transaction() as session:
            entries = ocsp_svc.issuer_entries(self.sandbox, session)
        self._by_hash = {(alg, name_hash, key_hash): entry for entry in entries.values()
                         for alg, (name_hash, key_hash) in entry.hashes.items()}
        self._past = {}  # a rotation retired a responder: read the history again when asked
        self._loaded = time.monotonic()

    def entry(self, cert_id: core_ocsp.CertID) -> IssuerEntry | None:
        key = (cert_id.hash_algorithm, cert_id.issuer_name_hash, cert_id.issuer_key_hash)
        entry = self._by_hash.get(key)
        if entry is None and time.monotonic() - self._loaded > ISSUER_RELOAD_INTERVAL:
            with self._lock:  # a new CA generation may have appeared (key rollover)
                self.reload()
            entry = self._by_hash.get(key)
        return entry

    def issuer_of(self, request: core_ocsp.Request) -> IssuerEntry | None:
        """The one CA every CertID of the request names, or None: not an issuer we serve, or several
        issuers in one request, for which no single responder is authorised (RFC 6960 2.3)."""
        entries = [self.entry(cid) for cid in request.cert_ids]
        first = entries[0]
        if first is None or any(e is None or e.ca_id != first.ca_id for e in entries):
            return None
        return first

    def responder_at(self, entry: IssuerEntry, at: dt.datetime | None) -> core_ocsp.ResponderInfo:
        """The responder that signed for ``entry``'s CA at ``at`` (None: now); see ``in_use_at``."""
        if at is None:
            return entry.responder
        chosen = in_use_at(entry.responder_valid, self._past_of(entry.ca_id), at)
        if chosen is None:
            return entry.responder
        key = (chosen.key_ref, chosen.cert_der)
        info = self._infos.get(key)
        if info is None:
            info = self._infos[key] = ocsp_svc.responder_info(self.sandbox, chosen.cert_der, chosen.key_ref)
        return info

    def _past_of(self, ca_id: IssuerId) -> list[PastResponder]:
        past = self._past.get(ca_id)
        if past is None:
            past = self._past[ca_id] = ocsp_svc.past_responders(self.sandbox, ca_id)
        return past


def in_use_at(current_valid: tuple[dt.datetime, dt.datetime], past: list[PastResponder],
              at: dt.datetime) -> PastResponder | None:
    """Which responder signs an answer as of ``at``: None for the current one, or a retired one.

    The newest responder whose certificate was valid at ``at``; the current one when it was valid
    then, or when none was (a fallback: never a refusal). A relying party checks the responder
    certificate as of the time it validates at (RFC 6960 4.2.2.2, ``openssl ocsp -attime``): an
    answer as of before a rotation, signed by the new responder, would carry a certificate that was
    not yet valid then."""
    not_before, not_after = current_valid
    if not_before <= at <= not_after:
        return None
    valid = [p for p in past if p.not_before <= at <= p.not_after]
    return max(valid, key=lambda p: p.not_before) if valid else None
