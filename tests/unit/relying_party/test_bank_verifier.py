"""``SignatureVerifier`` in process: a WSGI environ as a TLS server hands it, the sandbox's certificates,
and revocation answered by the sandbox's own OCSP/CRL views (Flask's test client, no socket). What the
system test over mutual TLS (tests/system/relying_party/test_bank.py) cannot see from outside: the
verdict cache and its expiry, the replay cache's bound, the size limits, the key custodians as signers.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from qtsp.core.errors import Kind, QTSPError
from qtsp.relying_party import Fetcher, trusted_list_from_anchors
from qtsp.relying_party.bank_verifier import SignatureVerifier, Trust
from qtsp.relying_party.demo_bank import ROLES, app as demo_app
from qtsp.relying_party.http_signatures import Request, SealKey, sign
from qtsp.services.context import Sandbox
from qtsp.services.issuance import IssueRequest, issue

from support import SAMPLE_ORG


class AppFetcher(Fetcher):
    """Revocation answered by the sandbox's web views in process; counts what it was asked."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.asked: list[str] = []
        self.answers: list[tuple[str | None, bytes]] = []

    def fetch(self, url: str, *, body: bytes | None = None, content_type: str | None = None, limit: int) -> bytes:
        self.asked.append(url)
        path = urlsplit(url).path
        answer = (self.client.post(path, data=body, content_type=content_type) if body is not None
                  else self.client.get(path))
        if answer.status_code != 200:
            raise QTSPError(Kind.NOT_FOUND, f"{url}: HTTP {answer.status_code}")
        self.answers.append((content_type, bytes(answer.data)))
        return bytes(answer.data[:limit + 1])


class Bank:
    def __init__(self, sandbox: Sandbox, data_dir: Path) -> None:
        from qtsp.web import create_app

        self.qwac = issue(sandbox, IssueRequest("qwac", SAMPLE_ORG, domains=("tpp.example.be",), generate_key="ecdsa-p256"))
        self.seal = issue(sandbox, IssueRequest("qsealc", SAMPLE_ORG, generate_key="ecdsa-p256"))
        now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)  # the certificates' notBefore is behind
        self.fetcher = AppFetcher(create_app({"data_dir": data_dir}).test_client())
        root = x509.load_pem_x509_certificate((data_dir / "ca" / "root.pem").read_bytes())
        self.trust = Trust(trusted_list_from_anchors([root], now), [*self.qwac.chain[:1], *self.seal.chain[:1]],
                           self.fetcher)
        self.now = now
        self.key = SealKey.from_private_key(self.seal.private_key, self.seal.certificate)

    def verifier(self, **kwargs: Any) -> SignatureVerifier:
        return SignatureVerifier(demo_app, trust=self.trust, roles=ROLES, clock=lambda: self.now, **kwargs)

    def environ(self, request: Request, *, peer: x509.Certificate | None = None) -> dict[str, Any]:
        env: dict[str, Any] = {"REQUEST_METHOD": request.method, "REQUEST_URI": request.target,
                               "PATH_INFO": request.target.split("?")[0], "HTTP_HOST": request.authority,
                               "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(request.body),
                               "CONTENT_LENGTH": str(len(request.body))}
        for name, value in request.headers:
            key = name.upper().replace("-", "_")
            env[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
        cert = self.qwac.certificate if peer is None else peer
        env["qtsp.peer_certificate"] = cert.public_bytes(serialization.Encoding.DER)
        return env

    def signed(self, method: str = "GET", path: str = "/v1/accounts", body: bytes = b"", scheme: str = "rfc9421",
               key: SealKey | None = None) -> Request:
        request = Request(method, path, "bank.example:443", [("Content-Type", "application/json")] if body else [], body)
        return sign(request, key or self.key, scheme, now=self.now)


def call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], json.loads(body)


def code(answer: dict[str, Any]) -> str | None:
    return answer["tppMessages"][0]["code"] if "tppMessages" in answer else None


@pytest.fixture
def bank(sandbox: Sandbox, data_dir: Path) -> Bank:
    return Bank(sandbox, data_dir)


@pytest.mark.parametrize("scheme", ["berlin-group", "rfc9421", "jades"])
def test_a_correct_request_reaches_the_app_with_what_was_established(bank: Bank, scheme: str) -> None:
    status, headers, answer = call(bank.verifier(), bank.environ(bank.signed(scheme=scheme)))
    assert status == 200, answer
    tpp = answer["tppAuthentication"]
    assert tpp["organization_identifier"] == SAMPLE_ORG and tpp["scheme"] == scheme and tpp["roles"] == ["PSP_AI", "PSP_PI"]
    assert headers["X-Request-ID"] == tpp["request_id"]


def test_verdicts_are_cached_until_the_earliest_next_update(bank: Bank) -> None:
    verifier = bank.verifier(cache_ttl=dt.timedelta(days=30))
    assert call(verifier, bank.environ(bank.signed()))[0] == 200
    fetched = len(bank.fetcher.asked)
    assert fetched >= 2  # the QSealC's and the QWAC's status, at least
    for _ in range(3):
        assert call(verifier, bank.environ(bank.signed()))[0] == 200
    assert len(bank.fetcher.asked) == fetched, "a warm cache asks no responder"
    assert verifier.cache.hits == 6 and verifier.cache.misses == 2
    # The QSealC's entry lives no longer than the OCSP answers it was judged on (read here by cryptography).
    seal_answers = [ocsp.load_der_ocsp_response(data) for kind, data in bank.fetcher.answers
                    if kind == "application/ocsp-request"]
    seal_updates = [r.next_update_utc for r in seal_answers
                    if r.serial_number == bank.seal.certificate.serial_number and r.next_update_utc is not None]
    assert seal_updates and max(seal_updates) < bank.now + dt.timedelta(days=30)
    until = next(u for (_fp, purpose), (_v, u) in verifier.cache._entries.items() if purpose == "qsealc")
    assert until <= min(seal_updates)
    # Past that, the next request is judged afresh.
    bank.now = until + dt.timedelta(seconds=1)
    call(verifier, bank.environ(bank.signed()))
    assert len(bank.fetcher.asked) > fetched


def test_a_rejected_verdict_is_kept_only_briefly(bank: Bank, sandbox: Sandbox) -> None:
    from qtsp.core.types import serial_hex
    from qtsp.services import revocation

    verifier = bank.verifier(negative_ttl=dt.timedelta(seconds=30))
    assert call(verifier, bank.environ(bank.signed()))[0] == 200
    revocation.revoke(sandbox, serial_hex(bank.seal.certificate.serial_number), "key-compromise", issuer_id=bank.seal.issuer_id)
    assert call(verifier, bank.environ(bank.signed()))[0] == 200  # still the cached good verdict (documented)
    bank.now += dt.timedelta(minutes=6)  # past the 5-minute TTL
    status, _, answer = call(verifier, bank.environ(bank.signed()))
    assert (status, code(answer)) == (401, "CERTIFICATE_REVOKED")


def test_replays_and_the_replay_cache_bound(bank: Bank) -> None:
    verifier = bank.verifier(replay_size=2)
    first = bank.signed()
    assert call(verifier, bank.environ(first))[0] == 200
    status, _, answer = call(verifier, bank.environ(first))
    assert (status, code(answer)) == (401, "SIGNATURE_INVALID") and "replay" in answer["tppMessages"][0]["text"]
    assert call(verifier, bank.environ(bank.signed()))[0] == 200
    status, _, answer = call(verifier, bank.environ(bank.signed()))  # full of live entries: fail closed
    assert (status, code(answer)) == (429, "ACCESS_EXCEEDED")
    bank.now += dt.timedelta(minutes=11)  # the window (twice the skew) has passed: room again
    assert call(verifier, bank.environ(bank.signed()))[0] == 200


def test_bounds_paths_and_missing_parts(bank: Bank) -> None:
    verifier = bank.verifier(max_body=100, max_headers=8 * 1024)
    big = bank.environ(bank.signed("POST", "/v1/payments/sepa-credit-transfers", b'{"instructedAmount": "' + b"1" * 200 + b'"}'))
    assert call(verifier, big)[:1] == (400,) and code(call(verifier, bank.environ(bank.signed()) | {"CONTENT_LENGTH": "101"})[2]) == "FORMAT_ERROR"
    huge = bank.environ(bank.signed())
    huge["HTTP_X_PADDING"] = "x" * 9000
    assert code(call(verifier, huge)[2]) == "FORMAT_ERROR"
    status, _, answer = call(verifier, bank.environ(bank.signed(path="/v1/elsewhere")))
    assert (status, code(answer)) == (404, "RESOURCE_UNKNOWN")
    no_peer = bank.environ(bank.signed())
    del no_peer["qtsp.peer_certificate"]
    assert call(verifier, no_peer)[0:1] == (401,) and code(call(verifier, no_peer)[2]) == "CERTIFICATE_MISSING"
    unsigned = bank.environ(Request("GET", "/v1/accounts", "bank.example:443", [("X-Request-ID", "1")]))
    assert code(call(verifier, unsigned)[2]) == "SIGNATURE_MISSING"


def test_the_algorithm_allow_list(bank: Bank) -> None:
    status, _, answer = call(bank.verifier(algorithms=("RS256", "PS512")), bank.environ(bank.signed()))
    assert (status, code(answer)) == (401, "SIGNATURE_INVALID") and "not accepted" in answer["tppMessages"][0]["text"]


def test_the_qwac_and_the_qsealc_must_carry_the_role(bank: Bank) -> None:
    status, _, answer = call(bank.verifier(), bank.environ(bank.signed("POST", "/v1/funds-confirmations", b"{}")))
    assert (status, code(answer)) == (401, "ROLE_INVALID")
    assert "PSP_IC" in answer["tppMessages"][0]["text"]


def test_sealing_through_a_key_custodian(bank: Bank, sandbox: Sandbox, data_dir: Path) -> None:
    """A QSealC whose key the file custodian holds (qtsp.signers): the Signer is a private key, so it seals."""
    from cryptography.x509.oid import NameOID

    from qtsp.core.keys import KeyType
    from qtsp.signers import backend_for

    backend = backend_for("file", data_dir)
    info = backend.generate("tpp-seal", KeyType.ECDSA_P256)
    signer = backend.signer(info.ref)
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
           .sign(signer, hashes.SHA256()))  # type: ignore[arg-type]
    seal = issue(sandbox, IssueRequest("qsealc", SAMPLE_ORG, csr=csr.public_bytes(serialization.Encoding.PEM)))
    key = SealKey.from_private_key(signer, seal.certificate, chain=seal.chain[:1])
    for scheme in ("berlin-group", "rfc9421", "jades"):
        status, _, answer = call(bank.verifier(), bank.environ(bank.signed(scheme=scheme, key=key)))
        assert status == 200, answer
        assert answer["tppAuthentication"]["qsealc_serial"] == f"{seal.certificate.serial_number:X}"
