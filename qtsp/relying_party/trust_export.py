"""Trust stores from a Trusted List: the CA certificates of the services a list grants for QWACs or for
QSealCs, at a time, as a PEM bundle (nginx ``ssl_client_certificate``/``ssl_trusted_certificate``, HAProxy
``ca-file``) or a PKCS#12 trust store (Java, ``-Djavax.net.ssl.trustStoreType=PKCS12``), each named after
its service. A JKS store is made from the same certificates by Java's keytool (``qtsp trust export``).

Which services (ETSI TS 119 612 V2.x): type CA/QC (5.5.1), status granted at ``at`` (5.5.4, 5.5.5, the
ServiceHistory of 5.6 for an earlier time), and the additionalServiceInformation of that state (5.5.9.4)
naming ForWebSiteAuthentication (QWAC) or ForeSeals (QSealC).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ..core.errors import Kind, QTSPError
from ..core.names import readable_name
from ..core.trusted_list import CA_QC, FOR_ESEALS, FOR_WEB, GRANTED, ParsedList

__all__ = ["SERVICE_KINDS", "Anchor", "granted", "issuers_from_aia", "pem_bundle", "pkcs12_truststore"]

SERVICE_KINDS = {"QWAC": FOR_WEB, "QSealC": FOR_ESEALS}


@dataclass(frozen=True)
class Anchor:
    name: str  # the service's name (one line, unique in the export): the friendly name / alias in the store
    certificate: x509.Certificate
    granted_since: dt.datetime

    @property
    def sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()



def granted(tl: ParsedList, kind: str, at: dt.datetime) -> tuple[list[Anchor], list[str]]:
    """(the anchors for ``kind`` at ``at``, why the other CA/QC services were left out)."""
    if kind not in SERVICE_KINDS:
        raise QTSPError(Kind.MALFORMED, f"--service must be one of {', '.join(SERVICE_KINDS)}")
    wanted = SERVICE_KINDS[kind]
    anchors: list[Anchor] = []
    skipped: list[str] = []
    seen: set[bytes] = set()
    for service in tl.services:
        state = service.state_at(at)
        if state is None or state.service_type != CA_QC:
            if service.service_type == CA_QC:
                skipped.append(f"{service.name}: not yet listed at {at:%Y-%m-%dT%H:%M:%SZ}")
            continue
        if state.status != GRANTED:
            skipped.append(f"{service.name}: {state.status.rsplit('/', 1)[-1]} at {at:%Y-%m-%dT%H:%M:%SZ}")
            continue
        if wanted not in state.additional_info:
            skipped.append(f"{service.name}: not for {kind}")
            continue
        cert = service.certificate
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            skipped.append(f"{service.name}: its certificate is not valid at {at:%Y-%m-%dT%H:%M:%SZ}")
            continue
        der = cert.public_bytes(serialization.Encoding.DER)
        if der in seen:
            continue
        seen.add(der)
        name = " ".join(service.name.split())[:120] or "CA/QC service"
        if any(a.name.lower() == name.lower() for a in anchors):  # keystore aliases ignore case: keep them apart
            name = f"{name} [{cert.fingerprint(hashes.SHA256()).hex()[:8]}]"
        anchors.append(Anchor(name, cert, state.status_start))
    return anchors, skipped


def clean(text: str) -> str:
    """One line of a comment: no line breaks from a list's names."""
    return re.sub(r"[\r\n]+", " ", text)


def pem_bundle(anchors: list[Anchor], *, kind: str, tl: ParsedList, at: dt.datetime,
               path_completion: Sequence[Anchor] = ()) -> bytes:
    """The certificates as PEM, each after comment lines naming its service (OpenSSL skips text outside
    the BEGIN/END lines, so nginx and HAProxy read the file as it is)."""
    if not anchors:
        raise QTSPError(Kind.NOT_FOUND, f"the Trusted List grants no CA/QC service for {kind} at {at:%Y-%m-%dT%H:%M:%SZ}")
    lines = [f"# {kind} trust anchors from the Trusted List of {clean(tl.territory)} ({clean(tl.operator)}), "
             f"sequence {tl.sequence}, as of {at:%Y-%m-%dT%H:%M:%SZ}", ""]

    def entry(anchor: Anchor) -> list[str]:
        return [f"# {clean(anchor.name)}", f"#   subject: {clean(readable_name(anchor.certificate.subject))}",
                f"#   since {anchor.granted_since:%Y-%m-%dT%H:%M:%SZ}; valid until "
                f"{anchor.certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}", f"#   SHA-256 {anchor.sha256}",
                anchor.certificate.public_bytes(serialization.Encoding.PEM).decode().rstrip(), ""]

    for anchor in anchors:
        lines += entry(anchor)
    if path_completion:
        lines += ["# Not Trusted List services: the issuers above them, from their caIssuers URLs, so that OpenSSL",
                  "# finds a path to a self-signed root. Check the issuing CA as well (docs/lint.md).", ""]
        for anchor in path_completion:
            lines += entry(anchor)
    return "\n".join(lines).encode()


def pkcs12_truststore(anchors: list[Anchor], password: bytes) -> bytes:
    """A PKCS#12 trust store: certificate bags only, each with its friendly name and Java's trusted-key-usage
    attribute (what ``keytool -importcert`` writes), so Java's PKCS12 KeyStore loads them as trusted entries."""
    if not anchors:
        raise QTSPError(Kind.NOT_FOUND, "no trust anchor to export")
    if not password:
        raise QTSPError(Kind.MALFORMED, "a PKCS#12 trust store needs a password (Java refuses an empty one)")
    bags = [pkcs12.PKCS12Certificate(a.certificate, a.name.encode()) for a in anchors]
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(50000)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256()).build(password))
    return pkcs12.serialize_java_truststore(bags, encryption)


MAX_AIA_CERT_BYTES = 64 * 1024
MAX_PATH_UP = 4


def _ca_issuers_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [d.access_location.value for d in aia
            if d.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def _parse_issuer(data: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError:
        return None


def issuers_from_aia(anchors: list[Anchor], fetch: Callable[[str], bytes], at: dt.datetime) -> tuple[list[Anchor], list[str]]:
    """The certificates above each anchor up to a self-signed root, fetched from the caIssuers URLs (RFC 5280
    4.2.2.1) and each checked to have signed the one below: OpenSSL (nginx, HAProxy) builds paths to a
    self-signed root and refuses a chain that stops at an intermediate, however trusted. Returned apart, to be
    added under a comment saying they are not Trusted List services. (A root in an OpenSSL trust store makes
    every CA under it trusted: pair it with a check of the issuing CA, see docs/relying-parties.md.)"""
    extra: list[Anchor] = []
    problems: list[str] = []
    have = {a.certificate.public_bytes(serialization.Encoding.DER) for a in anchors}
    for anchor in anchors:
        current = anchor.certificate
        for _ in range(MAX_PATH_UP):
            if current.subject == current.issuer:
                break
            found = None
            for url in _ca_issuers_urls(current):
                try:
                    candidate = _parse_issuer(fetch(url))
                except QTSPError as exc:
                    problems.append(f"{anchor.name}: {exc.detail}")
                    continue
                if candidate is None:
                    problems.append(f"{anchor.name}: {url} is not a certificate")
                    continue
                try:
                    current.verify_directly_issued_by(candidate)
                except (ValueError, TypeError, InvalidSignature):
                    problems.append(f"{anchor.name}: the certificate at {url} did not issue it")
                    continue
                found = candidate
                break
            if found is None:
                problems.append(f"{anchor.name}: no issuer of '{readable_name(current.subject)}' from its caIssuers URL")
                break
            der = found.public_bytes(serialization.Encoding.DER)
            if der not in have and found.not_valid_before_utc <= at <= found.not_valid_after_utc:
                have.add(der)
                cns = found.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
                label = str(cns[0].value) if cns else found.subject.rfc4514_string()
                extra.append(Anchor(f"{label} (issuer of {anchor.name}; not a Trusted List service)", found,
                                    found.not_valid_before_utc))
            current = found
    return extra, problems
