"""A CRL against RFC 5280 5 and the CA/Browser Forum TLS Baseline Requirements (4.9.7, 7.2), as a relying
party would hold the CA that published it to them.

Two kinds, as BR 4.9.7 distinguishes them: a CRL for subscriber certificates (nextUpdate at most 10 days
after thisUpdate, cACompromise not a reason) and a CRL for CA certificates, an ARL (12 months; cACompromise
allowed). A CRL is taken as an ARL when its IssuingDistributionPoint says onlyContainsCACerts, or when the
issuer given is a root (self-issued): a root signs CA certificates only (BR 6.1.7).
"""

from __future__ import annotations

import datetime as dt

from asn1crypto import crl as acrl  # type: ignore[import-untyped, unused-ignore]  # no stubs, no py.typed
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from ..core.errors import Kind, QTSPError
from .findings import ERROR, INFO, WARNING, Finding, Severity

__all__ = ["ARL_MAX", "BR", "CRL_MAX", "RFC_5280", "is_arl_for", "lint_crl"]

RFC_5280 = "IETF RFC 5280 (2008-05)"
BR = "CA/Browser Forum TLS Baseline Requirements v2.0.1"
CRL_MAX = dt.timedelta(days=10)  # BR 4.9.7: subscriber certificates
ARL_MAX = dt.timedelta(days=365)  # BR 4.9.7: "not more than twelve months"
SKEW = dt.timedelta(minutes=5)
EXPIRED_CERTS_ON_CRL = x509.ObjectIdentifier("2.5.29.60")
_NAMES = {EXPIRED_CERTS_ON_CRL: "expiredCertsOnCRL"}  # X.509 (2019) 9.6.2.6; cryptography has no name for it
# BR 7.2.2: the CRL extensions it names; any other is NOT RECOMMENDED (a warning, not an error).
BR_CRL_EXTENSIONS = frozenset({ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.CRL_NUMBER,
                               ExtensionOID.ISSUING_DISTRIBUTION_POINT})
# RFC 5280 5.2: the CRL extensions a relying party processes (a critical one it does not is fatal).
KNOWN_CRL_EXTENSIONS = BR_CRL_EXTENSIONS | {ExtensionOID.DELTA_CRL_INDICATOR, ExtensionOID.FRESHEST_CRL,
                                           ExtensionOID.ISSUER_ALTERNATIVE_NAME, EXPIRED_CERTS_ON_CRL}
# BR 7.2.2 crlEntryExtensions reasonCode: the reasons a subscriber certificate's entry may carry; a CA's adds cACompromise.
SUBSCRIBER_REASONS = frozenset({x509.ReasonFlags.key_compromise, x509.ReasonFlags.affiliation_changed,
                                x509.ReasonFlags.superseded, x509.ReasonFlags.cessation_of_operation,
                                x509.ReasonFlags.privilege_withdrawn})
CA_REASONS = SUBSCRIBER_REASONS | {x509.ReasonFlags.ca_compromise}


class _Findings(list[Finding]):
    def add(self, rule: str, source: str, severity: Severity, message: str) -> None:
        self.append(Finding(rule, source, severity, message))


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_root(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def _extension(crl: x509.CertificateRevocationList, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return crl.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


def _structure(out: _Findings, tbs: acrl.TbsCertList) -> None:
    version = tbs["version"].native
    if version != "v2":
        out.add("crl-version", f"{RFC_5280} 5.1.2.1; {BR} 7.2", ERROR,
                f"the CRL is {version or 'v1'}; it must be v2 (a CRL with extensions is v2, and BR 7.2 requires v2)")
    revoked = tbs["revoked_certificates"]
    if revoked.native is not None and len(revoked) == 0:
        out.add("crl-empty-revoked-certificates", f"{RFC_5280} 5.1.2.6; {BR} 7.2", ERROR,
                "revokedCertificates is present but empty; with no entries it must be absent")


def _issuer(out: _Findings, crl: x509.CertificateRevocationList, tbs: acrl.TbsCertList,
            issuer: x509.Certificate | None) -> None:
    if issuer is None:
        out.add("crl-issuer-not-checked", RFC_5280 + " 6.3.3", INFO,
                "no --issuer given: the signature, the issuer name and the key identifier are not checked")
        return
    raw_subject = issuer.subject.public_bytes()
    if tbs["issuer"].dump() != raw_subject:
        same = crl.issuer == issuer.subject
        out.add("crl-issuer-name", f"{RFC_5280} 5.1.2.3; {BR} 7.2", ERROR,
                f"the CRL issuer '{crl.issuer.rfc4514_string()}' is not byte-for-byte the subject of the CA given"
                + (" (the same name, encoded differently)" if same else f" ('{issuer.subject.rfc4514_string()}')"))
    try:
        valid = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]  # cryptography refuses non-signing keys itself
    except (TypeError, ValueError, UnsupportedAlgorithm):  # an unknown algorithm is no valid signature
        valid = False
    if not valid:
        out.add("crl-signature-invalid", RFC_5280 + " 6.3.3 (g)", ERROR,
                f"the CRL's signature does not verify with the key of '{issuer.subject.rfc4514_string()}'")
    try:
        ku = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.crl_sign:
            out.add("crl-issuer-no-crlsign", RFC_5280 + " 4.2.1.3; 6.3.3 (f)", ERROR,
                    "the issuer's keyUsage lacks cRLSign: it may not sign CRLs")
    except x509.ExtensionNotFound:
        pass
    aki = _extension(crl, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    if aki is not None:
        try:
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            ski = None
        key_id = aki.value.key_identifier  # type: ignore[attr-defined]
        if ski is not None and key_id is not None and key_id != ski:
            out.add("crl-aki-mismatch", RFC_5280 + " 5.2.1", ERROR,
                    "the CRL's authorityKeyIdentifier is not the issuer's subjectKeyIdentifier: another key of this CA")


def _extensions(out: _Findings, crl: x509.CertificateRevocationList) -> None:
    aki = _extension(crl, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    if aki is None:
        out.add("crl-aki-missing", f"{RFC_5280} 5.2.1; {BR} 7.2.2", ERROR, "no authorityKeyIdentifier extension")
    elif aki.critical:
        out.add("crl-aki-critical", f"{BR} 7.2.2", ERROR, "authorityKeyIdentifier is marked critical")
    number = _extension(crl, ExtensionOID.CRL_NUMBER)
    if number is None:
        out.add("crl-number-missing", f"{RFC_5280} 5.2.3; {BR} 7.2.2", ERROR, "no cRLNumber extension")
    else:
        if number.critical:
            out.add("crl-number-critical", f"{RFC_5280} 5.2.3; {BR} 7.2.2", ERROR, "cRLNumber is marked critical")
        value = number.value.crl_number  # type: ignore[attr-defined]
        if value < 0 or value.bit_length() > 159:
            out.add("crl-number-range", f"{RFC_5280} 5.2.3; {BR} 7.2.2", ERROR,
                    f"cRLNumber {value} is outside 0 .. 2^159-1 (at most 20 octets)")
    idp = _extension(crl, ExtensionOID.ISSUING_DISTRIBUTION_POINT)
    if idp is not None and not idp.critical:
        out.add("crl-idp-not-critical", f"{RFC_5280} 5.2.5; {BR} 7.2.2", ERROR,
                "issuingDistributionPoint must be marked critical")
    for ext in crl.extensions:
        if ext.oid not in KNOWN_CRL_EXTENSIONS and ext.critical:
            out.add("crl-unknown-critical-extension", RFC_5280 + " 5.2", ERROR,
                    f"the critical CRL extension {ext.oid.dotted_string} is not one a relying party processes")
        elif ext.oid not in BR_CRL_EXTENSIONS:
            out.add("crl-extension-not-recommended", f"{BR} 7.2.2", WARNING,
                    f"CRL extension {_NAMES.get(ext.oid) or getattr(ext.oid, '_name', None) or ext.oid.dotted_string} "
                    f"({ext.oid.dotted_string}): BR 7.2.2 names AKI, cRLNumber and IDP; any other is NOT RECOMMENDED")


def _window(out: _Findings, crl: x509.CertificateRevocationList, is_arl: bool, at: dt.datetime, *,
            guessed: bool = False) -> None:
    this_update, next_update = crl.last_update_utc, crl.next_update_utc
    if this_update > at + SKEW:
        out.add("crl-this-update-future", RFC_5280 + " 5.1.2.4", ERROR,
                f"thisUpdate {_when(this_update)} is after the time of checking {_when(at)}")
    if next_update is None:
        out.add("crl-next-update-missing", f"{RFC_5280} 5.1.2.5; {BR} 7.2", ERROR,
                "no nextUpdate: a conforming CRL issuer always includes it")
        return
    if next_update <= this_update:
        out.add("crl-next-update-order", RFC_5280 + " 5.1.2.5", ERROR,
                f"nextUpdate {_when(next_update)} is not after thisUpdate {_when(this_update)}")
    limit = ARL_MAX if is_arl else CRL_MAX
    if next_update - this_update > limit:
        kind = "a CRL for CA certificates (12 months)" if is_arl else "a CRL for subscriber certificates (10 days)"
        hint = "" if is_arl or not guessed or next_update - this_update > ARL_MAX else \
            " (a root's CRL for CA certificates may run 12 months: give the root with --issuer)"
        out.add("crl-validity-too-long", f"{BR} 4.9.7", ERROR,
                f"nextUpdate is {(next_update - this_update).total_seconds() / 86400:.2f} days after thisUpdate; "
                f"at most {limit.days} days for {kind}{hint}")
    if next_update < at - SKEW:
        out.add("crl-expired", RFC_5280 + " 6.3.3 (a)", ERROR,
                f"nextUpdate {_when(next_update)} has passed at {_when(at)}: a relying party may not rely on it")


def _entries(out: _Findings, crl: x509.CertificateRevocationList, is_arl: bool, is_delta: bool,
             at: dt.datetime) -> None:
    allowed = CA_REASONS if is_arl else SUBSCRIBER_REASONS
    other_extensions: set[str] = set()
    for entry in crl:
        serial = f"{entry.serial_number:X}"
        if entry.revocation_date_utc > crl.last_update_utc + SKEW:
            out.add("crl-entry-revoked-after-this-update", RFC_5280 + " 5.1.2.6", WARNING,
                    f"entry {serial}: revocationDate {_when(entry.revocation_date_utc)} is after the CRL's thisUpdate")
        for ext in entry.extensions:
            if ext.oid == CRLEntryExtensionOID.CRL_REASON:
                reason = ext.value.reason
                if ext.critical:
                    out.add("crl-reason-critical", f"{RFC_5280} 5.3.1; {BR} 7.2.2", ERROR,
                            f"entry {serial}: reasonCode is marked critical")
                if reason == x509.ReasonFlags.unspecified:
                    out.add("crl-reason-unspecified", f"{RFC_5280} 5.3.1; {BR} 7.2.2", ERROR,
                            f"entry {serial}: reasonCode unspecified(0) is written; the extension must be absent instead")
                elif reason == x509.ReasonFlags.remove_from_crl and not is_delta:
                    out.add("crl-reason-remove-from-full-crl", RFC_5280 + " 5.3.1", ERROR,
                            f"entry {serial}: removeFromCRL appears only in delta CRLs")
                elif reason == x509.ReasonFlags.certificate_hold:
                    out.add("crl-reason-certificate-hold", f"{BR} 4.9.13; 7.2.2", ERROR,
                            f"entry {serial}: certificateHold; BR certificates are never suspended")
                elif reason not in allowed and reason != x509.ReasonFlags.remove_from_crl:
                    out.add("crl-reason-not-allowed", f"{BR} 7.2.2", ERROR,
                            f"entry {serial}: reasonCode {reason.name} is not allowed on a CRL for "
                            f"{'CA' if is_arl else 'subscriber'} certificates (allowed: "
                            f"{', '.join(sorted(r.name for r in allowed))})")
            elif ext.oid == CRLEntryExtensionOID.CERTIFICATE_ISSUER:
                out.add("crl-entry-indirect", f"{RFC_5280} 5.3.3; {BR} 7.2.2", ERROR,
                        f"entry {serial}: certificateIssuer (an indirect CRL), which BR CRLs never are")
            else:
                other_extensions.add(getattr(ext.oid, "_name", None) or ext.oid.dotted_string)
    for name in sorted(other_extensions):
        out.add("crl-entry-extension-not-recommended", f"{BR} 7.2.2", WARNING,
                f"CRL entry extension {name}: BR 7.2.2 names reasonCode only; any other is NOT RECOMMENDED")


def _only_ca(crl: x509.CertificateRevocationList) -> bool:
    idp = _extension(crl, ExtensionOID.ISSUING_DISTRIBUTION_POINT)
    return bool(idp is not None and idp.value.only_contains_ca_certs)  # type: ignore[attr-defined, unused-ignore]


def is_arl_for(crl: x509.CertificateRevocationList, issuer: x509.Certificate | None) -> bool:
    """A CRL for CA certificates (BR 4.9.7's 12-month kind): onlyContainsCACerts, or issued by a root."""
    return _only_ca(crl) or (issuer is not None and _is_root(issuer))


def lint_crl(der: bytes, *, at: dt.datetime, issuer: x509.Certificate | None = None) -> list[Finding]:
    """Every finding of our CRL rules on ``der``; QTSPError(MALFORMED) if it does not parse as a CRL."""
    try:
        crl = x509.load_der_x509_crl(der)
        tbs = acrl.CertificateList.load(der)["tbs_cert_list"]
        tbs.native  # noqa: B018  # parse it all now: a structure error is unusable input, not a finding
        extensions = list(crl.extensions)
    except (ValueError, TypeError, KeyError, AttributeError, x509.InvalidVersion) as exc:  # asn1crypto fails in several ways
        raise QTSPError(Kind.MALFORMED, f"the CRL does not parse: {str(exc)[:160]}") from None
    out = _Findings()
    only_ca = _only_ca(crl)  # the extensions parsed above
    is_arl = is_arl_for(crl, issuer)
    is_delta = any(e.oid == ExtensionOID.DELTA_CRL_INDICATOR for e in extensions)
    out.add("crl-kind", f"{BR} 4.9.7", INFO,
            ("a CRL for CA certificates (ARL: " + ("onlyContainsCACerts" if only_ca else "issued by a root, which signs CA certificates only, BR 6.1.7")
             + ")")
            if is_arl else "a CRL for subscriber certificates" + (" (delta)" if is_delta else ""))
    try:
        _structure(out, tbs)
        _issuer(out, crl, tbs, issuer)
        _extensions(out, crl)
        _window(out, crl, is_arl, at, guessed=issuer is None)
        _entries(out, crl, is_arl, is_delta, at)
    except (ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:  # a part the parsers cannot decode
        raise QTSPError(Kind.MALFORMED, f"the CRL does not parse: {type(exc).__name__}: {str(exc)[:160]}") from None
    return list(out)
