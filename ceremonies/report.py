"""A ceremony record to print and sign on paper: Markdown (or HTML) rendered from a transcript."""

from __future__ import annotations

import html
import re
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


# --- HTML: the same record, for a browser or a printer -------------------------------------------------
# The Markdown above is ours (a fixed set of constructs, every value passed through _esc), so it is turned
# into HTML by this small converter rather than a Markdown library; every text is HTML-escaped first, so a
# name in a ceremony file can never become markup.

_CSS = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #888;padding:.3em .6em;text-align:left}"
        "code{font-size:.9em;word-break:break-all}.sig td{height:2.5em;min-width:8em}")


def _inline(text: str) -> str:
    out = html.escape(text, quote=True)
    out = re.sub(r"`([^`]*)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _cells(row: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", row.strip())[1:-1]
    return [_inline(p.strip().replace("\\|", "|")) for p in parts]


def to_html(markdown: str, title: str = "Key ceremony record") -> str:
    lines = markdown.splitlines()
    body: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            header = len(block) > 1 and re.fullmatch(r"\|(?:-+\|)+", block[1].replace(" ", "")) is not None
            rows = [block[0]] + block[2:] if header else block
            cls = ' class="sig"' if header and _cells(block[0])[:1] == ["Role"] else ""
            body.append(f"<table{cls}>")
            for n, row in enumerate(rows):
                tag = "th" if header and n == 0 else "td"
                body.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in _cells(row)) + "</tr>")
            body.append("</table>")
            continue
        if line.startswith("- ") or line.startswith("  - "):
            body.append("<ul>")
            while i < len(lines) and (lines[i].startswith("- ") or lines[i].startswith("  - ")):
                item = lines[i]
                if item.startswith("  - "):
                    body.append(f"<ul><li>{_inline(item[4:])}</li></ul>")
                else:
                    body.append(f"<li>{_inline(item[2:])}</li>")
                i += 1
            body.append("</ul>")
            continue
        heading = re.match(r"(#{1,3}) (.*)", line)
        if heading:
            level = len(heading.group(1))
            body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def render_html(path: Path) -> str:
    return to_html(render(path), f"Key ceremony record: {path.name}")
