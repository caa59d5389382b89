"""What a relying-party command judges against (``validate``, ``binding verify|check``, ``bank serve``,
``trust export``): pinned trust anchors, a published Trusted List verified against its pinned signer, or this
sandbox's own list. One place, so every command reads, bounds and refuses the same inputs the same way."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtsp.core.errors import Kind, QTSPError

if TYPE_CHECKING:  # cryptography and the relying party load when a command runs: `qtsp --help` stays fast
    from cryptography import x509

    from qtsp.core.trusted_list import ParsedList

MAX_PEM = 1024 * 1024
MAX_TL = 8 * 1024 * 1024


def certificates(path: Path, what: str) -> list[x509.Certificate]:
    """Every certificate in a PEM or DER file (unreadable, too large or no certificate: exit 2)."""
    from qtsp import files
    from qtsp.core.certificates import load_certificates

    return load_certificates(files.read_bounded(path, what, MAX_PEM), f"{what} {path}")


def published_list(tl: str, tl_signer: Path | None, fetcher: Any, now: dt.datetime) -> ParsedList:
    """A Trusted List from a URL or a file, verified against the pinned signer certificate."""
    from qtsp import files
    from qtsp.relying_party import parse_and_verify_trusted_list

    if tl_signer is None:
        raise QTSPError(Kind.MALFORMED, "--tl needs --tl-signer: a Trusted List is only as good as the pinned "
                        "certificate it is verified against ('qtsp tl signer --out FILE', or /tl-signer.pem)")
    pins = certificates(tl_signer, "TL signer")
    xml = fetcher.fetch(tl, limit=MAX_TL) if tl.startswith(("http://", "https://")) \
        else files.read_bounded(Path(tl), "Trusted List", MAX_TL)
    return parse_and_verify_trusted_list(xml, pins, now)


def trusted_list(*, anchors: tuple[Path, ...], tl: str | None, tl_signer: Path | None, fetcher: Any,
                 now: dt.datetime, data_dir: Path | None) -> ParsedList:
    """Anchors (each taken as a granted CA/QC service), or ``--tl``/``--tl-signer``, or, with neither and a
    ``data_dir``, the sandbox's own current list; without a ``data_dir`` one of the two must be given."""
    from qtsp import relying_party

    if anchors:
        if tl is not None or tl_signer is not None:
            raise QTSPError(Kind.MALFORMED, "--trust-anchor replaces the Trusted List: give it or --tl, not both")
        return relying_party.trusted_list_from_anchors([c for p in anchors for c in certificates(p, "trust anchor")], now)
    if tl is not None:
        return published_list(tl, tl_signer, fetcher, now)
    if tl_signer is not None:
        raise QTSPError(Kind.MALFORMED, "--tl-signer goes with --tl")
    if data_dir is None:
        raise QTSPError(Kind.MALFORMED, "give --trust-anchor PEM (repeatable) or --tl URL|FILE --tl-signer PEM")
    from qtsp.services import trusted_list as sandbox_list
    from qtsp.services.context import open_sandbox

    try:
        sandbox = open_sandbox(data_dir)
    except QTSPError as exc:
        if exc.kind is not Kind.NOT_FOUND:
            raise
        raise QTSPError(Kind.NOT_FOUND, f"{exc.detail}; or judge against a published Trusted List "
                        "(--tl URL|FILE --tl-signer PEM) or trust anchors (--trust-anchor ROOT.pem)") from None
    try:
        xml, pins = sandbox_list.current(sandbox, now).xml, [sandbox_list.signer_certificate(sandbox)]
    finally:
        sandbox.engine.dispose()
    return relying_party.parse_and_verify_trusted_list(xml, pins, now)
