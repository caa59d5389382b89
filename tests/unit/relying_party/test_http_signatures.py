"""The request-signature library's own behaviour: every scheme with every algorithm it names, each defect
of the negative catalogue seen by the scheme's verifier, hostile header values (never anything but a
``SignatureProblem``), the structured-field parser, and the package's purity like the rest of the relying
party. Independent libraries judge the same code in test_http_signatures_independent.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from qtsp.relying_party import http_signatures
from qtsp.relying_party.http_signatures import (ALGORITHMS, REQUIRED, SCHEMES, Request, SealKey, SignatureProblem,
                                                detect, key_id, sign, verify)
from qtsp.relying_party.http_signatures.common import key_id_names
from qtsp.relying_party.http_signatures.sfv import SFVError, parse_dictionary, serialize_inner_list
from qtsp.relying_party.http_signatures.tamper import signed

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
PACKAGE = Path(http_signatures.__file__).parent
# The algorithms each scheme has a name for (draft-cavage-10 registry; RFC 9421 6.2.2; RFC 7518 3.1).
SUPPORTED = {"berlin-group": ("RS256", "RS512", "ES256"), "rfc9421": ("RS256", "PS512", "ES256", "ES384"),
             "jades": ("RS256", "RS512", "PS256", "PS512", "ES256", "ES384")}


def _cert(key: Any) -> x509.Certificate:
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Seal, \"CA\" + Co"),
                        x509.NameAttribute(NameOID.COMMON_NAME, "QSealC CA 1")])
    return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TPP")]))
            .issuer_name(issuer).public_key(key.public_key()).serial_number(0x00C0FFEE12345678)
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))


KEYS: dict[str, Any] = {"rsa": rsa.generate_private_key(65537, 2048), "p256": ec.generate_private_key(ec.SECP256R1()),
                        "p384": ec.generate_private_key(ec.SECP384R1())}
FOR_ALG = {"RS256": "rsa", "RS512": "rsa", "PS256": "rsa", "PS512": "rsa", "ES256": "p256", "ES384": "p384"}
CERTS = {name: _cert(key) for name, key in KEYS.items()}


def _key(alg: str) -> SealKey:
    return SealKey.from_private_key(KEYS[FOR_ALG[alg]], CERTS[FOR_ALG[alg]], alg)


def _request(body: bytes = b'{"a": 1}') -> Request:
    return Request("POST", "/v1/payments/sepa-credit-transfers?x=%2F1", "bank.example:8443",
                   [("Content-Type", "application/json"), ("PSU-ID", "PSU 1")], body)


@pytest.mark.parametrize(("scheme", "alg"), [(s, a) for s in SCHEMES for a in SUPPORTED[s]])
def test_every_scheme_with_every_algorithm_it_names(scheme: str, alg: str) -> None:
    request = sign(_request(), _key(alg), scheme, now=NOW)
    assert detect(request) == scheme
    verified = verify(request, allowed=ALGORITHMS)
    assert verified.algorithm == alg and verified.signed_at == NOW and verified.body_covered
    assert set(REQUIRED[scheme]) <= set(verified.covered)
    assert verified.certificate == CERTS[FOR_ALG[alg]]
    with pytest.raises(SignatureProblem) as caught:  # the allow-list is the caller's
        verify(request, allowed=[a for a in ALGORITHMS if a != alg])
    assert caught.value.code == "SIGNATURE_INVALID"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_scheme_refuses_an_algorithm_it_has_no_name_for(scheme: str) -> None:
    missing = [a for a in ALGORITHMS if a not in SUPPORTED[scheme]]
    for alg in missing:
        with pytest.raises(SignatureProblem):
            sign(_request(), _key(alg), scheme, now=NOW)


EXPECTED = {"digest-mismatch": "SIGNATURE_INVALID", "other-key": "SIGNATURE_INVALID",
            "unsupported-algorithm": "SIGNATURE_INVALID", "unsigned": "SIGNATURE_MISSING",
            "no-certificate": "CERTIFICATE_MISSING"}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("tamper", ["digest-mismatch", "other-key", "unsupported-algorithm", "unsigned",
                                    "no-certificate", "header-not-signed", "clock-skew", "replay"])
def test_each_defect_as_the_scheme_sees_it(scheme: str, tamper: str) -> None:
    sent = signed(_request(), _key("ES256"), scheme, now=NOW, tamper=tamper)
    if tamper in ("header-not-signed", "clock-skew", "replay"):
        # The signature itself verifies: it is the bank's policy that refuses these (test_bank_verifier.py).
        verified = [verify(r, allowed=ALGORITHMS) for r in sent]
        if tamper == "header-not-signed":
            assert "x-request-id" not in verified[0].covered
        elif tamper == "clock-skew":
            assert NOW - verified[0].signed_at >= dt.timedelta(minutes=15)  # type: ignore[operator]
        else:
            assert len(sent) == 2 and sent[0].headers == sent[1].headers
        return
    if tamper == "no-certificate" and scheme == "jades":
        assert verify(sent[0], allowed=ALGORITHMS).certificate == CERTS["p256"]  # x5c carries it
        return
    with pytest.raises(SignatureProblem) as caught:
        verify(sent[0], allowed=ALGORITHMS)
    assert caught.value.code == EXPECTED[tamper], caught.value.text


def test_key_id_is_the_berlin_group_form() -> None:
    cert = CERTS["rsa"]
    value = key_id(cert)
    assert value.startswith("SN=C0FFEE12345678,CA=")
    assert key_id_names(value, cert)
    assert key_id_names(value.replace("SN=C0FFEE", "SN=00c0ffee"), cert)
    assert not key_id_names(value.replace("SN=C0FFEE", "SN=C0FFEF"), cert)
    assert not key_id_names("SN=C0FFEE12345678,CA=CN=Someone else", cert)
    assert not key_id_names("garbage", cert)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_signed_header_changed_in_transit(scheme: str) -> None:
    request = sign(_request(), _key("RS256"), scheme, now=NOW)
    assert "psu-id" in verify(request, allowed=ALGORITHMS).covered  # signed when present (NextGenPSD2 IG 12.2)
    request.set("PSU-ID", "PSU 2")
    with pytest.raises(SignatureProblem) as caught:
        verify(request, allowed=ALGORITHMS)
    assert caught.value.code == "SIGNATURE_INVALID"


HEADER_NAMES = st.sampled_from(["Signature", "Signature-Input", "x-jws-signature", "TPP-Signature-Certificate",
                                "Digest", "Content-Digest", "Date", "X-Request-ID"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(HEADER_NAMES, st.text(max_size=300)), max_size=6), st.sampled_from(SCHEMES))
def test_hostile_headers_give_a_verdict_never_a_crash(fields: list[tuple[str, str]], scheme: str) -> None:
    base = sign(_request(), _key("ES256"), scheme, now=NOW)
    for name, value in fields:
        base.set(name, value)
    try:
        verify(base, allowed=ALGORITHMS)
    except SignatureProblem as exc:
        assert exc.code in ("SIGNATURE_MISSING", "SIGNATURE_INVALID", "CERTIFICATE_MISSING", "CERTIFICATE_INVALID",
                            "FORMAT_ERROR")


def test_jades_header_parameters_are_checked() -> None:
    import base64

    request = sign(_request(), _key("ES256"), "jades", now=NOW)
    protected, _, signature = (request.get("x-jws-signature") or "").split(".")
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    for change in ({"b64": True}, {"crit": ["sigT", "sigD", "b64", "exp"]}, {"crit": ["sigT"]},
                   {"sigD": {"mId": "http://uri.etsi.org/19182/ObjectIdByURI", "pars": ["digest"]}},
                   {"x5t#S256": "AAAA"}):
        bad = dict(header, **change)
        encoded = base64.urlsafe_b64encode(json.dumps(bad).encode()).rstrip(b"=").decode()
        request.set("x-jws-signature", f"{encoded}..{signature}")
        with pytest.raises(SignatureProblem) as caught:
            verify(request, allowed=ALGORITHMS)
        assert caught.value.code == "SIGNATURE_INVALID", change
    request.set("x-jws-signature", f"{protected}.eyJ9.{signature}")  # attached payload: not this profile
    with pytest.raises(SignatureProblem):
        verify(request, allowed=ALGORITHMS)


def test_structured_fields() -> None:
    parsed = parse_dictionary('sig1=("@method" "content-digest");created=1618884473;keyid="test-key-rsa-pss", '
                              "sig2=:dGVzdA==:;x=?1, flag")
    assert serialize_inner_list(parsed["sig1"]) == '("@method" "content-digest");created=1618884473;keyid="test-key-rsa-pss"'  # type: ignore[arg-type]
    assert parsed["sig2"].value == b"test" and parsed["flag"].value is True  # type: ignore[union-attr]
    for bad in ('a=("x"', 'a="unterminated', "a=:bm90IGI2NA", "A=1", "a=1,", 'a="\\x"', "a=(1 2)x"):
        with pytest.raises(SFVError):
            parse_dictionary(bad)


@given(st.lists(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20), max_size=5),
       st.integers(min_value=0, max_value=10**12))
def test_structured_fields_round_trip(components: list[str], created: int) -> None:
    from qtsp.relying_party.http_signatures.sfv import InnerList, Item

    inner = InnerList([Item(c) for c in components], {"created": created, "keyid": "SN=1,CA=CN=x"})
    text = serialize_inner_list(inner)
    assert serialize_inner_list(parse_dictionary(f"tpp={text}")["tpp"]) == text  # type: ignore[arg-type]


def test_the_package_is_as_pure_as_the_relying_party() -> None:
    """The rules tests/unit/relying_party/test_purity.py applies to the package's top level, applied here."""
    import ast

    from unit.relying_party.test_purity import ALLOWED_TOP

    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        for call in ("datetime.now(", "utcnow(", "time.time(", "date.today("):
            assert call not in text, f"{path.name} reads the clock"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert node.module.split(".")[0] in ALLOWED_TOP, f"{path.name} imports {node.module}"
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 1 or (node.level == 3 and (node.module or "").startswith("core")), \
                    f"{path.name} imports {'.' * node.level}{node.module}"
            elif isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in ALLOWED_TOP for a in node.names), path.name
