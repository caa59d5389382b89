"""A ceremony record to print and sign on paper: Markdown rendered from a transcript."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .transcript import verify


def _esc(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(path: Path) -> str:
    checked = verify(path)
    lines = checked.lines
    opening = lines[0]["details"] if lines and lines[0].get("step") == "open" else {}
    people = opening.get("people", {})
    out = [f"# Key ceremony record: {_esc(opening.get('name', path.name))}", ""]
    out += [
        "| | |", "|---|---|",
        f"| Ceremony type | {_esc(opening.get('ceremony_type', '?'))} |",
        f"| Ceremony file | `{_esc(opening.get('file', '?'))}` (SHA-256 `{opening.get('file_sha256', '?')}`) |",
        f"| Transcript | `{_esc(path)}` ({len(lines)} lines) |",
        f"| Started | {lines[0]['at'] if lines else '?'} |",
        f"| Ended | {lines[-1].get('at', '?') if lines else '?'} |",
        f"| Mode | {_esc(lines[0].get('mode', '?')) if lines else '?'} |",
        f"| Administrator | {_esc(people.get('administrator', '?'))} |",
        f"| Witnesses | {_esc(', '.join(people.get('witnesses', [])))} |",
    ]
    if people.get("custodians"):
        out.append(f"| Custodians | {_esc(', '.join(people['custodians']))} |")
    out += [f"| Final hash | `{checked.final_hash}` |",
            f"| Closing signature | {'verifies (ceremony key)' if checked.signed else 'none'} |",
            f"| Verification | {'**passed**' if checked.ok else '**FAILED**'} |", ""]
    if not checked.ok:
        out += ["## Problems found", ""] + [f"- {_esc(p)}" for p in checked.problems] + [""]
    out += ["## Steps", ""]
    for line in lines[1:]:
        step = line.get("step")
        if step in ("close", "abort"):
            continue
        out.append(f"### {line['seq'] - 1}. {_esc(line.get('title', step))}")
        out.append("")
        who = ", ".join(line.get("confirmed_by") or []) or "nobody (unattended, --yes)"
        out.append(f"- Time: {line.get('at')}; confirmed by: {_esc(who)}")
        for name, entry in (line.get("inputs") or {}).items():
            out.append(f"- Input {name}: `{_esc(entry['path'])}` SHA-256 `{entry['sha256']}`")
        for entry in line.get("outputs") or []:
            out.append(f"- Output {entry['name']}: `{_esc(entry['path'])}` SHA-256 `{entry['sha256']}`")
        for key in line.get("keys") or []:
            extra = " (ceremony key)" if key.get("ceremony_key") else ""
            out.append(f"- Key {key['role']}{extra}: `{_esc(key.get('ref'))}` {key['type']}, SPKI SHA-256 `{key['fingerprint']}`")
            if key.get("attributes"):
                flags = ", ".join(f"{k}={'true' if v else 'false'}" for k, v in key["attributes"].items())
                out.append(f"  - token attributes: {flags}")
        for name, value in (line.get("details") or {}).items():
            if isinstance(value, (dict, list)):
                continue
            out.append(f"- {name.replace('_', ' ')}: {_esc(value)}")
        out.append("")
    if lines and lines[-1].get("step") == "abort":
        out += ["## Aborted", "", f"{_esc(lines[-1].get('details', {}).get('error'))}", ""]
    out += ["## Signatures", "", "By signing, each person confirms they saw every step above and the final hash.", ""]
    names = [("Administrator", people.get("administrator", ""))]
    names += [("Witness", w) for w in people.get("witnesses", [])] + [("Custodian", c) for c in people.get("custodians", [])]
    out += ["| Role | Name | Final hash checked | Signature | Date |", "|---|---|---|---|---|"]
    out += [f"| {role} | {_esc(name)} | | | |" for role, name in names]
    return "\n".join(out) + "\n"
