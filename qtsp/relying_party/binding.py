"""Verify a 2-QWAC TLS certificate binding as a browser would (ETSI TS 119 411-5 V2.1.1 6.2.2, Chromium's
``net/cert/two_qwac.cc``): given the binding (a compact JWS) and the TLS certificate the site presented,

1. read the binding strictly (``qtsp.core.tls_binding.parse``): compact form with an empty payload, the
   protected header's members and types, ``alg`` in the allow-list (ES256, RS256, PS256; never ``none`` or
   HS*), ``cty``, ``x5c``, ``sigD``, no unknown member;
2. the signature over ASCII(BASE64URL(header)) || "." with the key of ``x5c[0]``, ``alg`` agreeing with it;
3. the 2-QWAC itself through the reference validator, purpose ``2-qwac`` (QcCompliance, QcType web, EKU
   id-kp-tls-binding only, path to a granted CA/QC service for web, revocation by OCSP then CRL), the rest of
   ``x5c`` as intermediates;
4. the binding's own validity: ``exp`` not passed, ``iat`` not in the future (beyond the clock skew);
5. the TLS certificate's hash among ``sigD.hashV``.

Every reason found is reported, not just the first; a binding that cannot be read stops at step 1.
``fetch_site`` is what ``qtsp binding check`` does first: the page over TLS, the leaf certificate from the
handshake, the ``Link: <...>; rel="tls-certificate-binding"`` header, the binding from the same origin.
"""

from __future__ import annotations

import datetime as dt
import http.client
import re
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..core import tls_binding
from ..core.errors import Kind, QTSPError
from ..core.trusted_list import ParsedList
from .findings import ERROR, Finding
from .revocation import SKEW, Fetcher
from .validator import validate

__all__ = ["LINK_REL", "MAX_PAGE_BYTES", "BindingVerdict", "Site", "fetch_site", "verify_binding"]

LINK_REL = "tls-certificate-binding"
MAX_PAGE_BYTES = 256 * 1024
TIMEOUT = 10.0
TS = "ETSI TS 119 411-5 V2.1.1"
# Where each reason's rule is written.
SOURCES = {
    "malformed": "RFC 7515 7.1", "payload-not-detached": "ETSI TS 119 182-1 5.2.8", "header-json": "RFC 7515 5.2",
    "header-alg": f"{TS} Annex B; RFC 7518 3.1", "header-cty": f"{TS} Annex B", "header-x5c": "RFC 7515 4.1.6",
    "header-sigd": "ETSI TS 119 182-1 5.2.8", "header-crit": "ETSI TS 119 182-1 5.1.9",
    "header-unknown-member": f"{TS} Annex B", "header-iat": "ETSI TS 119 182-1 5.1.11", "header-exp": f"{TS} Annex B",
    "bad-signature": "RFC 7515 5.2 step 8", "binding-expired": f"{TS} Annex B (exp)",
    "binding-not-yet-valid": "ETSI TS 119 182-1 5.1.11 (iat)", "tls-cert-not-bound": f"{TS} 6.2.2",
}


@dataclass
class BindingVerdict:
    accepted: bool
    at: dt.datetime
    findings: list[Finding] = field(default_factory=list)
    signer: dict[str, Any] = field(default_factory=dict)  # the 2-QWAC: subject, serial, the validator's verdict
    binding: dict[str, Any] = field(default_factory=dict)  # alg, hashM, iat, exp, how many certificates it binds

    @property
    def codes(self) -> list[str]:
        return [f.rule for f in self.findings if f.is_error]

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": "accept" if self.accepted else "reject", "at": self.at.isoformat(),
                "findings": [f.as_dict() for f in self.findings], "signer": self.signer, "binding": self.binding}


def _finding(code: str, message: str, source: str | None = None) -> Finding:
    return Finding(code, source or SOURCES.get(code, TS), ERROR, message)


def verify_binding(jws: str | bytes, tls_cert: x509.Certificate, *, trusted_list: ParsedList, at: dt.datetime,
                   fetcher: Fetcher | None = None) -> BindingVerdict:
    """The verdict on ``jws`` as the binding of ``tls_cert`` at ``at`` (the caller's time)."""
    verdict = BindingVerdict(False, at)
    try:
        binding = tls_binding.parse(jws)
    except tls_binding.BindingProblem as exc:
        verdict.findings.append(_finding(exc.code, exc.message))
        return verdict
    verdict.binding = {"alg": binding.alg, "hashM": binding.hash_m, "bound": len(binding.hashes),
                       "iat": binding.iat.isoformat() if binding.iat else None,
                       "exp": binding.exp.isoformat() if binding.exp else None}
    problem = tls_binding.verify_signature(binding)
    if problem is not None:
        verdict.findings.append(_finding("bad-signature", problem))
    signer = binding.chain[0]
    checked = validate(signer, trusted_list=trusted_list, at=at, intermediates=binding.chain[1:], purpose="2-qwac",
                       fetcher=fetcher or Fetcher())
    verdict.signer = {"subject": signer.subject.rfc4514_string(), "serial": format(signer.serial_number, "X"),
                      "validation": checked.as_dict()}
    for reason in checked.reasons:
        verdict.findings.append(_finding(reason.code, f"the 2-QWAC: {reason.message}",
                                         f"{TS} 6.2.2 (the 2-QWAC is a valid QWAC)"))
    if binding.exp is not None and at > binding.exp:
        verdict.findings.append(_finding("binding-expired", f"the binding expired at {binding.exp:%Y-%m-%d %H:%M:%S}Z"))
    if binding.iat is not None and binding.iat > at + SKEW:
        verdict.findings.append(_finding("binding-not-yet-valid",
                                         f"the binding is issued at {binding.iat:%Y-%m-%d %H:%M:%S}Z, in the future"))
    if not binding.binds(tls_cert.public_bytes(Encoding.DER)):
        verdict.findings.append(_finding("tls-cert-not-bound", "the TLS certificate's hash is not among the binding's "
                                         f"sigD hashV ({binding.hash_m} of its base64url DER, TS 119 182-1 5.2.8.1)"))
    verdict.accepted = not any(f.is_error for f in verdict.findings)
    return verdict


# --- the site: what `qtsp binding check URL` fetches ---------------------------------------------------


@dataclass(frozen=True)
class Site:
    url: str
    tls_cert: x509.Certificate  # the leaf the TLS handshake presented
    binding_url: str
    binding: bytes


_LINK = re.compile(r'<([^>]{1,2048})>\s*;([^,]*)')


def _binding_link(headers: list[tuple[str, str]]) -> str | None:
    """The target of the first Link with rel="tls-certificate-binding" (RFC 8288 3)."""
    for name, value in headers:
        if name.lower() != "link":
            continue
        for target, params in _LINK.findall(str(value)):
            for param in params.split(";"):
                key, _, val = param.strip().partition("=")
                if key.strip().lower() == "rel" and LINK_REL in val.strip().strip('"').lower().split():
                    return str(target).strip()
    return None


def _get(url: str, *, context: ssl.SSLContext, limit: int) -> tuple[int, list[tuple[str, str]], bytes, bytes]:
    """One bounded HTTPS GET: status, headers, body (at most ``limit``), the presented leaf (DER)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise QTSPError(Kind.MALFORMED, f"{url[:200]!r} is not an https:// URL")
    conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=TIMEOUT, context=context)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"Accept": "*/*", "User-Agent": "qtsp-binding-check"})
        sock = conn.sock
        leaf = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        response = conn.getresponse()
        body = response.read(limit + 1)
    except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
        raise QTSPError(Kind.NOT_FOUND, f"cannot fetch {url[:200]}: {type(exc).__name__}: {str(exc)[:200]}") from None
    finally:
        conn.close()
    if not leaf:
        raise QTSPError(Kind.NOT_FOUND, f"{url[:200]} presented no TLS certificate")
    if len(body) > limit:
        raise QTSPError(Kind.MALFORMED, f"{url[:200]}: the answer is larger than {limit} bytes")
    return response.status, response.getheaders(), body, leaf


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or 443


def fetch_site(url: str, *, cafile: str | None = None) -> Site:
    """The page at ``url`` over TLS, its presented certificate, and the binding its Link header names (same
    origin only, at most ``tls_binding.MAX_BINDING_BYTES``; the second connection must present the same
    certificate). Without ``cafile`` the TLS certificate's own chain is not checked (the binding is what is
    judged here; a browser checks the TLS certificate against its root store first)."""
    context = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()  # noqa: S323
    status, headers, _body, leaf = _get(url, context=context, limit=MAX_PAGE_BYTES)
    if status != 200:
        raise QTSPError(Kind.NOT_FOUND, f"{url[:200]} answered HTTP {status}")
    target = _binding_link(headers)
    if target is None:
        raise QTSPError(Kind.NOT_FOUND, f"{url[:200]} sends no Link header with rel=\"{LINK_REL}\"")
    binding_url = urljoin(url, target)
    if _origin(binding_url) != _origin(url):
        raise QTSPError(Kind.POLICY, f"the binding's URL {binding_url[:200]} is not of the page's origin: refused")
    status, _headers, body, leaf2 = _get(binding_url, context=context, limit=tls_binding.MAX_BINDING_BYTES)
    if status != 200:
        raise QTSPError(Kind.NOT_FOUND, f"{binding_url[:200]} answered HTTP {status}")
    if leaf2 != leaf:
        raise QTSPError(Kind.POLICY, "the server presented another TLS certificate when the binding was fetched")
    return Site(url, x509.load_der_x509_certificate(leaf), binding_url, body)
