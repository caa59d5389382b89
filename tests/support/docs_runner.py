"""Runs the commands of a Markdown document, so that README and docs/ examples cannot rot.

What runs, in a document's order, as one bash script (``set -euo pipefail``, so exported variables
carry from one block to the next):

- a fenced block whose info string is ``sh``: its commands;
- a fenced block preceded by ``<!-- doctest: file NAME -->``: its text, written to NAME first (a
  configuration or ceremony file the next commands use);
- a ``text`` block preceded by ``<!-- doctest: output -->``: what the ``sh`` block before it printed
  must contain each of its lines (``...`` lines are skipped);
- ``<!-- doctest: background READY-URL -->`` before an ``sh`` block: it is started in the background
  (it is a server the reader leaves running in another terminal), the script waits until READY-URL
  answers, and stops it when the document ends;
- ``<!-- doctest: skip REASON -->`` before a block: not run. Only the commands in ``SKIP_ALLOWED``
  may be skipped (a test checks), so a document cannot opt out of being tested.

Real parts a document uses (OpenBao, a SoftHSM2 token) are started by its own commands, as a reader
would start them.

Each document runs in its own empty directory (with the checkout's Makefile, lock files, scripts and
virtual environment linked in, so ``make run`` works there), inside a new network namespace with
only loopback up: the documented ports (8080) are free whatever runs on this machine, and nothing
can leave the machine, so "works offline" is what is tested.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from support import ROOT

LINKED = ("Makefile", "pyproject.toml", "requirements", "scripts", ".venv", "README.md", "LICENSE", "benchmarks", "docs")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # every document the suite runs
# Commands a document shows but this runner does not execute, and why.
SKIP_ALLOWED = {
    "make test": "it is the command that runs this test",
    "make bench": "it runs for many minutes; the documents run each benchmark with short settings instead",
}
_FENCE = re.compile(r"^(```+)\s*([\w.+-]*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*doctest:\s*(\w+)\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    lang: str
    text: str
    line: int  # 1-based line of the opening fence
    directive: str = ""
    argument: str = ""


@dataclass
class Document:
    path: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.path.relative_to(ROOT))


def parse(path: Path) -> Document:
    doc = Document(path)
    lines = path.read_text().splitlines()
    pending: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE.match(line.strip())
        if directive:
            name, argument = directive.group(1), directive.group(2)
            if name not in ("file", "output", "background", "skip"):
                raise ValueError(f"{path}:{i + 1}: unknown doctest directive {name!r}")
            pending = (name, argument)
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            ticks, lang = fence.group(1), fence.group(2)
            start = i
            body = []
            i += 1
            while i < len(lines) and lines[i].rstrip() != ticks:
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"{path}:{start + 1}: unclosed code fence")
            name, argument = pending or ("", "")
            doc.blocks.append(Block(lang, "\n".join(body) + "\n", start + 1, name, argument))
            pending = None
        elif line.strip():
            if pending is not None:
                raise ValueError(f"{path}:{i + 1}: a doctest directive must come right before its code block")
        i += 1
    return doc


def skipped_commands(doc: Document) -> list[tuple[Block, str]]:
    return [(b, b.argument) for b in doc.blocks if b.directive == "skip"]


def script(doc: Document) -> str:
    """The bash script that runs ``doc``; each block's output goes to out-<line>.txt in the work dir."""
    out = ["set -euo pipefail", "ip link set lo up", "_bg=()", "_d=$PWD",
           "_stop() { for p in \"${_bg[@]}\"; do kill -TERM -- \"-$p\" 2>/dev/null || true; done; "
           "for p in \"${_bg[@]}\"; do for _ in $(seq 1 100); do kill -0 \"$p\" 2>/dev/null || break; sleep 0.1; done; "
           "kill -KILL -- \"-$p\" 2>/dev/null || true; done; }",
           "trap _stop EXIT", "exec 3>&1 4>&2"]
    last_sh: Block | None = None
    for block in doc.blocks:
        where = f"{doc.name}:{block.line}"
        if block.directive == "skip":
            continue
        if block.directive == "file":
            target = block.argument
            if not target or target.startswith("/") or ".." in Path(target).parts:
                raise ValueError(f"{where}: doctest file needs a relative name")
            delimiter = "DOCTEST_EOF_" + str(block.line)
            out += [f"mkdir -p {shlex.quote(str(Path(target).parent))}",
                    f"cat > {shlex.quote(target)} <<'{delimiter}'", block.text.rstrip("\n"), delimiter]
            continue
        if block.directive == "output":
            if last_sh is None:
                raise ValueError(f"{where}: expected output without an sh block before it")
            for expected in block.text.splitlines():
                if expected.strip() and expected.strip() != "...":
                    out.append(f"grep -qF -- {shlex.quote(expected.strip())} \"$_d/out-{last_sh.line}.txt\" || "
                               f"{{ echo {shlex.quote(f'{where}: missing from the output: {expected.strip()}')} >&4; exit 1; }}")
            continue
        if block.lang != "sh":
            continue
        out.append(f"echo '--- {where}' >&4")
        if block.directive == "background":
            ready = block.argument
            if not ready.startswith("http://127.0.0.1:"):
                raise ValueError(f"{where}: background blocks name a loopback URL that answers once ready")
            out += [f"setsid bash -euo pipefail -c {shlex.quote(block.text)} > \"$_d/bg-{block.line}.log\" 2>&1 < /dev/null &",
                    "_bg+=($!)",
                    f"for _ in $(seq 1 900); do curl -fsS -o /dev/null {shlex.quote(ready)} 2>/dev/null && break; "
                    f"kill -0 \"${{_bg[-1]}}\" 2>/dev/null || {{ echo '{where}: the background command exited' >&4; exit 1; }}; "
                    "sleep 0.2; done",
                    f"curl -fsS -o /dev/null {shlex.quote(ready)} || {{ echo '{where}: not ready' >&4; exit 1; }}"]
        else:
            out += [f"exec > \"$_d/out-{block.line}.txt\" 2>&1", block.text.rstrip("\n"), "exec 1>&3 2>&4"]
            last_sh = block
    return "\n".join(out) + "\n"


def run(doc: Document, work: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    for name in LINKED:
        if (ROOT / name).exists():
            (work / name).symlink_to(ROOT / name)
    path = work / "doctest.sh"
    path.write_text(script(doc))
    # The linked venv is the one running this test, installed from the checkout: `make run` here must
    # not reinstall it (from this directory, which has no sources, it would break the checkout's venv).
    env = {**env, "MAKEFLAGS": " ".join(f"-o .venv/{f}" for f in (".installed-run", ".installed-test"))}
    unshare = shutil.which("unshare")
    if unshare is None:
        raise RuntimeError("the docs test needs unshare(1) (util-linux) for a private network namespace")
    ns = [unshare, "-n"] if os.geteuid() == 0 else [unshare, "-rn"]
    return subprocess.run([*ns, "bash", str(path)], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)


def report(doc: Document, work: Path, result: subprocess.CompletedProcess[str]) -> str:
    parts = [f"{doc.name}: exit {result.returncode}", result.stderr[-4000:]]
    outputs = sorted(work.glob("out-*.txt"), key=lambda p: p.stat().st_mtime)
    for log in outputs[-2:] + sorted(work.glob("bg-*.log")):
        parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)
