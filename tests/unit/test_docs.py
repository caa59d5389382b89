"""The documents the suite runs (tests/system/test_docs.py) skip only the commands the runner allows
(tests/support/docs_runner.py): read, not run."""

from __future__ import annotations

from support.docs_runner import DOCUMENTS, SKIP_ALLOWED, parse, skipped_commands


def test_only_allowed_commands_are_skipped() -> None:
    for path in DOCUMENTS:
        doc = parse(path)
        for block, reason in skipped_commands(doc):
            assert block.text.strip() in SKIP_ALLOWED, f"{doc.name}:{block.line} skips {block.text.strip()!r} ({reason})"
