"""IssueRequest: one strict parser for the CLI's options, the API's body and bulk's lines (issue_request.FIELDS)."""

from __future__ import annotations

from typing import Any

import pytest

from qtsp.core.errors import Kind, QTSPError
from qtsp.services.issue_request import FIELDS, MAX_DOMAINS, REQUIRED, SOURCES, IssueRequest, parse_issue_request

ORG = "PSDBE-NBB-0123456789"
PEM = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
API = {"kind": "qwac", "org_id": ORG, "csr": PEM, "domains": ["api.example.com"]}
CLI = {"kind": "qwac", "org_id": ORG, "domains": ["api.example.com"], "generate_key": True}
BULK = {"kind": "qsealc", "org_id": ORG}

GOOD: list[tuple[str, str, dict[str, Any], IssueRequest]] = [
    ("cli, key type from the config", "cli", CLI, IssueRequest("qwac", ORG, ("api.example.com",), generate_key=True)),
    ("cli, key type given", "cli", {**CLI, "key_type": "rsa-3072"},
     IssueRequest("qwac", ORG, ("api.example.com",), generate_key="rsa-3072")),
    ("cli, a CSR", "cli", {"kind": "qsealc", "org_id": ORG, "csr": b"\x30\x82", "generate_key": False},
     IssueRequest("qsealc", ORG, csr=b"\x30\x82")),
    ("cli, a key type without --generate-key is ignored", "cli", {"kind": "qsealc", "org_id": ORG, "csr": b"0",
                                                                   "key_type": "rsa-2048"},
     IssueRequest("qsealc", ORG, csr=b"0")),
    ("cli, every option", "cli", {**CLI, "roles": "PSP_AI", "browser": True, "key_type": None},
     IssueRequest("qwac", ORG, ("api.example.com",), generate_key=True, roles="PSP_AI", browser=True)),
    ("api, a PEM CSR", "api", API, IssueRequest("qwac", ORG, ("api.example.com",), csr=PEM.encode())),
    ("api, roles as a list", "api", {**API, "roles": ["PSP_AI", "PSP_PI"]},
     IssueRequest("qwac", ORG, ("api.example.com",), csr=PEM.encode(), roles="PSP_AI,PSP_PI")),
    ("api, roles null", "api", {**API, "roles": None}, IssueRequest("qwac", ORG, ("api.example.com",), csr=PEM.encode())),
    ("api, a QSealC in a QSCD", "api", {"kind": "qsealc", "org_id": ORG, "csr": PEM, "qscd": True},
     IssueRequest("qsealc", ORG, csr=PEM.encode(), qscd=True)),
    ("bulk, the smallest line", "bulk", BULK, IssueRequest("qsealc", ORG, generate_key=True)),
    ("bulk, a key type", "bulk", {**BULK, "key_type": "ecdsa-p384", "roles": "PSP_AI"},
     IssueRequest("qsealc", ORG, generate_key="ecdsa-p384", roles="PSP_AI")),
    ("bulk, a browser QWAC", "bulk", {"kind": "qwac", "org_id": ORG, "domains": ["a.example.com"], "browser": True},
     IssueRequest("qwac", ORG, ("a.example.com",), generate_key=True, browser=True)),
]


@pytest.mark.parametrize("source, data, expected", [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_requests(source: str, data: dict[str, Any], expected: IssueRequest) -> None:
    assert parse_issue_request(data, source=source) == expected


# (what, source, data, a fragment of the detail: the field named, and why)
BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("an unknown field", "api", {**API, "colour": "red"}, "unknown fields ['colour']"),
    ("a key type through the API", "api", {**API, "key_type": "rsa-2048"}, "unknown fields ['key_type']"),
    ("generate_key in a bulk line", "bulk", {**BULK, "generate_key": True}, "unknown fields ['generate_key']"),
    ("a CSR in a bulk line", "bulk", {**BULK, "csr": PEM}, "unknown fields ['csr']"),
    ("no CSR through the API", "api", {"kind": "qwac", "org_id": ORG}, "missing csr"),
    ("no org_id", "bulk", {"kind": "qsealc"}, "missing org_id"),
    ("nothing", "bulk", {}, "missing kind and org_id"),
    ("kind not a string", "bulk", {**BULK, "kind": 1}, "kind must be a string"),
    ("kind unknown", "api", {**API, "kind": "qcert"}, "kind must be one of qwac, qsealc, two-qwac"),
    ("org_id not a string", "api", {**API, "org_id": 7}, "org_id must be a string"),
    ("domains a string", "bulk", {**BULK, "domains": "a.example.com"}, "domains must be a list of strings"),
    ("domains with a number", "api", {**API, "domains": ["a.example.com", 7]}, "domains must be a list of strings"),
    ("too many domains", "api", {**API, "domains": [f"d{i}.example.com" for i in range(MAX_DOMAINS + 1)]},
     f"domains: at most {MAX_DOMAINS}"),
    ("qscd a string", "bulk", {**BULK, "qscd": "yes"}, "qscd must be true or false"),
    ("qscd a number", "api", {**API, "qscd": 1}, "qscd must be true or false"),
    ("browser a number", "bulk", {**BULK, "browser": 1}, "browser must be true or false"),
    ("roles a list in a bulk line", "bulk", {**BULK, "roles": ["PSP_AI"]}, "roles must be a string"),
    ("roles null in a bulk line", "bulk", {**BULK, "roles": None}, "roles must be a string"),
    ("roles an empty list", "api", {**API, "roles": []}, "roles must be"),
    ("roles with a comma inside", "api", {**API, "roles": ["PSP_AI,PSP_PI"]}, "roles must be"),
    ("roles a number", "api", {**API, "roles": 3}, "roles must be"),
    ("csr not PEM", "api", {**API, "csr": "hello"}, "csr must be a PEM PKCS#10 request"),
    ("csr bytes through the API", "api", {**API, "csr": 3}, "csr must be"),
    ("csr text on the command line", "cli", {"kind": "qsealc", "org_id": ORG, "csr": PEM}, "csr must be"),
    ("key_type a number", "bulk", {**BULK, "key_type": 256}, "key_type must be a string"),
    ("generate_key a string", "cli", {**CLI, "generate_key": "yes"}, "generate_key must be true or false"),
]


@pytest.mark.parametrize("source, data, fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_requests_are_refused_naming_the_field(source: str, data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(QTSPError) as err:
        parse_issue_request(data, source=source)
    assert err.value.kind is Kind.MALFORMED
    assert fragment in err.value.detail, err.value.detail


def test_the_table_covers_every_source_and_requires_only_known_fields() -> None:
    for source in SOURCES:
        known = {name for name, accepts in FIELDS.items() if source in accepts}
        assert {"kind", "org_id", "roles", "qscd", "browser", "domains"} <= known, source
        assert set(REQUIRED[source]) <= known, source
    with pytest.raises(ValueError):
        parse_issue_request(BULK, source="portal")


@pytest.mark.parametrize("generate_key, expected", [(None, None), (False, None), (True, "rsa-3072"),
                                                    ("ecdsa-p384", "ecdsa-p384")])
def test_key_type_falls_back_to_the_configured_one(generate_key: Any, expected: str | None) -> None:
    assert IssueRequest("qwac", ORG, generate_key=generate_key).key_type("rsa-3072") == expected
