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
from ..services import ocsp as ocsp_svc
from ..services.context import Sandbox
from ..services.ocsp import IssuerEntry

ISSUER_RELOAD_INTERVAL = 5.0


class IssuerIndex:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._by_hash: dict[tuple[str, bytes, bytes], IssuerEntry] = {}
        self._loaded = 0.0
        self.reload()

    def reload(self) -> None:
        with self.sandbox.transaction() as session:
            entries = ocsp_svc.issuer_entries(self.sandbox, session)
        self._by_hash = {(alg, name_hash, key_hash): entry for entry in entries.values()
                         for alg, (name_hash, key_hash) in entry.hashes.items()}
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
        """The responder that signs for ``entry``'s CA as of ``at`` (None: now)."""
        return entry.responder
