"""The three request-signature schemes against libraries no one here wrote, both ways:

* RFC 9421: ``http-message-signatures`` (PyPI, pyauth) verifies what we sign, and signs what we verify;
* draft-cavage (Berlin Group): ``httpsig`` (PyPI, 1.3.0, pycryptodome underneath; RSA only, so RSA keys);
* JAdES detached JWS with b64=false: ``jwcrypto`` (the runtime signs JOSE with joserfc, never jwcrypto).

The system counterpart (over mutual TLS, through the demo bank) is tests/system/relying_party/test_bank.py.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from qtsp.relying_party.http_signatures import ALGORITHMS, Request, SealKey, SignatureProblem, key_id, sign, verify
from qtsp.relying_party.http_signatures.common import certificate_header, digest_header

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
URL = "https://bank.example:8443/v1/payments/sepa-credit-transfers?x=1"
BODY = json.dumps({"instructedAmount": {"currency": "EUR", "amount": "12.50"}}).encode()


def _seal(kind: str) -> tuple[Any, x509.Certificate]:
    key: Any = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"), x509.NameAttribute(NameOID.COMMON_NAME, "Seal CA, test")])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TPP seal")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(0x0A9FA1).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return key, cert


@pytest.fixture(scope="module", params=["rsa", "ec"])
def seal(request: pytest.FixtureRequest) -> tuple[Any, x509.Certificate]:
    return _seal(request.param)


@pytest.fixture(scope="module")
def rsa_seal() -> tuple[Any, x509.Certificate]:
    return _seal("rsa")


def _ours() -> Request:
    return Request("POST", "/v1/payments/sepa-credit-transfers?x=1", "bank.example:8443",
                   [("Content-Type", "application/json"), ("PSU-ID", "PSU-1234")], BODY)


def _prepared(request: Request) -> requests.PreparedRequest:
    return requests.Request(request.method, request.target_uri, headers=dict(request.headers), data=request.body).prepare()


def _from_prepared(prepared: requests.PreparedRequest) -> Request:
    body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    return Request(prepared.method or "GET", prepared.path_url, "bank.example:8443", list(prepared.headers.items()), body)


# --- RFC 9421: http-message-signatures ------------------------------------------------------------


def _hms(cert: x509.Certificate) -> Any:
    import http_message_signatures as hms

    return hms, (hms.algorithms.RSA_V1_5_SHA256 if isinstance(cert.public_key(), rsa.RSAPublicKey)
                 else hms.algorithms.ECDSA_P256_SHA256)


def test_rfc9421_ours_verified_by_http_message_signatures(seal: tuple[Any, x509.Certificate]) -> None:
    key, cert = seal
    request = sign(_ours(), SealKey.from_private_key(key, cert), "rfc9421", now=dt.datetime.now(dt.timezone.utc))
    hms, algorithm = _hms(cert)
    resolver = hms.resolvers.MappingKeyResolver(public_keys={key_id(cert): cert.public_key()}, private_keys={})
    verifier = hms.HTTPMessageVerifier(signature_algorithm=algorithm, key_resolver=resolver)
    results = verifier.verify(_prepared(request), require_components=("@method", "@target-uri", "content-digest",
                                                                     "x-request-id"), body=BODY)
    assert len(results) == 1 and results[0].body == BODY
    # The library is a judge that can say no: the body changed, its digest check fails.
    with pytest.raises(hms.InvalidSignature):
        verifier.verify(_prepared(request), body=BODY + b" ")


def test_rfc9421_signed_by_http_message_signatures_verified_by_ours(seal: tuple[Any, x509.Certificate]) -> None:
    key, cert = seal
    hms, algorithm = _hms(cert)
    resolver = hms.resolvers.MappingKeyResolver(public_keys={}, private_keys={key_id(cert): key})
    signer = hms.HTTPMessageSigner(signature_algorithm=algorithm, key_resolver=resolver)
    prepared = requests.Request("POST", URL, data=BODY, headers={
        "Content-Type": "application/json", "X-Request-ID": "99391c7e-ad88-49ec-a2ad-99ddcb1f7721",
        "TPP-Signature-Certificate": certificate_header(cert)}).prepare()
    signer.sign(prepared, key_id=key_id(cert), label="tpp", body=BODY,
                covered_component_ids=("@method", "@target-uri", "content-digest", "x-request-id"))
    verified = verify(_from_prepared(prepared), allowed=ALGORITHMS)
    assert verified.scheme == "rfc9421" and verified.body_covered
    assert verified.covered == ["@method", "@target-uri", "content-digest", "x-request-id"]
    tampered = _from_prepared(prepared)
    tampered.set("X-Request-ID", "99391c7e-ad88-49ec-a2ad-99ddcb1f7722")
    with pytest.raises(SignatureProblem) as caught:
        verify(tampered, allowed=ALGORITHMS)
    assert caught.value.code == "SIGNATURE_INVALID"


# --- draft-cavage (Berlin Group): httpsig ---------------------------------------------------------


def _pem(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def test_cavage_ours_verified_by_httpsig(rsa_seal: tuple[Any, x509.Certificate]) -> None:
    from httpsig.verify import HeaderVerifier

    key, cert = rsa_seal
    request = sign(_ours(), SealKey.from_private_key(key, cert), "berlin-group", now=NOW)
    public = cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    headers = dict(request.headers)
    verifier = HeaderVerifier(headers, public, required_headers=["digest", "x-request-id", "date"], method="POST",
                              path=request.target, sign_header="signature")
    assert verifier.verify() is True
    assert 'keyId="SN=A9FA1,CA=CN=Seal%20CA%5C,%20test,C=BE"' in request.get("signature")  # type: ignore[operator]
    headers["X-Request-ID"] = "another"
    assert HeaderVerifier(headers, public, method="POST", path=request.target, sign_header="signature").verify() is False


def test_cavage_signed_by_httpsig_verified_by_ours(rsa_seal: tuple[Any, x509.Certificate]) -> None:
    from httpsig.sign import HeaderSigner

    key, cert = rsa_seal
    target = "/v1/payments/sepa-credit-transfers?x=1"
    headers = {"Content-Type": "application/json", "X-Request-ID": "99391c7e-ad88-49ec-a2ad-99ddcb1f7721",
               "Date": NOW.strftime("%a, %d %b %Y %H:%M:%S GMT"), "Digest": digest_header(BODY),
               "TPP-Signature-Certificate": certificate_header(cert)}
    # httpsig builds its header with "template % signature": a keyId's percent-encoding must be doubled for it.
    signer = HeaderSigner(key_id(cert).replace("%", "%%"), _pem(key), algorithm="rsa-sha256", sign_header="signature",
                          headers=["(request-target)", "digest", "x-request-id", "date", "tpp-signature-certificate"])
    signed = signer.sign(headers, method="POST", path=target)
    request = Request("POST", target, "bank.example:8443", list(signed.items()), BODY)
    verified = verify(request, allowed=ALGORITHMS)
    assert verified.scheme == "berlin-group" and verified.algorithm == "RS256" and verified.body_covered
    request.body = BODY + b"x"
    with pytest.raises(SignatureProblem) as caught:
        verify(request, allowed=ALGORITHMS)
    assert caught.value.code == "SIGNATURE_INVALID"


# --- JAdES: jwcrypto ------------------------------------------------------------------------------


def _jwcrypto_registry() -> dict[str, Any]:
    from jwcrypto.common import JWSEHeaderParameter

    return {"sigT": JWSEHeaderParameter("Claimed signing time (JAdES)", True, True, None),
            "sigD": JWSEHeaderParameter("Signed data descriptor (JAdES)", True, True, None)}


def _payload(request: Request, pars: list[str]) -> bytes:
    lines = []
    for name in pars:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {request.target}")
        else:
            lines.append(f"{name}: {request.get(name)}")
    return "\n".join(lines).encode()


def test_jades_ours_verified_by_jwcrypto(seal: tuple[Any, x509.Certificate]) -> None:
    from jwcrypto import jwk, jws

    key, cert = seal
    request = sign(_ours(), SealKey.from_private_key(key, cert), "jades", now=NOW)
    value = request.get("x-jws-signature")
    assert value is not None
    token = jws.JWS(header_registry=_jwcrypto_registry())
    token.deserialize(value)
    header = token.jose_header
    assert header["b64"] is False and header["sigD"]["mId"] == "http://uri.etsi.org/19182/HttpHeaders"
    public = jwk.JWK.from_pyca(cert.public_key())
    token.verify(public, detached_payload=_payload(request, header["sigD"]["pars"]))
    tampered = jws.JWS(header_registry=_jwcrypto_registry())
    tampered.deserialize(value)
    with pytest.raises(jws.InvalidJWSSignature):
        tampered.verify(public, detached_payload=_payload(request, header["sigD"]["pars"]) + b"x")


def test_jades_signed_by_jwcrypto_verified_by_ours(seal: tuple[Any, x509.Certificate]) -> None:
    import base64

    from jwcrypto import jwk, jws

    key, cert = seal
    request = _ours()
    request.set("X-Request-ID", "99391c7e-ad88-49ec-a2ad-99ddcb1f7721")
    request.set("Date", NOW.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    request.set("Digest", digest_header(BODY))
    pars = ["(request-target)", "digest", "x-request-id", "date", "psu-id"]
    alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    protected = {"alg": alg, "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
                 "sigT": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "b64": False, "crit": ["sigT", "sigD", "b64"],
                 "sigD": {"mId": "http://uri.etsi.org/19182/HttpHeaders", "pars": pars}}
    token = jws.JWS(_payload(request, pars), header_registry=_jwcrypto_registry())
    token.add_signature(jwk.JWK.from_pyca(key), alg, protected=json.dumps(protected))
    compact = token.serialize(compact=True)
    head, _payload_part, signature = compact.split(".")
    request.set("x-jws-signature", f"{head}..{signature}")
    verified = verify(request, allowed=ALGORITHMS)
    assert verified.scheme == "jades" and verified.covered == pars and verified.signed_at == NOW
    request.set("PSU-ID", "someone else")
    with pytest.raises(SignatureProblem) as caught:
        verify(request, allowed=ALGORITHMS)
    assert caught.value.code == "SIGNATURE_INVALID"
