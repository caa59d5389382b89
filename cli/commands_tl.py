"""``qtsp tl``: the sandbox Trusted List (ETSI TS 119 612)."""

from __future__ import annotations

from typing import Any
from pathlib import Path

import click
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from .output import common, data_dir, emit, subject_text, table

_OUT = click.Path(dir_okay=False, path_type=Path)


@click.group("tl")
def tl() -> None:
    """The sandbox Trusted List (ETSI TS 119 612, XAdES-signed), as served at /tl.xml."""


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path``; never overwrite, never write through a symlink (the house rule for outputs)."""
    from qtsp.files import write_new

    write_new(path, data)


@tl.command("show")
@common
def tl_show() -> None:
    """The current list: sequence, next update and listed services (verified against the signer)."""
    from qtsp.core.trusted_list import FOR_ESEALS, FOR_WEB
    from qtsp.relying_party import parse_and_verify_trusted_list
    from qtsp.services import trusted_list as svc
    from qtsp.clock import utcnow
    from qtsp.services.context import open_sandbox

    short = {FOR_WEB: "ForWebSiteAuthentication", FOR_ESEALS: "ForeSeals"}
    sb = open_sandbox(data_dir())
    now = utcnow()
    record = svc.current(sb, now)
    signer = svc.signer_certificate(sb)
    parsed = parse_and_verify_trusted_list(record.xml, [signer], now)
    data: dict[str, Any] = {
        "sequence": parsed.sequence,
        "territory": parsed.territory,
        "operator": parsed.operator,
        "issued_at": parsed.issued_at.isoformat(),
        "next_update": parsed.next_update.isoformat(),
        "url": sb.config.trusted_list_url,
        "signer_sha256": signer.fingerprint(hashes.SHA256()).hex(),
        "services": [
            {"name": s.name, "type": s.service_type, "status": s.status, "status_start": s.status_start.isoformat(),
             "additional_info": sorted(s.additional_info), "subject": subject_text(s.certificate.subject),
             "certificate_sha256": s.certificate.fingerprint(hashes.SHA256()).hex()}
            for s in parsed.services
        ],
    }
    emit(data, lambda: "\n".join([
        f"sequence:    {data['sequence']} ({data['territory']}, {data['operator']})",
        f"issued at:   {data['issued_at']}",
        f"next update: {data['next_update']}",
        f"url:         {data['url']}",
        f"signer:      SHA-256 {data['signer_sha256']}",
        "",
        table([[s["name"], s["type"].rsplit("/", 2)[-2] + "/" + s["type"].rsplit("/", 1)[-1], s["status"].rsplit("/", 1)[-1],
                ", ".join(short.get(u, u) for u in s["additional_info"]), s["status_start"][:10]] for s in data["services"]],
              ["SERVICE", "TYPE", "STATUS", "FOR", "SINCE"]),
    ]))


@tl.command("export")
@click.option("--out", required=True, type=_OUT, help="file to write the signed XML to (never overwritten)")
@common
def tl_export(out: Path) -> None:
    """Write the current signed list (what GET /tl.xml serves)."""
    from qtsp.services import trusted_list as svc
    from qtsp.clock import utcnow
    from qtsp.services.context import open_sandbox

    record = svc.current(open_sandbox(data_dir()), utcnow())
    _write_new(out, record.xml)
    emit({"sequence": record.sequence, "file": str(out), "bytes": len(record.xml)},
         f"Trusted List sequence {record.sequence} written to {out} ({len(record.xml)} bytes)")


@tl.command("signer")
@click.option("--out", required=True, type=_OUT, help="file to write the signer certificate (PEM) to (never overwritten)")
@common
def tl_signer(out: Path) -> None:
    """Write the Trusted List signer's certificate: the pin relying parties verify lists with."""
    from qtsp.services import trusted_list as svc
    from qtsp.services.context import open_sandbox

    cert = svc.signer_certificate(open_sandbox(data_dir()))
    _write_new(out, cert.public_bytes(Encoding.PEM))
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    subject = subject_text(cert.subject)
    emit({"file": str(out), "sha256": fingerprint, "subject": subject, "not_after": cert.not_valid_after_utc.isoformat()},
         f"Trusted List signer certificate written to {out}\n  subject: {subject}\n  SHA-256: {fingerprint}")
