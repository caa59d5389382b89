"""The acceptance matrix (``qtsp scenarios matrix``): every scenario of the catalogue through every bank model
(``qtsp.relying_party.models``), so a bank sees which defects slip through checks like its own.

Each certificate is validated once by the reference validator (path to the Trusted List, revocation, the
qualified and PSD2 content, usage); each model then judges that verdict by the reasons it counts. The
scenarios come from an issued catalogue's directory (``manifest.json`` with the certificates and chains
beside it, as ``qtsp scenarios issue`` writes it); revocation answers come from the fetcher the caller
gives (the sandbox's responder in process, or a served sandbox over HTTP).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from cryptography import x509

from ..core.errors import Kind, QTSPError
from ..core.trusted_list import ParsedList
from ..relying_party import Fetcher, validate
from ..relying_party.models import MODELS, judge

__all__ = ["MAX_MANIFEST_BYTES", "load_manifest", "render_html", "run"]

MAX_MANIFEST_BYTES = 1024 * 1024
MAX_PEM_BYTES = 256 * 1024


def _read(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise QTSPError(Kind.NOT_FOUND, f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise QTSPError(Kind.MALFORMED, f"{what} {path} is larger than {limit} bytes")
    return data


def _inside(directory: Path, name: Any) -> Path:
    """``name`` (from the manifest) as a file of ``directory``: no absolute path, no way out of it."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        raise QTSPError(Kind.MALFORMED, f"manifest: {str(name)[:80]!r} is not a relative file name")
    path = (directory / name).resolve()
    if directory.resolve() not in path.parents:
        raise QTSPError(Kind.MALFORMED, f"manifest: {name[:80]!r} points outside {directory}")
    return path


def _certificate(directory: Path, name: Any) -> x509.Certificate:
    path = _inside(directory, name)
    try:
        return x509.load_pem_x509_certificate(_read(path, MAX_PEM_BYTES, "certificate"))
    except ValueError:
        raise QTSPError(Kind.MALFORMED, f"manifest: {path} is not a PEM certificate") from None


def load_manifest(directory: Path) -> dict[str, Any]:
    """The catalogue's manifest.json, its entries checked for the fields the matrix reads."""
    try:
        manifest = json.loads(_read(directory / "manifest.json", MAX_MANIFEST_BYTES, "manifest"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise QTSPError(Kind.MALFORMED, f"{directory / 'manifest.json'} is not JSON") from None
    entries = manifest.get("scenarios") if isinstance(manifest, dict) else None
    if not isinstance(entries, list) or not entries:
        raise QTSPError(Kind.MALFORMED, f"{directory / 'manifest.json'} lists no scenarios")
    for entry in entries:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "purpose", "certificate")) \
                or not isinstance(entry.get("chain", []), list):
            raise QTSPError(Kind.MALFORMED, "manifest: every scenario needs name, purpose, certificate and chain")
    return manifest


def _deciding(reason: Any) -> dict[str, str] | None:
    return None if reason is None else {"code": reason.code, "message": reason.message}


def run(directory: Path, manifest: dict[str, Any], trusted_list: ParsedList, fetcher: Fetcher,
        at: dt.datetime) -> dict[str, Any]:
    """The matrix: for each scenario, the reference validator's reasons, each model's verdict and the reason
    that decided it, and whether the strict model reached the manifest's expected verdict."""
    rows = []
    for entry in manifest["scenarios"]:
        cert = _certificate(directory, entry["certificate"])
        chain = [_certificate(directory, name) for name in entry.get("chain", [])]
        verdict = validate(cert, trusted_list=trusted_list, intermediates=chain, purpose=entry["purpose"], at=at,
                           fetcher=fetcher)
        results = {}
        for name in MODELS:
            accepted, deciding = judge(verdict, name)
            results[name] = {"verdict": "accept" if accepted else "reject", "deciding": _deciding(deciding)}
        expected = entry.get("expected") or {}
        rows.append({
            "name": entry["name"], "purpose": entry["purpose"], "description": str(entry.get("description", "")),
            "expected": {"verdict": expected.get("verdict"), "reasons": list(expected.get("reasons", []))},
            "reasons": sorted(set(verdict.codes)),
            "results": results,
            "strict_as_expected": (results["strict"]["verdict"] == expected.get("verdict")
                                   and sorted(set(verdict.codes)) == sorted(set(expected.get("reasons", [])))),
        })
    return {"at": at.isoformat(), "models": {m.name: m.description for m in MODELS.values()}, "scenarios": rows}


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#eee}
td.accept{background:#e3f5e1}td.reject{background:#fbe3e1}td.slip{background:#ffe9a8;font-weight:bold}
small{color:#555}"""


def render_html(matrix: dict[str, Any]) -> str:
    """A static page (no script): one row per scenario, one column per model; a defect a model lets through
    (the strict model rejects, this one accepts) is marked. Every value is escaped."""
    e = html.escape
    heads = "".join(f"<th>{e(name)}<br><small>{e(desc)}</small></th>" for name, desc in matrix["models"].items())
    rows = []
    for row in matrix["scenarios"]:
        strict_rejects = row["results"]["strict"]["verdict"] == "reject"
        cells = []
        for name in matrix["models"]:
            result = row["results"][name]
            slip = strict_rejects and result["verdict"] == "accept"
            css = "slip" if slip else result["verdict"]
            why = result["deciding"]
            detail = f"<br><small>{e(why['code'])}: {e(why['message'])}</small>" if why else ""
            cells.append(f'<td class="{css}">{e(result["verdict"])}{" (slips through)" if slip else ""}{detail}</td>')
        expected = row["expected"]
        rows.append(f"<tr><th>{e(row['name'])}<br><small>{e(row['purpose'])}; expected {e(str(expected['verdict']))}"
                    f"</small></th>{''.join(cells)}</tr>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>qtsp acceptance matrix</title>"
            f"<style>{_STYLE}</style></head><body><h1>Acceptance matrix</h1>"
            f"<p>Each scenario certificate of the qtsp catalogue, judged as of {e(matrix['at'])} by the reference "
            "validator and then by each bank model. A highlighted cell is a defect that model lets through.</p>"
            f"<table><thead><tr><th>scenario</th>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "</body></html>\n")
