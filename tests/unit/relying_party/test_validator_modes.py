"""The validator's revocation modes against the foreign QTSP's own loopback OCSP responder and CRLs (made with
cryptography in tests/support/foreign_pki.py, not with qtsp's responder), and the shape other callers rely
on: the path, time and revocation reason codes, each a finding whose source is an RFC clause."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from qtsp.core.errors import QTSPError
from qtsp.relying_party import Fetcher, trusted_list_from_anchors, validate
from qtsp.relying_party.validator import CHAIN_SOURCES
from support.foreign_pki import NOW, ForeignPKI, Spec
from support.foreign_responder import ForeignResponder


@pytest.fixture(scope="module")
def pki() -> ForeignPKI:
    return ForeignPKI()


@pytest.fixture
def responder(pki: ForeignPKI) -> Iterator[ForeignResponder]:
    with ForeignResponder(pki) as running:
        yield running


def _judge(pki: ForeignPKI, cert, responder: ForeignResponder | None, mode: str, **kw):  # type: ignore[no-untyped-def]
    fetcher = Fetcher(connect_to=responder.address if responder else "127.0.0.1:9", timeout=5)
    return validate(cert, trusted_list=trusted_list_from_anchors([pki.root], NOW), at=kw.pop("at", NOW),
                    intermediates=kw.pop("intermediates", [pki.ca]), fetcher=fetcher, revocation=mode, **kw)


@pytest.mark.parametrize("mode,source", [("auto", "ocsp"), ("ocsp", "ocsp"), ("crl", "crl")])
def test_each_mode_asks_its_source_for_the_leaf_and_the_ca(pki: ForeignPKI, responder: ForeignResponder, mode: str,
                                                           source: str) -> None:
    cert = pki.issue(Spec.qwac())
    verdict = _judge(pki, cert, responder, mode)
    assert verdict.accepted, verdict.reasons
    assert [r["source"] for r in verdict.revocation] == [source, source]
    asked = {"ocsp": "POST /ocsp", "crl": "GET /crl/issuing.crl"}[source]
    assert asked in responder.requests
    responder.revoked.add(cert.serial_number)
    revoked = _judge(pki, cert, responder, mode)
    assert revoked.codes == ["revoked"]
    [finding] = [f for f in revoked.findings if f.rule == "revoked"]
    assert finding.source == CHAIN_SOURCES["revoked"] and "RFC 5280 6.1.3 (a)(3)" in finding.source


def test_auto_falls_back_to_the_crl_and_ocsp_alone_does_not(pki: ForeignPKI, responder: ForeignResponder) -> None:
    cert = pki.issue(Spec.qsealc())
    responder.ocsp_down = True
    auto = _judge(pki, cert, responder, "auto")
    assert auto.accepted and auto.revocation[0]["source"] == "crl" and "HTTP 503" in auto.revocation[0]["fallback_after"][0]
    only = _judge(pki, cert, responder, "ocsp")
    assert not only.accepted and set(only.codes) == {"revocation-unknown"}


def test_off_asks_nobody_and_says_so(pki: ForeignPKI, responder: ForeignResponder) -> None:
    cert = pki.issue(Spec.qwac())
    responder.revoked.add(cert.serial_number)
    verdict = _judge(pki, cert, responder, "off")
    assert verdict.accepted and verdict.revocation == [] and responder.requests == []
    [note] = [f for f in verdict.findings if f.rule == "revocation-not-checked"]
    assert note.severity == "info"


def test_no_responder_is_revocation_unknown(pki: ForeignPKI) -> None:
    verdict = _judge(pki, pki.issue(Spec.qwac()), None, "auto")
    assert set(verdict.codes) == {"revocation-unknown"}


def test_the_chain_codes_stay_and_cite_their_rfc_clause(pki: ForeignPKI) -> None:
    cert = pki.issue(Spec.qwac())
    cases = {
        "expired": dict(at=NOW + dt.timedelta(days=400)),
        "not-yet-valid": dict(at=NOW - dt.timedelta(days=60)),
        "no-path": dict(intermediates=[]),
    }
    for code, kw in cases.items():
        verdict = _judge(pki, cert, None, "off", **kw)
        assert code in verdict.codes, (code, verdict.codes)
        assert any(f.rule == code and f.source.startswith("IETF RFC 5280") for f in verdict.findings)
    other = ForeignPKI()  # same names, other keys: the signature does not verify
    verdict = _judge(pki, other.issue(Spec.qwac()), None, "off")
    assert "bad-signature" in verdict.codes
    stranger = validate(cert, trusted_list=trusted_list_from_anchors([other.root], NOW), at=NOW, intermediates=[pki.ca],
                        revocation="off")
    assert "bad-signature" in stranger.codes or "issuer-not-trusted" in stranger.codes


def test_the_contract_callers_use_still_holds(pki: ForeignPKI) -> None:
    """The bank verifier and the 2-QWAC binding verifier call validate(cert, trusted_list=, at=, intermediates=,
    purpose=, fetcher=) and read .accepted / .reasons; findings and the JSON shape come on top."""
    verdict = validate(pki.issue(Spec.two_qwac()), trusted_list=trusted_list_from_anchors([pki.root], NOW), at=NOW,
                       intermediates=[pki.ca], purpose="2-qwac", fetcher=Fetcher(connect_to="127.0.0.1:9", timeout=2))
    assert not verdict.accepted and {r.code for r in verdict.reasons} == {"revocation-unknown"}
    data = verdict.as_dict()
    assert data["verdict"] == "reject" and data["certificate_type"] == "2-qwac"
    assert all(set(f) == {"rule", "source", "severity", "message"} for f in data["findings"])
    with pytest.raises(QTSPError):
        validate(pki.issue(Spec.qwac()), trusted_list=trusted_list_from_anchors([pki.root], NOW), at=NOW, revocation="sometimes")
