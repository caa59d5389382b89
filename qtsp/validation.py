"""The reference validator (issue 7): what a bank's PSD2 validator should conclude about a certificate.

``validate(cert, ...)`` returns a ``Verdict``: accepted or not, with every reason found, not just the
first. In order:

1. time: the certificate's validity at ``at`` (default now);
2. the path: from the certificate through the intermediates given, up to a CA/QC service *granted* in
   the (XAdES-verified) Trusted List, each signature checked, each CA's basicConstraints, keyUsage and
   validity checked, unknown critical extensions refused (RFC 5280 4.2);
3. revocation of every certificate below the anchor: OCSP first (a nonce sent, the response's
   signature, responder authorisation, CertID, freshness and nonce checked), the CRL as fallback
   (signature, issuer, freshness); no usable answer from either is a reason to reject;
4. the qualified and PSD2 content: QcCompliance, QcType against the purpose, the Trusted List's
   additional service information (ForWebSiteAuthentication / ForeSeals), the PSD2 statement (each
   role's name against its OID, NCAId form, NCAId against organizationIdentifier, required roles);
5. the purpose's key usage and extended key usage.

It shares no code with the issuing side beyond the ASN.1 structure of the PSD2 statement; the
scenario catalogue's manifest is checked against it, and it against pyhanko, OpenSSL and Java PKIX,
in tests/test_validation.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import urlsplit, urlunsplit

from asn1crypto import keys as akeys
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID, NameOID

from .core import oids
from .core.errors import Kind, QTSPError
from .core.psd2 import NCA_ID_RE, NOT_APPLICABLE, ROLE_BY_OID, ROLES, decode_unchecked
from .core.qcstatements import qc_types, read_statements
from .services.context import utcnow
from .services.trusted_list import ListedService, ParsedList

PURPOSES = ("qwac", "qwac-client", "qsealc")
CA_QC = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
GRANTED = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
ASI = "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/"
FOR_WEB, FOR_ESEALS = ASI + "ForWebSiteAuthentication", ASI + "ForeSeals"
MAX_PATH = 6
MAX_OCSP_BYTES = 64 * 1024
MAX_CRL_BYTES = 32 * 1024 * 1024
SKEW = dt.timedelta(minutes=5)
TIME_HEADER = "X-QTSP-Time"
# RFC 5280 4.2: a validator must reject a certificate with a critical extension it does not process.
PROCESSED_CRITICAL = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.CERTIFICATE_POLICIES, ExtensionOID.NAME_CONSTRAINTS,
    ExtensionOID.POLICY_CONSTRAINTS, ExtensionOID.INHIBIT_ANY_POLICY,
})


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass
class Verdict:
    accepted: bool
    purpose: str
    at: dt.datetime
    reasons: list[Reason] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # subjects, certificate first, anchor last
    anchor: str | None = None  # the Trusted List service the path ends at
    revocation: list[dict[str, Any]] = field(default_factory=list)
    qualified: dict[str, Any] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": "accept" if self.accepted else "reject", "purpose": self.purpose, "at": self.at.isoformat(),
                "reasons": [{"code": r.code, "message": r.message} for r in self.reasons], "path": self.path,
                "anchor": self.anchor, "revocation": self.revocation, "qualified": self.qualified}


class Fetcher:
    """HTTP GET/POST for OCSP and CRLs: bounded in size and time, never through a proxy.

    ``connect_to`` ("127.0.0.1:8080") sends every request there while keeping the URL's Host header
    (curl's --connect-to), for a sandbox whose public name does not resolve here. ``at``: ask the
    sandbox's time travel mode for answers as of that time (the X-QTSP-Time header)."""

    def __init__(self, *, connect_to: str | None = None, at: dt.datetime | None = None, timeout: float = 10.0) -> None:
        self.connect_to, self.at, self.timeout = connect_to, at, timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def fetch(self, url: str, *, body: bytes | None = None, content_type: str | None = None, limit: int) -> bytes:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise QTSPError(Kind.MALFORMED, f"not an http(s) URL: {url[:200]!r}")
        headers = {"Host": parts.netloc, "User-Agent": "qtsp-validate"}
        target = url if self.connect_to is None else urlunsplit(parts._replace(netloc=self.connect_to))
        if content_type:
            headers["Content-Type"] = content_type
        if self.at is not None:
            headers[TIME_HEADER] = self.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        request = urllib.request.Request(target, data=body, headers=headers, method="POST" if body is not None else "GET")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                data = response.read(limit + 1)
        except urllib.error.HTTPError as exc:
            raise QTSPError(Kind.NOT_FOUND, f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise QTSPError(Kind.NOT_FOUND, f"{url}: {getattr(exc, 'reason', exc)}") from None
        if len(data) > limit:
            raise QTSPError(Kind.MALFORMED, f"{url}: answer larger than {limit} bytes")
        return data


def anchors(tl: ParsedList) -> list[ListedService]:
    return [s for s in tl.services if s.service_type == CA_QC and s.status == GRANTED and _parsable(s.certificate)]


# --- checks ---------------------------------------------------------------------------------------


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> Any:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _parsable(cert: x509.Certificate) -> bool:
    """cryptography parses extensions on first access; a malformed one is a verdict, never a crash."""
    try:
        cert.extensions  # noqa: B018
        return True
    except ValueError:
        return False


def _unknown_critical(cert: x509.Certificate) -> list[str]:
    return [e.oid.dotted_string for e in cert.extensions if e.critical and e.oid not in PROCESSED_CRITICAL]


class _Run:
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict

    def fail(self, code: str, message: str) -> None:
        if all(r.code != code or r.message != message for r in self.verdict.reasons):
            self.verdict.reasons.append(Reason(code, message))


def _build_path(run: _Run, cert: x509.Certificate, intermediates: Sequence[x509.Certificate],
                services: list[ListedService]) -> tuple[list[x509.Certificate], ListedService | None]:
    """Certificate first; the anchor's service, or None with the reason recorded."""
    path = [cert]
    while len(path) <= MAX_PATH:
        current = path[-1]
        named = [s for s in services if s.certificate.subject == current.issuer]
        for service in named:
            if _issued_by(current, service.certificate):
                return path, service
        candidates = [c for c in intermediates if c.subject == current.issuer and c not in path]
        parent = next((c for c in candidates if _issued_by(current, c)), None)
        if parent is None:
            if named or candidates:
                run.fail("bad-signature", f"the signature on '{current.subject.rfc4514_string()}' does not verify with "
                         f"the key of its issuer '{current.issuer.rfc4514_string()}'")
            elif current is cert:
                run.fail("no-path", f"the issuer '{current.issuer.rfc4514_string()}' is neither a Trusted List "
                         "service nor among the intermediates given (a missing intermediate)")
            else:
                run.fail("issuer-not-trusted", f"the path ends at '{current.subject.rfc4514_string()}', which is not "
                         "a granted CA/QC service of the Trusted List")
            return path, None
        path.append(parent)
    run.fail("no-path", f"no path to a Trusted List service within {MAX_PATH} certificates")
    return path, None


def _check_times(run: _Run, cert: x509.Certificate, at: dt.datetime, *, what: str = "the certificate") -> None:
    if at < cert.not_valid_before_utc:
        run.fail("not-yet-valid", f"{what} is valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z")
    if at > cert.not_valid_after_utc:
        run.fail("expired", f"{what} expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z")


def _check_ca(run: _Run, ca: x509.Certificate, at: dt.datetime, below: int) -> None:
    name = f"the CA '{ca.subject.rfc4514_string()}'"
    bc = _ext(ca, ExtensionOID.BASIC_CONSTRAINTS)
    ku = _ext(ca, ExtensionOID.KEY_USAGE)
    if bc is None or not bc.ca:
        run.fail("ca-invalid", f"{name} is not a CA (basicConstraints)")
    elif bc.path_length is not None and below > bc.path_length:
        run.fail("ca-invalid", f"{name} allows {bc.path_length} CA certificates below it, the path has {below}")
    if ku is not None and not ku.key_cert_sign:
        run.fail("ca-invalid", f"{name} may not sign certificates (keyUsage)")
    if at < ca.not_valid_before_utc or at > ca.not_valid_after_utc:
        run.fail("ca-invalid", f"{name} is not valid at {at:%Y-%m-%d %H:%M:%S}Z")
    for oid in _unknown_critical(ca):
        run.fail("unknown-critical-extension", f"{name} has the critical extension {oid}, which is not processed")


# --- revocation -----------------------------------------------------------------------------------


def _verify_signature(public_key: Any, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            return False
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def _key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bytes (what RFC 6960 hashes for issuerKeyHash and byKey)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bytes(akeys.PublicKeyInfo.load(spki)["public_key"].contents[1:])


def _ocsp(fetcher: Fetcher, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> dict[str, Any]:
    """{"source": "ocsp", "status": good|revoked, ...}; raises QTSPError saying why the answer is unusable."""
    aia = _ext(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS) or []
    urls = [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]
    if not urls:
        raise QTSPError(Kind.NOT_FOUND, "no OCSP URL in the certificate")
    nonce = os.urandom(16)
    request = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
               .add_extension(x509.OCSPNonce(nonce), critical=False).build())
    body = fetcher.fetch(urls[0], body=request.public_bytes(serialization.Encoding.DER),
                         content_type="application/ocsp-request", limit=MAX_OCSP_BYTES)
    try:
        response = ocsp.load_der_ocsp_response(body)
    except ValueError as exc:
        raise QTSPError(Kind.MALFORMED, f"OCSP: not an OCSP response ({exc})") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise QTSPError(Kind.NOT_FOUND, f"OCSP: responder says {response.response_status.name}")
    # Who signed it: the issuer itself, or a responder the issuer delegated to (RFC 6960 4.2.2.2).
    signer = None
    for candidate in [issuer, *response.certificates]:
        if response.responder_key_hash is not None:
            if hashlib.sha1(_key_bits(candidate)).digest() != response.responder_key_hash:
                continue
        elif response.responder_name != candidate.subject:
            continue
        signer = candidate
        break
    if signer is None:
        raise QTSPError(Kind.UNAUTHORISED, "OCSP: the response is signed by a responder that is not the issuer and not "
                        "in the response")
    if signer is not issuer:
        eku = _ext(signer, ExtensionOID.EXTENDED_KEY_USAGE)
        if not _issued_by(signer, issuer) or eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise QTSPError(Kind.UNAUTHORISED, f"OCSP: the responder '{signer.subject.rfc4514_string()}' is not "
                            "authorised by the issuer (not issued by it with id-kp-OCSPSigning)")
        if not signer.not_valid_before_utc - SKEW <= at <= signer.not_valid_after_utc + SKEW:
            raise QTSPError(Kind.UNAUTHORISED, "OCSP: the responder certificate is not valid at the time of checking")
    if not _verify_signature(signer.public_key(), response.signature, response.tbs_response_bytes,
                             response.signature_hash_algorithm):
        raise QTSPError(Kind.UNAUTHORISED, "OCSP: the response signature does not verify")
    singles = list(response.responses)
    if len(singles) != 1:
        raise QTSPError(Kind.MALFORMED, f"OCSP: {len(singles)} answers to a one-certificate request")
    single = singles[0]
    hash_cls = type(single.hash_algorithm)
    name_hash = hashes.Hash(hash_cls()); name_hash.update(issuer.subject.public_bytes()); name_hash_v = name_hash.finalize()
    key_hash = hashes.Hash(hash_cls()); key_hash.update(_key_bits(issuer)); key_hash_v = key_hash.finalize()
    if (single.serial_number != cert.serial_number or single.issuer_name_hash != name_hash_v
            or single.issuer_key_hash != key_hash_v):
        raise QTSPError(Kind.MALFORMED, f"OCSP: the response is about another certificate (serial "
                        f"{single.serial_number:X}, asked {cert.serial_number:X})")
    if single.this_update_utc > at + SKEW:
        raise QTSPError(Kind.MALFORMED, f"OCSP: thisUpdate {single.this_update_utc:%Y-%m-%d %H:%M:%S}Z is in the future")
    if single.next_update_utc is None or single.next_update_utc < at - SKEW:
        raise QTSPError(Kind.MALFORMED, "OCSP: the response is stale (nextUpdate passed or absent)")
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None
    if echoed != nonce:
        raise QTSPError(Kind.MALFORMED, "OCSP: the nonce sent is not in the response (a replay cannot be ruled out)")
    result: dict[str, Any] = {"source": "ocsp", "url": urls[0], "status": single.certificate_status.name.lower(),
                              "this_update": single.this_update_utc.isoformat()}
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        revoked_at = single.revocation_time_utc
        result.update(revoked_at=revoked_at.isoformat() if revoked_at else None,
                      reason=single.revocation_reason.name if single.revocation_reason else "unspecified")
        if revoked_at is not None and revoked_at > at:
            result["status"] = "good"  # revoked only after the time of checking
    elif single.certificate_status == ocsp.OCSPCertStatus.UNKNOWN:
        raise QTSPError(Kind.NOT_FOUND, "OCSP: the responder does not know the certificate (unknown)")
    return result


def _crl(fetcher: Fetcher, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> dict[str, Any]:
    points = _ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS) or []
    urls = [n.value for p in points for n in (p.full_name or []) if isinstance(n, x509.UniformResourceIdentifier)]
    if not urls:
        raise QTSPError(Kind.NOT_FOUND, "no CRL distribution point in the certificate")
    der = fetcher.fetch(urls[0], limit=MAX_CRL_BYTES)
    try:
        crl = x509.load_der_x509_crl(der)
    except ValueError:
        raise QTSPError(Kind.MALFORMED, f"CRL: {urls[0]} is not a DER CRL") from None
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise QTSPError(Kind.UNAUTHORISED, "CRL: not signed by the certificate's issuer")
    if crl.last_update_utc > at + SKEW:
        raise QTSPError(Kind.MALFORMED, f"CRL: thisUpdate {crl.last_update_utc:%Y-%m-%d %H:%M:%S}Z is in the future")
    if crl.next_update_utc is None or crl.next_update_utc < at - SKEW:
        raise QTSPError(Kind.MALFORMED, "CRL: expired (nextUpdate passed or absent)")
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    result: dict[str, Any] = {"source": "crl", "url": urls[0], "status": "good",
                              "this_update": crl.last_update_utc.isoformat()}
    if entry is not None and entry.revocation_date_utc <= at:
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
        except x509.ExtensionNotFound:
            reason = "unspecified"
        result.update(status="revoked", revoked_at=entry.revocation_date_utc.isoformat(), reason=reason)
    elif cert.not_valid_after_utc < crl.last_update_utc:
        expired_kept = _ext(crl, x509.ObjectIdentifier("2.5.29.60"))  # ExpiredCertsOnCRL (X.509 9.6.2.6)
        if expired_kept is None:
            raise QTSPError(Kind.NOT_FOUND, "CRL: the certificate expired before this CRL, which does not keep "
                            "expired entries (no ExpiredCertsOnCRL): its absence proves nothing")
    return result


def _revocation(run: _Run, fetcher: Fetcher, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime,
                what: str) -> None:
    problems = []
    for method in (_ocsp, _crl):
        try:
            result = method(fetcher, cert, issuer, at)
        except QTSPError as exc:
            problems.append(exc.detail)
            continue
        except (ValueError, TypeError) as exc:  # an answer too odd for the parsers: unusable, never a crash
            problems.append(f"{method.__name__.strip('_').upper()}: unusable answer ({type(exc).__name__})")
            continue
        result["certificate"] = what
        if problems:
            result["fallback_after"] = problems
        run.verdict.revocation.append(result)
        if result["status"] == "revoked":
            run.fail("revoked", f"{what} was revoked at {result['revoked_at']} ({result['reason']}), says the "
                     f"{result['source'].upper()}")
        return
    run.verdict.revocation.append({"certificate": what, "status": "unavailable", "problems": problems})
    run.fail("revocation-unknown", f"no usable revocation status for {what}: " + "; ".join(problems))


# --- qualified and PSD2 content -------------------------------------------------------------------


def _org_id(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
    return str(attrs[0].value) if attrs else None


def _qualified(run: _Run, cert: x509.Certificate, purpose: str, anchor: ListedService | None,
               require_roles: Sequence[str]) -> None:
    try:
        _qualified_statements(run, cert, purpose, anchor, require_roles)
    except (ValueError, TypeError, KeyError) as exc:  # statements that parse as DER but not as their types
        run.fail("not-qualified", f"unreadable QCStatements ({type(exc).__name__}: {str(exc)[:120]})")


def _qualified_statements(run: _Run, cert: x509.Certificate, purpose: str, anchor: ListedService | None,
                          require_roles: Sequence[str]) -> None:
    info = run.verdict.qualified
    try:
        statements = read_statements(cert)
    except QTSPError as exc:
        run.fail("not-qualified", f"no readable QCStatements: {exc.detail}")
        return
    info["qc_compliance"] = oids.QCS_COMPLIANCE in statements
    if not info["qc_compliance"]:
        run.fail("not-qualified", "no QcCompliance statement: not an EU qualified certificate")
    wanted = oids.QCT_ESEAL if purpose == "qsealc" else oids.QCT_WEB
    types = qc_types(statements[oids.QCS_TYPE]) if oids.QCS_TYPE in statements else []
    info["qc_types"] = types
    if types != [wanted]:
        label = {oids.QCT_WEB: "web", oids.QCT_ESEAL: "eseal", oids.QCT_ESIGN: "esign"}
        run.fail("qctype-mismatch", f"QcType is {', '.join(label.get(t, t) for t in types) or 'absent'}; a "
                 f"{purpose} must be of type {label[wanted]} only (EN 319 412-5 4.2.3)")
    if anchor is not None:
        needed = FOR_ESEALS if purpose == "qsealc" else FOR_WEB
        if needed not in anchor.additional_info:
            run.fail("tl-service-purpose", f"the Trusted List service '{anchor.name}' is not qualified "
                     f"{needed.rsplit('/', 1)[1]}")
    psd2 = statements.get(oids.PSD2_STATEMENT)
    if psd2 is None:
        run.fail("missing-psd2-statement", "no PSD2 QCStatement (TS 119 495 5.1): no roles, no NCA")
        return
    try:
        roles, nca_name, nca_id = decode_unchecked(psd2)
    except QTSPError as exc:
        run.fail("missing-psd2-statement", exc.detail)
        return
    info["psd2"] = {"roles": [name for _oid, name in roles], "nca_name": nca_name, "nca_id": nca_id}
    for oid, name in roles:
        if ROLE_BY_OID.get(oid) != name:
            run.fail("role-oid-mismatch", f"PSD2 role name {name!r} does not match its OID {oid} "
                     f"({ROLE_BY_OID.get(oid, 'no known role')!r}; TS 119 495 5.1)")
    if nca_id != NOT_APPLICABLE and not NCA_ID_RE.fullmatch(nca_id):
        run.fail("ncaid-malformed", f"NCAId {nca_id!r} is not <country>-<2-8 upper-case letters> (TS 119 495 5.2.3)")
    org_id = _org_id(cert)
    if org_id and org_id.startswith("PSD") and NCA_ID_RE.fullmatch(nca_id):
        named = f"{org_id[3:5]}-{org_id[6:].split('-', 1)[0]}"
        if named != nca_id:
            run.fail("ncaid-mismatch", f"organizationIdentifier {org_id} names NCA {named}, the PSD2 statement {nca_id}")
    held = {name for oid, name in roles if ROLE_BY_OID.get(oid) == name}
    for role in require_roles:
        if role not in ROLES:
            raise QTSPError(Kind.MALFORMED, f"unknown PSD2 role {role!r}; known: {', '.join(ROLES)}")
        if role not in held:
            run.fail("role-not-authorised", f"the certificate does not carry the role {role}")


def _usage(run: _Run, cert: x509.Certificate, purpose: str) -> None:
    ku = _ext(cert, ExtensionOID.KEY_USAGE)
    eku = _ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    if purpose == "qsealc":
        if ku is None or not (ku.content_commitment or ku.digital_signature):
            run.fail("key-usage", "a seal's keyUsage needs nonRepudiation or digitalSignature (EN 319 412-3)")
        return
    if ku is None or not ku.digital_signature:
        run.fail("key-usage", "keyUsage lacks digitalSignature: the key cannot authenticate a TLS handshake")
    wanted = ExtendedKeyUsageOID.CLIENT_AUTH if purpose == "qwac-client" else ExtendedKeyUsageOID.SERVER_AUTH
    if eku is None or wanted not in eku:
        code = "eku-client-auth-missing" if purpose == "qwac-client" else "eku-server-auth-missing"
        run.fail(code, f"extendedKeyUsage lacks {wanted._name}: not for use as a TLS {purpose == 'qwac-client' and 'client' or 'server'}")


# --- the entry point ------------------------------------------------------------------------------


def validate(cert: x509.Certificate, *, trusted_list: ParsedList, intermediates: Sequence[x509.Certificate] = (),
             purpose: str = "qwac", require_roles: Sequence[str] = (), at: dt.datetime | None = None,
             fetcher: Fetcher | None = None) -> Verdict:
    """The verdict on ``cert`` for ``purpose`` at ``at`` (default: now), with every reason found."""
    if purpose not in PURPOSES:
        raise QTSPError(Kind.MALFORMED, f"purpose must be one of {', '.join(PURPOSES)}")
    at = at or utcnow()
    fetcher = fetcher or Fetcher()
    verdict = Verdict(False, purpose, at)
    run = _Run(verdict)
    if not _parsable(cert):
        run.fail("malformed", "the certificate's extensions cannot be parsed (RFC 5280 4.2)")
        return verdict
    intermediates = [c for c in intermediates if _parsable(c)]
    _check_times(run, cert, at)
    for oid in _unknown_critical(cert):
        run.fail("unknown-critical-extension", f"the certificate has the critical extension {oid}, which is not processed")
    path, anchor = _build_path(run, cert, intermediates, anchors(trusted_list))
    verdict.path = [c.subject.rfc4514_string() for c in path]
    if anchor is not None:
        verdict.anchor = anchor.name
        verdict.path.append(anchor.certificate.subject.rfc4514_string())
        if not anchor.certificate.not_valid_before_utc <= at <= anchor.certificate.not_valid_after_utc:
            run.fail("ca-invalid", f"the Trusted List service certificate of '{anchor.name}' is not valid at {at:%Y-%m-%d}")
        for below, ca in enumerate(reversed(path[1:])):
            _check_ca(run, ca, at, len(path) - 2 - below)
        issuers = path[1:] + [anchor.certificate]
        for i, (subject, issuer) in enumerate(zip(path, issuers)):
            _revocation(run, fetcher, subject, issuer, at, "the certificate" if i == 0 else f"the CA '{subject.subject.rfc4514_string()}'")
    _qualified(run, cert, purpose, anchor, require_roles)
    _usage(run, cert, purpose)
    verdict.accepted = not verdict.reasons
    return verdict
