"""A small foreign PKI (not this project's issuance code: cryptography's builders only) and builders of CRLs
and OCSP responses with every field under the test's control, good ones and deliberately wrong ones, for
the artifact linter's tests (tests/unit/relying_party/test_lint_artifacts.py, tests/system/relying_party/
test_lint_openssl.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# OCSPResponseBuilder writes producedAt from the real clock: the artifacts are made around it.
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
OCSP_NOCHECK = x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")


@dataclass
class Party:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "LU"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Foreign Demo QTSP SA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(cn: str, issuer: Party | None, *, ca: bool, eku: list[x509.ObjectIdentifier] | None = None,
          nocheck: bool = False, days: int = 365, key_usage: str = "default") -> Party:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = issuer.key if issuer is not None else key
    issuer_name = issuer.cert.subject if issuer is not None else _name(cn)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=30))
               .not_valid_after(NOW + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                                        critical=False)
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=ca, crl_sign=ca and key_usage != "no-crl-sign",
        encipher_only=False, decipher_only=False), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if nocheck:
        builder = builder.add_extension(x509.UnrecognizedExtension(OCSP_NOCHECK, b"\x05\x00"), critical=False)
    return Party(key, builder.sign(signer, hashes.SHA256()))


@dataclass
class Pki:
    root: Party
    ca: Party
    responder: Party  # delegated by ca: id-kp-OCSPSigning + nocheck
    leaf: Party
    stranger: Party  # a CA of someone else


def make_pki() -> Pki:
    root = issue("Foreign Demo Root", None, ca=True, days=3650)
    ca = issue("Foreign Demo Issuing CA", root, ca=True, days=1825)
    responder = issue("Foreign Demo OCSP Responder", ca, ca=False, eku=[ExtendedKeyUsageOID.OCSP_SIGNING], nocheck=True)
    leaf = issue("api.foreign-fintech.example", ca, ca=False, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    stranger = issue("Someone Else's CA", None, ca=True)
    return Pki(root, ca, responder, leaf, stranger)


def entry(serial: int, reason: x509.ReasonFlags | None = None, *, critical: bool = False,
          revoked_at: dt.datetime = NOW - dt.timedelta(days=1),
          extra: tuple[x509.ExtensionType, ...] = ()) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
    if reason is not None:
        builder = builder.add_extension(x509.CRLReason(reason), critical=critical)
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    return builder.build()


def crl(issuer: Party, *, signer: Party | None = None, this_update: dt.datetime = NOW - dt.timedelta(hours=1),
        next_update: dt.datetime | None = NOW + dt.timedelta(days=6), number: int | None = 7,
        number_critical: bool = False, aki: bool = True, entries: tuple[x509.RevokedCertificate, ...] = (),
        extensions: tuple[tuple[x509.ExtensionType, bool], ...] = ()) -> bytes:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject).last_update(this_update))
    if next_update is not None:
        builder = builder.next_update(next_update)
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=number_critical)
    if aki:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                                        critical=False)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    for revoked in entries:
        builder = builder.add_revoked_certificate(revoked)
    if next_update is None:  # cryptography's builder insists on nextUpdate: sign with one, then drop it
        return _without_next_update(builder.next_update(this_update + dt.timedelta(days=1)), signer or issuer)
    return builder.sign((signer or issuer).key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _without_next_update(builder: x509.CertificateRevocationListBuilder, signer: Party) -> bytes:
    """Re-encode the CRL's TBS without nextUpdate (asn1crypto) and sign it again: what the builder refuses."""
    from asn1crypto import crl as acrl

    der = builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    parsed = acrl.CertificateList.load(der)
    tbs = parsed["tbs_cert_list"].copy()
    tbs["next_update"] = None
    signature = signer.key.sign(tbs.dump(force=True), ec.ECDSA(hashes.SHA256()))
    out = acrl.CertificateList({"tbs_cert_list": tbs, "signature_algorithm": parsed["signature_algorithm"],
                                "signature": signature})
    return bytes(out.dump(force=True))


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = b"nonce-0123456789") -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def ocsp_response(pki: Pki, *, signer: Party | None = None, include: list[x509.Certificate] | None = None,
                  status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD, reason: x509.ReasonFlags | None = None,
                  this_update: dt.datetime = NOW - dt.timedelta(hours=1),
                  next_update: dt.datetime | None = NOW + dt.timedelta(days=4),
                  nonce: bytes | None = b"nonce-0123456789", about: Party | None = None,
                  issuer: Party | None = None, by_key: bool = False, **_: Any) -> bytes:
    signer = signer or pki.responder
    about = about or pki.leaf
    issuer = issuer or pki.ca
    revoked_at = NOW - dt.timedelta(days=2) if status == ocsp.OCSPCertStatus.REVOKED else None
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=about.cert, issuer=issuer.cert, algorithm=hashes.SHA256(), cert_status=status, this_update=this_update,
        next_update=next_update, revocation_time=revoked_at, revocation_reason=reason if revoked_at else None)
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH if by_key else ocsp.OCSPResponderEncoding.NAME,
                                   signer.cert)
    if include is None:
        include = [] if signer is issuer else [signer.cert]
    if include:
        builder = builder.certificates(include)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def tamper_signature(der: bytes) -> bytes:
    """The same OCSP response with its signature changed (still an ECDSA-shaped value): it must not verify."""
    from asn1crypto import ocsp as aocsp
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    response = aocsp.OCSPResponse.load(der)
    basic = response["response_bytes"]["response"].parsed
    r, s = decode_dss_signature(basic["signature"].native)
    basic["signature"] = encode_dss_signature(r, s ^ 1)
    response["response_bytes"]["response"].set(basic.dump(force=True))
    return bytes(response.dump(force=True))
