"""Bulk issuance helpers (tests/unit/{services,cli}/test_bulk.py, tests/system/services/test_bulk.py):
a request file, the store's counts and intent states, and a file with good and bad lines mixed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from support import SAMPLE_ORG as ORG


def write_requests(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def bulk_counts(data_dir: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return tuple(con.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("certificates", "issuance_intents", "audit_events"))
    finally:
        con.close()


def intent_states(data_dir: Path) -> dict[str, int]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return dict(con.execute("select state, count(*) from issuance_intents group by state").fetchall())
    finally:
        con.close()


MIXED = [
    {"kind": "qwac", "org_id": ORG, "domains": ["one.example.com"]},
    {"kind": "qwac", "org_id": ORG, "domains": ["two.example.com"], "surprise": 1},
    "",
    {"kind": "qsealc", "org_id": ORG, "roles": "PSP_IC"},
    {"kind": "qsealc", "org_id": ORG, "qscd": True},
    "[1, 2]",
]
