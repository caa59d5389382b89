"""The names people type for CAs, tokens, NCAs and PSPs: ``qtsp.services.lookup``'s, re-exported for
the commands that import them from here (only inside a command that runs: the services are heavy)."""

from __future__ import annotations

from qtsp.services.lookup import issuers_of_serial, resolve_ca, resolve_nca, resolve_psp, resolve_token

__all__ = ["issuers_of_serial", "resolve_ca", "resolve_nca", "resolve_psp", "resolve_token"]
