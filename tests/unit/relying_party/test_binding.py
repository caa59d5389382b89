"""The browser-like verifier of 2-QWAC TLS certificate bindings (qtsp/relying_party/binding.py) on a copy of the
sandbox: a 2-QWAC issued through the REST API (kind two-qwac, the same issuance service as the CLI), its binding
signed as ``qtsp binding sign`` signs, and the verdicts on the good binding and on each way of breaking it. OCSP
and CRLs are the sandbox's own responder, reached in process through the app (``AppFetcher``: Flask's test
client in place of the socket). The system counterpart, over real sockets with the demo site, openssl and
pkilint: tests/system/relying_party/test_binding_site.py."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from qtsp import relying_party
from qtsp.core import oids, tls_binding
from qtsp.core.errors import QTSPError
from qtsp.core.trusted_list import FOR_WEB
from qtsp.relying_party.binding import _binding_link, verify_binding
from qtsp.services import bindings, revocation, trusted_list
from support.api import PREFIX, Api, assert_problem, csr_pem, new_key


class AppFetcher(relying_party.Fetcher):
    """The relying party's HTTP client, answered by the sandbox's app in process (its OCSP and CRL routes)."""

    def __init__(self, api: Api) -> None:
        super().__init__()
        self.client = api.client

    def fetch(self, url: str, *, body: bytes | None = None, content_type: str | None = None, limit: int) -> bytes:
        path = urlsplit(url).path
        response = (self.client.post(path, data=body, content_type=content_type) if body is not None
                    else self.client.get(path))
        if response.status_code != 200:
            raise QTSPError(relying_party.validator.Kind.NOT_FOUND, f"{url}: HTTP {response.status_code}")
        data: bytes = response.get_data()
        assert len(data) <= limit
        return data


def _tls_cert(name: str = "localhost") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=60)).sign(key, hashes.SHA256()))


@pytest.fixture
def two_qwac(api: Api) -> tuple[bindings.Signer2Qwac, dict[str, Any]]:
    key = new_key("ecdsa-p256")
    body, _ = api.issue(key, kind="two-qwac", domains=["www.example-fintech.eu"])
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    chain = [x509.load_pem_x509_certificate(pem.encode()) for pem in body["chain"]]
    return bindings.Signer2Qwac(cert, chain[:1], key), body


def _verdict(api: Api, jws: str, tls: x509.Certificate, *, at: dt.datetime | None = None) -> Any:
    root = x509.load_der_x509_certificate(api.client.get("/ca/root.der").get_data())
    at = at or dt.datetime.now(dt.timezone.utc)
    anchors = relying_party.trusted_list_from_anchors([root], at)
    return verify_binding(jws, tls, trusted_list=anchors, at=at, fetcher=AppFetcher(api))


def test_the_api_issues_a_2qwac_from_its_own_ca_listed_for_web(api: Api, two_qwac: Any) -> None:
    signer, body = two_qwac
    assert body["issuer"] == "two-qwac-ca"
    ekus = list(signer.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == [oids.KP_TLS_BINDING]
    policies = [p.policy_identifier for p in signer.cert.extensions.get_extension_for_class(x509.CertificatePolicies).value]
    assert policies == [oids.QNCP_W_GEN]
    # The CA is a CA/QC service of the sandbox Trusted List, qualified for website authentication.
    tl = relying_party.parse_and_verify_trusted_list(api.client.get("/tl.xml").get_data(),
                                                     [trusted_list.signer_certificate(api.sandbox)],
                                                     dt.datetime.now(dt.timezone.utc))
    listed = [s for s in tl.services if s.certificate == signer.chain[0]]
    assert len(listed) == 1 and FOR_WEB in listed[0].additional_info
    # Its CA certificate, CRL and OCSP answer are published like the other CAs'.
    assert x509.load_der_x509_certificate(api.client.get("/ca/two-qwac-ca.der").get_data()) == signer.chain[0]
    crl = x509.load_der_x509_crl(api.client.get("/crl/two-qwac-ca.crl").get_data())
    assert crl.is_signature_valid(signer.chain[0].public_key())  # type: ignore[arg-type]
    assert api.ocsp_status(signer.cert, signer.chain[0]).certificate_status.name == "GOOD"
    # The same list filter finds it by kind.
    listing = api.client.get(f"{PREFIX}/certificates?kind=two-qwac", headers=api.headers("auditor")).get_json()
    assert [c["serial"] for c in listing["certificates"]] == [body["serial"]]


def test_a_2qwac_key_browsers_cannot_verify_is_refused_and_nothing_is_issued(api: Api) -> None:
    body = {"kind": "two-qwac", "org_id": "PSDBE-NBB-0123456789", "csr": csr_pem(new_key("ecdsa-p384")),
            "domains": ["www.example-fintech.eu"]}
    problem = assert_problem(api.client.post(f"{PREFIX}/certificates", json=body, headers=api.headers("operator")), 422)
    assert "P-256 or RSA" in problem["detail"]
    body.update(csr=csr_pem(new_key()), purpose="server")
    problem = assert_problem(api.client.post(f"{PREFIX}/certificates", json=body, headers=api.headers("operator")), 400)
    assert "2-QWAC" in problem["detail"]
    listing = api.client.get(f"{PREFIX}/certificates?kind=two-qwac", headers=api.headers("auditor")).get_json()
    assert listing["total"] == 0


def test_the_good_binding_is_accepted(api: Api, two_qwac: Any) -> None:
    signer, _ = two_qwac
    tls, other = _tls_cert(), _tls_cert("other")
    jws = bindings.sign_binding(signer, [tls, other], now=dt.datetime.now(dt.timezone.utc), valid_days=30)
    for presented in (tls, other):
        verdict = _verdict(api, jws, presented)
        assert verdict.accepted, verdict.as_dict()["findings"]
        assert verdict.signer["validation"]["verdict"] == "accept"
        assert [r["status"] for r in verdict.signer["validation"]["revocation"]] == ["good", "good"]


def _resigned(signer: bindings.Signer2Qwac, tls: x509.Certificate, change: Any, *, key: Any = None,
              iat: dt.datetime | None = None, chain: list[x509.Certificate] | None = None) -> str:
    """A binding built as sign_binding builds one, then changed, then signed (by ``key``, the 2-QWAC's by default)."""
    iat = (iat or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    header = tls_binding.build_header(chain or [signer.cert, *signer.chain], [tls.public_bytes(Encoding.DER)],
                                      alg="ES256", iat=iat, exp=iat + dt.timedelta(days=30))
    change(header)
    header_b64 = tls_binding.encode_header(header)
    signature = tls_binding._raw_signature("ES256", key or signer.key, tls_binding.signing_input(header_b64))
    return f"{header_b64}..{tls_binding.b64url(signature)}"


@pytest.mark.parametrize(("what", "change", "code"), [
    ("alg none", lambda h: h.update(alg="none"), "header-alg"),
    ("no cty", lambda h: h.pop("cty"), "header-cty"),
    ("wrong cty", lambda h: h.update(cty="TLS-Certificate-Binding-v2"), "header-cty"),
    ("no x5c", lambda h: h.pop("x5c"), "header-x5c"),
    ("a hash of another certificate", lambda h: h["sigD"].update(hashV=[tls_binding.bound_hash(b"another")]),
     "tls-cert-not-bound"),
])
def test_each_broken_binding_is_refused_with_its_reason(api: Api, two_qwac: Any, what: str, change: Any,
                                                        code: str) -> None:
    signer, _ = two_qwac
    tls = _tls_cert()
    verdict = _verdict(api, _resigned(signer, tls, change), tls)
    assert not verdict.accepted and verdict.codes == [code], (what, verdict.as_dict()["findings"])


def test_an_expired_binding_and_a_forged_signature_are_refused(api: Api, two_qwac: Any) -> None:
    signer, _ = two_qwac
    tls = _tls_cert()
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)
    verdict = _verdict(api, _resigned(signer, tls, lambda h: None, iat=old), tls)
    assert verdict.codes == ["binding-expired"]
    forged = _resigned(signer, tls, lambda h: None, key=ec.generate_private_key(ec.SECP256R1()))
    assert _verdict(api, forged, tls).codes == ["bad-signature"]


def test_a_binding_signed_by_a_1qwac_is_refused_for_its_eku(api: Api) -> None:
    key = new_key("ecdsa-p256")
    body, _ = api.issue(key)  # a 1-QWAC: serverAuth + clientAuth
    qwac = bindings.Signer2Qwac(x509.load_pem_x509_certificate(body["certificate"].encode()),
                                [x509.load_pem_x509_certificate(body["chain"][0].encode())], key)
    with pytest.raises(QTSPError, match="not a 2-QWAC"):  # qtsp binding sign refuses to make one
        bindings.sign_binding(qwac, [_tls_cert()], now=dt.datetime.now(dt.timezone.utc))
    tls = _tls_cert()
    verdict = _verdict(api, _resigned(qwac, tls, lambda h: None), tls)
    assert "eku-tls-binding-missing" in verdict.codes, verdict.codes  # and, from the stricter validator, its policy and type


def test_a_revoked_2qwac_makes_its_binding_refused(api: Api, two_qwac: Any) -> None:
    signer, body = two_qwac
    tls = _tls_cert()
    jws = bindings.sign_binding(signer, [tls], now=dt.datetime.now(dt.timezone.utc))
    assert _verdict(api, jws, tls).accepted
    revocation.revoke(api.sandbox, body["serial"], "key-compromise", issuer_id="two-qwac-ca")
    verdict = _verdict(api, jws, tls)
    assert verdict.codes == ["revoked"]
    assert "ETSI TS 119 411-5" in verdict.findings[0].source


@pytest.mark.parametrize(("headers", "found"), [
    ([("Link", '</b.jws>; rel="tls-certificate-binding"')], "/b.jws"),
    ([("link", '<https://x/a>; rel="preload", </b.jws>; rel="other tls-certificate-binding"')], "/b.jws"),
    ([("Link", '</b.jws>; rel=tls-certificate-binding')], "/b.jws"),
    ([("Link", '</b.jws>; rel="preload"')], None),
    ([("Content-Type", "text/html")], None),
])
def test_the_link_header_is_read_as_rfc_8288_says(headers: list[tuple[str, str]], found: str | None) -> None:
    assert _binding_link(headers) == found
