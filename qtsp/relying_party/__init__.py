"""What a bank runs: the reference validator, its revocation client, the Trusted List reader, and the
NCA's JOSE client. It imports ``qtsp.core``, the standard library and the crypto/XML libraries only,
never the sandbox's services, store or web layer (``tests/unit/relying_party/test_purity.py``), and it
reads no clock: time comes in as ``at``/``now``.

    from qtsp.relying_party import Fetcher, parse_and_verify_trusted_list, validate
    tl = parse_and_verify_trusted_list(xml, [pinned_signer], now)
    verdict = validate(cert, trusted_list=tl, intermediates=chain, purpose="qwac", at=now, fetcher=Fetcher())

The Trusted List reader (lxml, signxml) is imported on first use of its names, so a validator that
already holds a parsed list, or a tool that only needs the types, does not pay for XML signatures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.trusted_list import ListedService, ParsedList
from .anchors import trusted_list_from_anchors
from .revocation import MAX_CRL_BYTES, MAX_OCSP_BYTES, SKEW, Fetcher
from .validator import PURPOSES, Reason, Verdict, anchors, validate

if TYPE_CHECKING:
    from .trusted_list import MAX_LIST_BYTES, parse_and_verify_trusted_list

__all__ = ["MAX_CRL_BYTES", "MAX_LIST_BYTES", "MAX_OCSP_BYTES", "PURPOSES", "SKEW", "Fetcher", "ListedService",
           "ParsedList", "Reason", "Verdict", "anchors", "parse_and_verify_trusted_list", "trusted_list_from_anchors",
           "validate"]

_LAZY = {"MAX_LIST_BYTES": "trusted_list", "parse_and_verify_trusted_list": "trusted_list"}


def __getattr__(name: str) -> Any:  # PEP 562: the heavy reader loads when first named
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
