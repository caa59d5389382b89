"""qtsp.logging_setup: secrets are redacted from what is logged, and a logged path is one bounded line."""

from __future__ import annotations

import pytest

from qtsp.logging_setup import redact, safe_path


@pytest.mark.parametrize("text,expected", [
    ("Authorization: Bearer abc.def-123 next", "Authorization: [redacted] next"),
    ("sent bearer qtsp_AbCdEfGh12345678 to", "sent bearer [redacted] to"),
    ("token qtsp_AbCdEfGh12345678", "token [redacted]"),
    ('{"p12_password": "hunter2", "n": 1}', '{"p12_password": [redacted], "n": 1}'),
    ("QTSP_KEY_PASSPHRASE=xyz other", "QTSP_KEY_PASSPHRASE=[redacted] other"),
    ("--p12-password hunter2 --out x", "--p12-password [redacted] --out x"),
    ("a\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\nb", "a\n[private key redacted]\nb"),
    ("token expired after 5 s", "token expired after 5 s"),
    ("published 3 CRLs", "published 3 CRLs"),
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_logged_paths_are_one_bounded_line() -> None:
    assert safe_path("/ocsp/" + "A" * 20_000).endswith("...(+19494)")
    assert safe_path("/x\nINFO forged 200") == "/x\\nINFO\\x20forged\\x20200"
    assert safe_path("/api/v1/certificates/qtsp_AbCdEfGh12345678") == "/api/v1/certificates/[redacted]"
