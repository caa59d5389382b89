"""A bank's check of signed PSD2 API calls, as WSGI middleware: ``SignatureVerifier(app, trust=..., roles=...)``.

On every request, before the app sees it, in this order (the first failure answers, in the Berlin Group's
error shape, ``bank_errors.py``):

1. size: header fields and body bounded (FORMAT_ERROR);
2. the client QWAC from the mutual-TLS connection (``SSL_CLIENT_CERT``, PEM, as nginx and Apache pass it,
   or ``qtsp.peer_certificate``, DER): none is CERTIFICATE_MISSING;
3. the endpoint's PSD2 role from ``roles`` (longest path prefix); a path no prefix names is refused;
4. the request signature, its scheme told by its headers (``http_signatures``): form, algorithm on the
   allow-list, digest of the body, signature with the QSealC's key; what it must cover (the X-Request-ID,
   the body's digest, the method and path where the scheme can); its time (Date, created, sigT) within
   ``skew`` of the bank's clock;
5. the QSealC (purpose qsealc) and the QWAC (purpose qwac-client) with the reference validator: path to
   the Trusted List or pinned anchors, revocation (OCSP, then the CRL), QCStatements, key usage; verdicts
   cached per certificate until the earliest of ``cache_ttl``, the nextUpdate of every OCSP response or
   CRL it used, and the certificate's notAfter;
6. both name the same organisation (organizationIdentifier, EN 319 412-1 5.1.4);
7. both carry the endpoint's role (TS 119 495 5.1);
8. the X-Request-ID not seen from that organisation within the window (a bounded cache).

Like the rest of ``qtsp.relying_party`` it reads no clock: ``clock`` is the caller's.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from ..core.trusted_list import ParsedList
from . import bank_errors
from .http_signatures import IF_PRESENT, REQUIRED, Request, SignatureProblem, Verified, verify
from .revocation import Fetcher
from .validator import Verdict, validate

__all__ = ["DEFAULT_ALGORITHMS", "Refused", "SignatureVerifier", "Trust", "VerdictCache"]

DEFAULT_ALGORITHMS = ("RS256", "RS512", "PS256", "PS512", "ES256", "ES384")
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
_SHA256 = hashes.SHA256()
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Refused(Exception):  # noqa: N818
    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


@dataclass
class Trust:
    """What the bank trusts: a verified Trusted List (or ``anchors.trusted_list_from_anchors``), the
    intermediates it knows, the revocation fetcher's settings, and certificates it blocks (SHA-256 hex)."""

    trusted_list: ParsedList
    intermediates: Sequence[x509.Certificate] = ()
    fetcher: Fetcher = field(default_factory=Fetcher)
    blocked: frozenset[str] = frozenset()


class _Recording(Fetcher):
    """The trust's fetcher, noting the nextUpdate of every OCSP response and CRL it brings back."""

    def __init__(self, template: Fetcher) -> None:
        super().__init__(connect_to=template.connect_to, at=template.at, timeout=template.timeout)
        self.template = template
        self.next_updates: list[dt.datetime] = []

    def fetch(self, url: str, *, body: bytes | None = None, content_type: str | None = None, limit: int) -> bytes:
        data = self.template.fetch(url, body=body, content_type=content_type, limit=limit)
        try:
            if content_type == "application/ocsp-request":
                response = ocsp.load_der_ocsp_response(data)
                if response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
                    self.next_updates += [s.next_update_utc for s in response.responses if s.next_update_utc]
            else:
                next_update = x509.load_der_x509_crl(data).next_update_utc
                if next_update is not None:
                    self.next_updates.append(next_update)
        except ValueError:
            pass  # the validator says why the answer is unusable
        return data


class VerdictCache:
    """Verdicts per (certificate, purpose), bounded in entries, each until its own expiry (see the module)."""

    def __init__(self, *, ttl: dt.timedelta, negative_ttl: dt.timedelta, size: int = 10_000) -> None:
        self.ttl, self.negative_ttl, self.size = ttl, negative_ttl, size
        self._entries: OrderedDict[tuple[bytes, str], tuple[Verdict, dt.datetime]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, cert: x509.Certificate, purpose: str, trust: Trust, now: dt.datetime,
            intermediates: Sequence[x509.Certificate]) -> Verdict:
        key = (cert.fingerprint(_SHA256), purpose)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now < entry[1]:
                self.hits += 1
                self._entries.move_to_end(key)
                return entry[0]
        self.misses += 1
        fetcher = _Recording(trust.fetcher)
        verdict = validate(cert, trusted_list=trust.trusted_list, at=now, intermediates=intermediates,
                           purpose=purpose, fetcher=fetcher)
        until = now + (self.ttl if verdict.accepted else self.negative_ttl)
        until = min([until, cert.not_valid_after_utc, *fetcher.next_updates])
        with self._lock:
            self._entries[key] = (verdict, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return verdict


class _ReplayCache:
    """X-Request-IDs seen per organisation, kept for the window; full of live entries, it refuses new ones
    (fails closed) rather than forgetting one still inside the window."""

    def __init__(self, window: dt.timedelta, size: int) -> None:
        self.window, self.size = window, size
        self._seen: OrderedDict[tuple[str, str], dt.datetime] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, org: str, request_id: str, now: dt.datetime) -> None:
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now:
                self._seen.popitem(last=False)
            if (org, request_id) in self._seen:
                raise Refused("SIGNATURE_INVALID", f"X-Request-ID {request_id[:64]} was already used by this TPP "
                              "within the replay window: a replayed request")
            if len(self._seen) >= self.size:
                raise Refused("ACCESS_EXCEEDED", "too many requests within the replay window; try again later")
            self._seen[(org, request_id)] = now + self.window



def _org_id(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
    return str(attrs[0].value) if attrs else None


def _refusal(verdict: Verdict, what: str) -> Refused:
    codes = verdict.codes
    text = f"{what}: " + "; ".join(f"{r.code}: {r.message}" for r in verdict.reasons)
    if "revoked" in codes:
        return Refused("CERTIFICATE_REVOKED", text)
    if "expired" in codes:
        return Refused("CERTIFICATE_EXPIRED", text)
    return Refused("CERTIFICATE_INVALID", text)


def request_from_environ(environ: Mapping[str, Any], body: bytes) -> Request:
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        target = quote(str(environ.get("PATH_INFO", "/")).encode("latin-1"), safe="/;=,:@!$&'()*+-._~%")
        if environ.get("QUERY_STRING"):
            target += "?" + str(environ["QUERY_STRING"])
    headers = [(k[5:].replace("_", "-").lower(), str(v)) for k, v in environ.items() if k.startswith("HTTP_")]
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers.append((key.replace("_", "-").lower(), str(environ[key])))
    authority = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return Request(str(environ.get("REQUEST_METHOD", "GET")), str(target), str(authority), headers, body,
                   scheme=str(environ.get("wsgi.url_scheme", "https")))


class SignatureVerifier:
    """WSGI middleware: the app is called only for requests that pass every check (see the module); it
    finds what was established in ``environ["qtsp.tpp"]``."""

    def __init__(self, app: WSGIApp, *, trust: Trust, roles: Mapping[str, str | None], clock: Callable[[], dt.datetime],
                 skew: dt.timedelta = dt.timedelta(minutes=5), algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
                 cache_ttl: dt.timedelta = dt.timedelta(minutes=5), negative_ttl: dt.timedelta = dt.timedelta(seconds=30),
                 replay_size: int = 100_000, max_body: int = MAX_BODY_BYTES, max_headers: int = MAX_HEADER_BYTES) -> None:
        self.app, self.trust, self.clock, self.skew = app, trust, clock, skew
        self.roles = sorted(roles.items(), key=lambda kv: -len(kv[0]))
        self.algorithms = tuple(algorithms)
        self.cache = VerdictCache(ttl=cache_ttl, negative_ttl=negative_ttl)
        self.replays = _ReplayCache(2 * skew, replay_size)
        self.max_body, self.max_headers = max_body, max_headers

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            body = self._read(environ)
            environ["qtsp.tpp"] = self.check(environ, body)
        except (Refused, SignatureProblem) as exc:
            payload = bank_errors.body(exc.code, exc.text)
            start_response(bank_errors.status_line(exc.code), [("Content-Type", "application/json"),
                                                               ("Content-Length", str(len(payload)))])
            return [payload]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    def _read(self, environ: Mapping[str, Any]) -> bytes:
        size = sum(len(k) + len(str(v)) for k, v in environ.items() if k.startswith("HTTP_"))
        if size > self.max_headers:
            raise Refused("FORMAT_ERROR", f"header fields larger than {self.max_headers} bytes")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Refused("FORMAT_ERROR", "Content-Length is not a number") from None
        if length < 0 or length > self.max_body:
            raise Refused("FORMAT_ERROR", f"a body of {length} bytes; at most {self.max_body} are accepted")
        body: bytes = environ["wsgi.input"].read(length) if length else b""
        if len(body) != length:
            raise Refused("FORMAT_ERROR", "the body is shorter than its Content-Length")
        return body

    def _role(self, path: str) -> str | None:
        for prefix, role in self.roles:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return role
        raise Refused("RESOURCE_UNKNOWN", f"no service at {path[:200]}")

    def _client_certificate(self, environ: Mapping[str, Any]) -> x509.Certificate:
        try:
            if environ.get("qtsp.peer_certificate"):
                return x509.load_der_x509_certificate(environ["qtsp.peer_certificate"])
            if environ.get("SSL_CLIENT_CERT"):
                return x509.load_pem_x509_certificate(str(environ["SSL_CLIENT_CERT"]).encode())
        except ValueError:
            raise Refused("CERTIFICATE_INVALID", "the TLS client certificate cannot be read") from None
        raise Refused("CERTIFICATE_MISSING", "no client certificate on the TLS connection: the XS2A interface "
                      "needs mutual TLS with a QWAC (TS 119 495)")

    def _policy(self, request: Request, verified: Verified, now: dt.datetime) -> None:
        needed = list(REQUIRED[verified.scheme]) + [h for h in IF_PRESENT if request.get(h) is not None]
        missing = [h for h in needed if h not in verified.covered]
        if missing:
            raise Refused("SIGNATURE_INVALID", f"the signature does not cover {', '.join(missing)}")
        if verified.signed_at is None:
            raise Refused("SIGNATURE_INVALID", "the signature has no time (Date, created or sigT)")
        if abs(now - verified.signed_at) > self.skew:
            raise Refused("SIGNATURE_INVALID", f"the signature was made at {verified.signed_at:%Y-%m-%dT%H:%M:%SZ}, "
                          f"outside the bank's window of {int(self.skew.total_seconds())} s around "
                          f"{now:%Y-%m-%dT%H:%M:%SZ}")
        if verified.expires is not None and verified.expires < now:
            raise Refused("SIGNATURE_INVALID", "the signature has expired (RFC 9421 expires)")
        if request.get("x-request-id") is None:
            raise Refused("FORMAT_ERROR", "no X-Request-ID")

    def check(self, environ: Mapping[str, Any], body: bytes) -> dict[str, Any]:
        now = self.clock()
        qwac = self._client_certificate(environ)
        request = request_from_environ(environ, body)
        role = self._role(request.target.split("?", 1)[0])
        verified = verify(request, allowed=self.algorithms)
        self._policy(request, verified, now)
        qsealc = verified.certificate
        for cert, what in ((qsealc, "the QSealC"), (qwac, "the QWAC")):
            if cert.fingerprint(_SHA256).hex() in self.trust.blocked:
                raise Refused("CERTIFICATE_BLOCKED", f"{what} (serial {cert.serial_number:X}) is blocked by this bank")
        intermediates = [*self.trust.intermediates, *verified.chain]
        seal = self.cache.get(qsealc, "qsealc", self.trust, now, intermediates)
        if not seal.accepted:
            raise _refusal(seal, "the QSealC is not acceptable")
        tls = self.cache.get(qwac, "qwac-client", self.trust, now, self.trust.intermediates)
        if not tls.accepted:
            raise _refusal(tls, "the QWAC is not acceptable")
        org, tls_org = _org_id(qsealc), _org_id(qwac)
        if org is None or org != tls_org:
            raise Refused("CERTIFICATE_INVALID", f"the QSealC names organisation {org}, the QWAC {tls_org}: a TPP signs "
                          "with its own seal")
        seal_roles = set(seal.qualified.get("psd2", {}).get("roles", []))
        tls_roles = set(tls.qualified.get("psd2", {}).get("roles", []))
        if role is not None and not (role in seal_roles and role in tls_roles):
            raise Refused("ROLE_INVALID", f"this service needs the PSD2 role {role}; the QWAC carries "
                          f"{', '.join(sorted(tls_roles)) or 'none'}, the QSealC {', '.join(sorted(seal_roles)) or 'none'}")
        self.replays.add(org, str(request.get("x-request-id")), now)
        return {"organization_identifier": org, "roles": sorted(seal_roles & tls_roles), "scheme": verified.scheme,
                "algorithm": verified.algorithm, "qsealc_serial": f"{qsealc.serial_number:X}",
                "qwac_serial": f"{qwac.serial_number:X}", "request_id": request.get("x-request-id")}
