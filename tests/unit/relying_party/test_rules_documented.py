"""docs/validator.md lists every rule the validator can report, with the source the code cites; and every
profile rule there has a broken certificate in the foreign PKI (tests/support/foreign_pki.py) that shows it."""

from __future__ import annotations

import re
from pathlib import Path

import qtsp.relying_party
from qtsp.relying_party.validator import CHAIN_SOURCES
from support import ROOT
from support.foreign_pki import VARIANTS

DOC = (ROOT / "docs/validator.md").read_text()
PACKAGE = Path(qtsp.relying_party.__file__).parent
# Shown another way than by a broken foreign certificate: a bank's own requirement (--require-role, tested in
# tests/system/relying_party/test_validation.py) and a certificate that says nothing (test_profile_rules.py).
NO_VARIANT = {"role-not-authorised", "certificate-type-unknown"}


def _documented() -> set[str]:
    rows = [line.split("|")[1] for line in DOC.splitlines() if line.startswith("| `")]
    return {rule for cell in rows for rule in re.findall(r"`([a-z0-9-]+)`", cell)}


def _emitted() -> set[str]:
    found: set[str] = set()
    for path in (PACKAGE / "profile").glob("*.py"):
        found |= set(re.findall(r'\badd\(\s*"([a-z0-9-]+)"', path.read_text()))
    return found


def test_every_rule_is_documented() -> None:
    emitted = _emitted()
    assert len(emitted) > 30
    assert emitted | set(CHAIN_SOURCES) | {"revocation-not-checked"} <= _documented()


def test_the_chain_sources_in_the_docs_are_the_codes() -> None:
    for rule, source in CHAIN_SOURCES.items():
        first = source.split(";")[0]
        assert any(f"`{rule}`" in line and first in line for line in DOC.splitlines()), (rule, first)


def test_every_profile_rule_has_a_foreign_variant() -> None:
    assert _emitted() - NO_VARIANT <= {v.rule for v in VARIANTS}
