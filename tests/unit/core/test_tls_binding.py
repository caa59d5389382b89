"""The 2-QWAC TLS certificate binding's format (qtsp/core/tls_binding.py), against ETSI TS 119 411-5 V2.1.1 Annex B
and what Chromium's net/cert/two_qwac.cc parses: the compact form with an empty payload, the header's members,
the hashes of TS 119 182-1 5.2.8.1, the signature over ASCII(BASE64URL(header)) || ".".

The signature is checked by jwcrypto, a JOSE library qtsp does not sign with, and the hashes are recomputed here
from the DER with hashlib and base64 (the system test recomputes them from `openssl x509 -outform DER`)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from qtsp.core import oids, tls_binding
from qtsp.core.errors import QTSPError

NOW = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def _cert(key: Any, name: str, *, eku: x509.ObjectIdentifier | None = None) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
               .not_valid_after(NOW + dt.timedelta(days=90)))
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return builder.sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_ders() -> list[bytes]:
    from cryptography.hazmat.primitives.serialization import Encoding

    return [_cert(ec.generate_private_key(ec.SECP256R1()), f"site {i}").public_bytes(Encoding.DER) for i in range(2)]


def _binding(key: Any, tls_ders: list[bytes], *, alg: str | None = None, hash_m: str = "S256",
             change: Any = None) -> tuple[str, x509.Certificate]:
    signer = _cert(key, "2-QWAC", eku=oids.KP_TLS_BINDING)
    alg = alg or tls_binding.algorithm_for(key.public_key())
    header = tls_binding.build_header([signer], tls_ders, alg=alg, iat=NOW, exp=NOW + dt.timedelta(days=30),
                                      hash_m=hash_m)
    if change is None:
        return tls_binding.sign(header, key), signer
    change(header)  # then signed as before the change (a broken header, a good signature over it)
    header_b64 = tls_binding.encode_header(header)
    signature = tls_binding._raw_signature(alg, key, tls_binding.signing_input(header_b64))
    return f"{header_b64}..{tls_binding.b64url(signature)}", signer


def _jwcrypto_verifies(compact: str, signer: x509.Certificate, alg: str) -> None:
    from jwcrypto import jwk, jws

    token = jws.JWS()
    token.deserialize(compact)
    token.verify(jwk.JWK.from_pyca(signer.public_key()), alg=alg, detached_payload=b"")


KEYS = {
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "PS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


@pytest.mark.parametrize("alg", sorted(KEYS))
@pytest.mark.parametrize("hash_m", ["S256", "S384", "S512"])
def test_a_binding_round_trips_and_jwcrypto_verifies_it(alg: str, hash_m: str, tls_ders: list[bytes]) -> None:
    key = KEYS[alg]()
    compact, signer = _binding(key, tls_ders, alg=alg, hash_m=hash_m)
    header_b64, payload, signature_b64 = compact.split(".")
    assert payload == ""  # detached and empty: header..signature
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    assert set(header) == {"alg", "cty", "x5c", "iat", "exp", "sigD"}  # no crit (TS 119 411-5 Annex B)
    assert header["cty"] == "TLS-Certificate-Binding-v1" and header["alg"] == alg
    assert header["sigD"]["mId"] == "http://uri.etsi.org/19182/ObjectIdByURIHash"
    assert header["sigD"]["pars"] == ["", ""] and header["sigD"]["hashM"] == hash_m
    # x5c: standard base64 (not base64url) of the DER, leaf first.
    assert x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0], validate=True)) == signer
    # hashV: base64url(digest(base64url(DER))), no padding anywhere (TS 119 182-1 5.2.8.1).
    digest = {"S256": hashlib.sha256, "S384": hashlib.sha384, "S512": hashlib.sha512}[hash_m]
    want = [base64.urlsafe_b64encode(digest(base64.urlsafe_b64encode(der).rstrip(b"=")).digest()).rstrip(b"=").decode()
            for der in tls_ders]
    assert header["sigD"]["hashV"] == want
    assert "=" not in compact
    if alg == "ES256":
        assert len(base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))) == 64  # R || S
    _jwcrypto_verifies(compact, signer, alg)
    parsed = tls_binding.parse(compact)
    assert tls_binding.verify_signature(parsed) is None
    assert parsed.binds(tls_ders[0]) and parsed.binds(tls_ders[1]) and not parsed.binds(tls_ders[0] + b"\0")
    assert parsed.exp == NOW + dt.timedelta(days=30) and parsed.iat == NOW


def test_jwcrypto_and_we_refuse_a_signature_over_another_header(tls_ders: list[bytes]) -> None:
    from jwcrypto.jws import InvalidJWSSignature

    key = KEYS["ES256"]()
    compact, signer = _binding(key, tls_ders)
    other, _ = _binding(key, tls_ders[:1])
    forged = compact.split(".")[0] + ".." + other.split(".")[2]
    with pytest.raises(InvalidJWSSignature):
        _jwcrypto_verifies(forged, signer, "ES256")
    assert "does not verify" in (tls_binding.verify_signature(tls_binding.parse(forged)) or "")


def test_keys_browsers_cannot_verify_are_refused() -> None:
    with pytest.raises(QTSPError, match="P-256"):
        tls_binding.algorithm_for(ec.generate_private_key(ec.SECP384R1()).public_key())
    assert tls_binding.algorithm_for(KEYS["RS256"]().public_key(), rsa_pss=True) == "PS256"


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _with(change: Any) -> Any:
    def apply(header: dict[str, Any]) -> None:
        change(header)
    return apply


# Each row: how the header (or the compact form) is broken, and the reason code parse gives.
BROKEN = [
    ("alg none", lambda h: h.update(alg="none"), "header-alg"),
    ("alg HS256", lambda h: h.update(alg="HS256"), "header-alg"),
    ("alg ES384", lambda h: h.update(alg="ES384"), "header-alg"),
    ("no alg", lambda h: h.pop("alg"), "header-alg"),
    ("no cty", lambda h: h.pop("cty"), "header-cty"),
    ("wrong cty", lambda h: h.update(cty="TLS-Certificate-Binding-v2"), "header-cty"),
    ("no x5c", lambda h: h.pop("x5c"), "header-x5c"),
    ("x5c empty", lambda h: h.update(x5c=[]), "header-x5c"),
    ("x5c base64url", lambda h: h.update(x5c=[h["x5c"][0].replace("+", "-").replace("/", "_") + "-_"]), "header-x5c"),
    ("no sigD", lambda h: h.pop("sigD"), "header-sigd"),
    ("wrong mId", lambda h: h["sigD"].update(mId="http://uri.etsi.org/19182/HttpHeaders"), "header-sigd"),
    ("pars/hashV counts differ", lambda h: h["sigD"].update(pars=[""]), "header-sigd"),
    ("hashM S1", lambda h: h["sigD"].update(hashM="S1"), "header-sigd"),
    ("hashV padded", lambda h: h["sigD"].update(hashV=[v + "=" for v in h["sigD"]["hashV"]]), "header-sigd"),
    ("sigD extra member", lambda h: h["sigD"].update(extra=1), "header-sigd"),
    ("crit other than sigD", lambda h: h.update(crit=["sigD", "b64"]), "header-crit"),
    ("unknown member", lambda h: h.update(b64=False), "header-unknown-member"),
    ("x5u is not allowed", lambda h: h.update(x5u="https://example.com/c.pem"), "header-unknown-member"),
    ("x5t#S256 not a string", lambda h: h.__setitem__("x5t#S256", 1), "header-unknown-member"),
    ("cty not a string", lambda h: h.update(cty=1), "header-cty"),
    ("iat not an integer", lambda h: h.update(iat=1.5), "header-iat"),
    ("exp a string", lambda h: h.update(exp="2030"), "header-exp"),
]


@pytest.mark.parametrize(("what", "change", "code"), BROKEN, ids=[row[0] for row in BROKEN])
def test_broken_headers_are_refused_naming_the_check(what: str, change: Any, code: str, tls_ders: list[bytes]) -> None:
    compact, _ = _binding(KEYS["ES256"](), tls_ders, change=_with(change))
    with pytest.raises(tls_binding.BindingProblem) as refused:
        tls_binding.parse(compact)
    assert refused.value.code == code, (what, refused.value.message)


def test_what_chromium_tolerates_we_tolerate(tls_ders: list[bytes]) -> None:
    """crit exactly ["sigD"] (TS 119 182-1 5.1.9), kid, x5t#S256, ctys, a fractional exp."""
    def change(h: dict[str, Any]) -> None:
        h.update(crit=["sigD"], kid="k1", exp=h["exp"] + 0.5)
        h["x5t#S256"] = "abc"
        h["sigD"]["ctys"] = ["", ""]

    key = KEYS["ES256"]()
    compact, _ = _binding(key, tls_ders, change=change)
    assert tls_binding.verify_signature(tls_binding.parse(compact)) is None


@pytest.mark.parametrize(("compact", "code"), [
    ("a.b", "malformed"),
    ("a.b.c.d", "malformed"),
    (f"{_b64({'alg': 'ES256'})}.{_b64(b'payload')}.AAAA", "payload-not-detached"),
    ("eyJ!.." + "AAAA", "malformed"),
    (f"{_b64(b'[1, 2]')}..AAAA", "header-json"),
    (f"{_b64(b'not json')}..AAAA", "header-json"),
    ("x" * (tls_binding.MAX_BINDING_BYTES + 1), "malformed"),
])
def test_what_is_not_a_compact_binding_is_refused(compact: str, code: str) -> None:
    with pytest.raises(tls_binding.BindingProblem) as refused:
        tls_binding.parse(compact)
    assert refused.value.code == code


def test_a_der_ecdsa_signature_or_an_alg_that_does_not_fit_the_key_fails(tls_ders: list[bytes]) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    key = KEYS["ES256"]()
    compact, _ = _binding(key, tls_ders)
    header_b64, _, sig_b64 = compact.split(".")
    raw = tls_binding.b64url_decode(sig_b64)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert "64 bytes" in (tls_binding.verify_signature(tls_binding.parse(f"{header_b64}..{tls_binding.b64url(der)}"))
                          or "")
    rs, _ = _binding(key, tls_ders, change=lambda h: h.update(alg="RS256"))  # says RS256, an ES256 signature
    assert "not RSA" in (tls_binding.verify_signature(tls_binding.parse(rs)) or "")
    with pytest.raises(QTSPError, match="does not fit"):
        _binding(key, tls_ders, alg="RS256")


def test_build_header_refuses_what_no_binding_can_be() -> None:
    key = KEYS["ES256"]()
    signer = _cert(key, "2-QWAC", eku=oids.KP_TLS_BINDING)
    for kwargs, fragment in (({"alg": "none"}, "alg"), ({"alg": "ES256", "hash_m": "S1"}, "hashM")):
        with pytest.raises(QTSPError, match=fragment):
            tls_binding.build_header([signer], [b"x"], iat=NOW, exp=NOW + dt.timedelta(days=1), **kwargs)
    with pytest.raises(QTSPError, match="named twice"):
        tls_binding.build_header([signer], [b"x", b"x"], alg="ES256", iat=NOW, exp=NOW + dt.timedelta(days=1))
    with pytest.raises(QTSPError, match="expire after"):
        tls_binding.build_header([signer], [b"x"], alg="ES256", iat=NOW, exp=NOW)
