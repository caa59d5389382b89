"""The simulator's catalogue (issue 7): negative and edge-case certificates for testing validators.

Banks must prove that their validators reject what they must reject. Production CAs refuse to make
bad certificates; these are made on purpose, labelled, and never by accident:

* only by the simulator's own CAs (``scenarios-ca``, listed in the sandbox Trusted List;
  ``scenarios-unlisted-ca``, not listed; ``scenarios-sub-ca``, the intermediate the
  missing-intermediate scenario leaves out), never by the CAs of normal issuance;
* past the lint gate on purpose, with what pkilint and our checks would have refused recorded next
  to each certificate in the manifest;
* each with the verdict a correct validator must reach, and its reasons, in a JSON manifest a
  bank's test suite can loop over.

They are stored like any certificate, so OCSP and the CRLs answer for them (revoked ones included).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from sqlalchemy.exc import IntegrityError

from ca_store import repositories as repo
from ca_store.models import Certificate, CertificateAuthority, KeyReference, Revocation

from ..core import builder, checks, oids, profiles
from ..core.errors import Kind, QTSPError
from ..core.keys import generate_private_key, signature_hash
from ..core.names import parse_org_id
from ..core.ocsp import REASONS, SIMULATOR_REASONS
from ..core.psd2 import ROLES, PSD2Attributes, encode_unchecked
from ..core.qcstatements import QCStatements, QcSpec, build_statements
from ..core.serials import new_serial
from ..core.types import serial_hex
from ..lint import default_linter
from ..signers import Signer
from . import crl as crl_svc
from . import ocsp as ocsp_svc
from .context import Sandbox, utcnow
from .hierarchy import ROOT_ID, _key_row, _qtsp_subject, issuer_info, key_label, publish_ca_files
from .revocation import published
from .signing import sign
from .trusted_list import signer_certificate

SCENARIOS_CA, UNLISTED_CA, SUB_CA = "scenarios-ca", "scenarios-unlisted-ca", "scenarios-sub-ca"
CA_ROLES = {SCENARIOS_CA: "scenarios", UNLISTED_CA: "scenarios-unlisted", SUB_CA: "scenarios-sub"}
CA_NAMES = {
    SCENARIOS_CA: "qtsp Sandbox Scenarios CA",
    UNLISTED_CA: "qtsp Sandbox Unlisted Scenarios CA",
    SUB_CA: "qtsp Sandbox Scenarios Sub-CA",
}
PROFILE_PREFIX = "scenario:"
BACKDATE = dt.timedelta(days=2 * 365)  # so that expired scenarios still fall inside their CA's validity
ACTOR = "simulator"
MANIFEST_VERSION = 1

# The fictitious PSP every scenario certificate names.
PSP_NAME = "Scenario Payments SA"
PSP_ORG_ID = "PSDBE-NBB-0999000001"
PSP_NCA = ("National Bank of Belgium", "BE-NBB")
PSP_ROLES = ("PSP_AI", "PSP_PI")
UNKNOWN_CRITICAL_OID = x509.ObjectIdentifier("1.3.6.1.4.1.32473.7.1")  # IANA documentation arc (RFC 5612)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str  # what a correct validator must conclude, and why
    purpose: str  # qwac (TLS server) | qwac-client (mTLS client) | qsealc
    verdict: str  # accept | reject
    reasons: tuple[str, ...]  # the reason codes of `qtsp validate` (qtsp.validation)
    pkix: str  # what an RFC 5280 validator (revocation on, the purpose's EKU/KU) concludes: accept | reject
    build: Callable[[_Context, Scenario], _Made] = field(repr=False, compare=False)


@dataclass
class _Made:
    cert: x509.Certificate
    key: Any
    issuer_id: str
    chain: tuple[str, ...]  # CA ids a relying party is given as intermediates
    revocation: tuple[str, dt.datetime] | None = None  # (reason, revoked_at)


@dataclass
class _CA:
    row: CertificateAuthority
    cert: x509.Certificate
    signer: Signer


class _Context:
    def __init__(self, sandbox: Sandbox, now: dt.datetime, cas: dict[str, _CA]) -> None:
        self.sandbox, self.now, self.cas = sandbox, now, cas

    def issuer(self, ca_id: str, *, ca_issuers_url: str | None = None) -> builder.IssuerInfo:
        info = issuer_info(self.sandbox.config, ca_id, self.cas[ca_id].cert)
        if ca_issuers_url is not None:
            info = builder.IssuerInfo(info.name, info.public_key, info.not_after, ca_issuers_url, info.ocsp_url,
                                      info.crl_url)
        return info


# --- the scenario CAs -------------------------------------------------------------------------


def ensure_cas(sandbox: Sandbox, now: dt.datetime | None = None) -> dict[str, _CA]:
    """The simulator's CAs, made on first use (signed by the sandbox root, which must be online)."""
    now = now or utcnow()
    cas = _load(sandbox)
    if len(cas) == len(CA_ROLES):
        return cas
    if cas:
        raise QTSPError(Kind.CONFLICT, f"the simulator CAs are half there ({', '.join(sorted(cas))}); the store is inconsistent")
    backend = sandbox.backend()
    with sandbox.transaction() as session:
        root = repo.get_ca(session, ROOT_ID)
        root_ref = root.key.ref
    root_cert = x509.load_der_x509_certificate(root.cert_der)
    root_signer = sandbox.backend(root_ref).signer(root_ref)
    cfg = sandbox.config
    start = now - BACKDATE
    made: dict[str, tuple[CertificateAuthority, KeyReference, KeyReference, x509.Certificate, Signer]] = {}
    for ca_id, parent in ((SCENARIOS_CA, ROOT_ID), (UNLISTED_CA, ROOT_ID), (SUB_CA, SCENARIOS_CA)):
        profile = profiles.SCENARIOS_SUB_CA if ca_id == SUB_CA else profiles.SCENARIOS_CA
        parent_cert, parent_signer = (root_cert, root_signer) if parent == ROOT_ID else made[parent][3:5]
        info = backend.generate(key_label(cfg, ca_id), cfg.ca_key_type)
        signer = backend.signer(info.ref)
        tbs = builder.build(profile, subject=_qtsp_subject(cfg, CA_NAMES[ca_id]), public_key=info.public_key,
                            serial=new_serial(), now=start, issuer=issuer_info(cfg, parent, parent_cert))
        cert = sign(tbs, parent_signer)
        ocsp_info = backend.generate(key_label(cfg, f"{ca_id}-ocsp"), cfg.ocsp_key_type)
        # Backdated with the CA, so that OCSP answers as of a past time (time travel) verify too.
        ocsp_profile = profiles.OCSP_RESPONDER.with_validity(BACKDATE.days + cfg.ocsp_validity_days)
        ocsp_tbs = builder.build(ocsp_profile, subject=_qtsp_subject(cfg, f"{CA_NAMES[ca_id]} OCSP Responder"[:64]),
                                 public_key=ocsp_info.public_key, serial=new_serial(), now=start,
                                 issuer=issuer_info(cfg, ca_id, cert))
        ocsp_cert = sign(ocsp_tbs, signer)
        row = CertificateAuthority(
            id=ca_id, parent_id=parent, role=CA_ROLES[ca_id], profile=profile.name,
            subject=cert.subject.rfc4514_string(), cert_der=cert.public_bytes(Encoding.DER),
            serial=serial_hex(cert.serial_number), not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc, ocsp_responder_der=ocsp_cert.public_bytes(Encoding.DER), created_at=now,
        )
        made[ca_id] = (row, _key_row(info, f"ca:{ca_id}", now), _key_row(ocsp_info, f"ocsp:{ca_id}", now), cert, signer)
    try:
        with sandbox.transaction() as session:
            for ca_id, (row, key, ocsp_key, _cert, _signer) in made.items():
                row.key_id = repo.add_key(session, key).id
                row.ocsp_key_id = repo.add_key(session, ocsp_key).id
                repo.add_ca(session, row)
                repo.append_audit(session, at=now, actor=ACTOR, action="ca.create", subject=ca_id,
                                  details={"serial": row.serial, "subject": row.subject, "key": key.ref,
                                           "profile": row.profile, "simulator": True})
    except IntegrityError:
        pass  # another process made them first: use theirs (ours were never committed)
    cas = _load(sandbox)
    publish_ca_files(sandbox, {ca_id: ca.cert for ca_id, ca in cas.items() if ca_id != SUB_CA})
    published(sandbox)  # OCSP workers pick up the new issuers
    return cas


def _load(sandbox: Sandbox) -> dict[str, _CA]:
    out = {}
    with sandbox.transaction() as session:
        for ca in repo.list_cas(session):
            if ca.id in CA_ROLES:
                session.expunge(ca)
                out[ca.id] = ca
    return {ca_id: _CA(ca, x509.load_der_x509_certificate(ca.cert_der), sandbox.backend(ca.key.ref).signer(ca.key.ref))
            for ca_id, ca in out.items()}


# --- building blocks ------------------------------------------------------------------------------


def _qc(qc_type: str, cfg: Any, *, sscd: bool = False) -> QcSpec:
    return QcSpec(qc_type=qc_type, pds=cfg.pds, psd2=PSD2Attributes(PSP_ROLES, *PSP_NCA), sscd=sscd)


def _template(ctx: _Context, sc: Scenario, *, issuer_id: str = SCENARIOS_CA, start: dt.datetime | None = None,
              profile: profiles.Profile | None = None, ca_issuers_url: str | None = None) -> tuple[x509.Certificate, Any]:
    """A regular certificate of the scenario's kind, signed with a throwaway key: the starting point
    every scenario then changes in exactly one way."""
    cfg = ctx.sandbox.config
    if profile is None:
        profile = profiles.QSEALC.with_validity(cfg.qsealc_validity_days) if sc.purpose == "qsealc" else profiles.QWAC
    key = generate_private_key(cfg.subscriber_key_type)
    org = parse_org_id(PSP_ORG_ID)
    data = builder.SubjectData(organization=PSP_NAME, country="BE", org_id=org, locality="Brussels",
                               registration_number="0999000001")
    dns = (f"{sc.name}.scenarios.localtest.me",) if profile.san else ()
    qc = _qc(profile.qc_type or oids.QCT_WEB, cfg, sscd=profile.qc_sscd)
    tbs = builder.build(profile, subject=builder.subject_name(profile.shape, data), public_key=key.public_key(),
                        serial=new_serial(), now=start or ctx.now, issuer=ctx.issuer(issuer_id, ca_issuers_url=ca_issuers_url),
                        dns_names=dns, org_id=org, qc=qc)
    throwaway = generate_private_key(cfg.ca_key_type)
    return tbs.sign(throwaway, signature_hash(throwaway)), key  # type: ignore[arg-type]


def _rebuild(template: x509.Certificate, signer: Any, *, replace: dict[x509.ObjectIdentifier, tuple[Any, bool]] | None = None,
             drop: frozenset[x509.ObjectIdentifier] = frozenset(), add: list[tuple[Any, bool]] | None = None) -> x509.Certificate:
    """The template with extensions replaced, dropped or added (in place, order kept), signed by ``signer``."""
    replace = replace or {}
    b = (x509.CertificateBuilder().subject_name(template.subject).issuer_name(template.issuer)
         .public_key(template.public_key()).serial_number(template.serial_number)  # type: ignore[arg-type]
         .not_valid_before(template.not_valid_before_utc).not_valid_after(template.not_valid_after_utc))
    for ext in template.extensions:
        if ext.oid in drop:
            continue
        value, critical = replace.get(ext.oid, (ext.value, ext.critical))
        b = b.add_extension(value, critical=critical)
    for value, critical in add or []:
        b = b.add_extension(value, critical=critical)
    return b.sign(signer, signature_hash(signer))


def _statements(template: x509.Certificate, change: Callable[[list[Any]], list[Any]]) -> tuple[Any, bool]:
    raw = template.extensions.get_extension_for_oid(oids.QC_STATEMENTS).value.value  # type: ignore[attr-defined]
    statements = change(list(QCStatements.load(raw)))
    return x509.UnrecognizedExtension(oids.QC_STATEMENTS, QCStatements(statements).dump()), False


def _swap_psd2(statements: list[Any], replacement: Any | None) -> list[Any]:
    out = [s for s in statements if s["statement_id"].dotted != oids.PSD2_STATEMENT]
    return out + ([replacement] if replacement is not None else [])


# --- the builders ---------------------------------------------------------------------------------


def _plain(ctx: _Context, sc: Scenario) -> _Made:
    template, key = _template(ctx, sc)
    return _Made(_rebuild(template, ctx.cas[SCENARIOS_CA].signer), key, SCENARIOS_CA, (SCENARIOS_CA,))


def _expired(ctx: _Context, sc: Scenario) -> _Made:
    # QWAC lifetimes are 200 or 398 days by date of issue (BR 6.3.2): 460 days back is past either.
    template, key = _template(ctx, sc, start=ctx.now - dt.timedelta(days=460))
    return _Made(_rebuild(template, ctx.cas[SCENARIOS_CA].signer), key, SCENARIOS_CA, (SCENARIOS_CA,))


def _not_yet_valid(ctx: _Context, sc: Scenario) -> _Made:
    template, key = _template(ctx, sc, start=ctx.now + dt.timedelta(days=30))
    return _Made(_rebuild(template, ctx.cas[SCENARIOS_CA].signer), key, SCENARIOS_CA, (SCENARIOS_CA,))


def _revoked(reason: str) -> Callable[[_Context, Scenario], _Made]:
    def build(ctx: _Context, sc: Scenario) -> _Made:
        made = _plain(ctx, sc)
        made.revocation = (reason, ctx.now.replace(microsecond=0))
        return made
    return build


def _revoked_after_expiry(ctx: _Context, sc: Scenario) -> _Made:
    made = _expired(ctx, sc)
    made.revocation = ("key-compromise", (made.cert.not_valid_before_utc + dt.timedelta(days=30)).replace(microsecond=0))
    return made


def _unlisted(ctx: _Context, sc: Scenario) -> _Made:
    template, key = _template(ctx, sc, issuer_id=UNLISTED_CA)
    return _Made(_rebuild(template, ctx.cas[UNLISTED_CA].signer), key, UNLISTED_CA, (UNLISTED_CA,))


def _psd2_change(replacement: Callable[[], Any] | None) -> Callable[[_Context, Scenario], _Made]:
    def build(ctx: _Context, sc: Scenario) -> _Made:
        template, key = _template(ctx, sc)
        new = replacement() if replacement else None
        ext = _statements(template, lambda st: _swap_psd2(st, new))
        cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, replace={oids.QC_STATEMENTS: ext})
        return _Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))
    return build


def _qctype_eseal_on_tls(ctx: _Context, sc: Scenario) -> _Made:
    template, key = _template(ctx, sc)
    eseal = build_statements(_qc(oids.QCT_ESEAL, ctx.sandbox.config))
    by_id = {s["statement_id"].dotted: s for s in eseal}

    def change(statements: list[Any]) -> list[Any]:
        return [by_id[oids.QCS_TYPE] if s["statement_id"].dotted == oids.QCS_TYPE else s for s in statements]

    cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, replace={oids.QC_STATEMENTS: _statements(template, change)})
    return _Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))


def _server_auth_only(ctx: _Context, sc: Scenario) -> _Made:
    template, key = _template(ctx, sc)
    eku = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, replace={ExtensionOID.EXTENDED_KEY_USAGE: eku})
    return _Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))


def _wrong_key_usage(ctx: _Context, sc: Scenario) -> _Made:
    template, key = _template(ctx, sc)
    ku = x509.KeyUsage(digital_signature=False, content_commitment=True, key_encipherment=False, data_encipherment=False,
                       key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, replace={ExtensionOID.KEY_USAGE: (ku, True)})
    return _Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))


def _unknown_critical(ctx: _Context, sc: Scenario) -> _Made:
    template, key = _template(ctx, sc)
    ext = x509.UnrecognizedExtension(UNKNOWN_CRITICAL_OID, b"\x05\x00")  # NULL
    cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, add=[(ext, True)])
    return _Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))


def _wrong_signature(ctx: _Context, sc: Scenario) -> _Made:
    template, key = _template(ctx, sc)
    impostor = generate_private_key(ctx.sandbox.config.ca_key_type)  # the issuer's name and AKI, another key
    return _Made(_rebuild(template, impostor), key, SCENARIOS_CA, (SCENARIOS_CA,))


def _missing_intermediate(ctx: _Context, sc: Scenario) -> _Made:
    # caIssuers points nowhere, so that AIA chasing cannot fill the gap either.
    missing = f"{ctx.sandbox.config.base}/ca/not-published.der"
    template, key = _template(ctx, sc, issuer_id=SUB_CA, ca_issuers_url=missing)
    return _Made(_rebuild(template, ctx.cas[SUB_CA].signer), key, SUB_CA, ())


def _role_mismatch() -> Any:
    return encode_unchecked([(ROLES["PSP_AI"], "PSP_PI")], *PSP_NCA)


def _ncaid_malformed() -> Any:
    return encode_unchecked([(ROLES[r], r) for r in PSP_ROLES], PSP_NCA[0], "Belgium/NBB")


def _ncaid_mismatch() -> Any:
    return encode_unchecked([(ROLES[r], r) for r in PSP_ROLES], "Federal Financial Supervisory Authority", "DE-BAFIN")


def _catalogue() -> list[Scenario]:
    s = [
        Scenario("valid-qwac", "A correct PSD2 QWAC (PSP_AI, PSP_PI) from a CA/QC service granted in the Trusted List "
                 "with ForWebSiteAuthentication: accept. The control case.", "qwac", "accept", (), "accept", _plain),
        Scenario("valid-qsealc", "A correct PSD2 QSealC from a granted CA/QC service with ForeSeals: accept.",
                 "qsealc", "accept", (), "accept", _plain),
        Scenario("expired", "A QWAC that expired weeks ago: reject (expired).", "qwac", "reject",
                 ("expired",), "reject", _expired),
        Scenario("not-yet-valid", "A QWAC whose notBefore is 30 days ahead: reject (not yet valid).", "qwac", "reject",
                 ("not-yet-valid",), "reject", _not_yet_valid),
    ]
    for reason in REASONS:
        s.append(Scenario(f"revoked-{reason}", f"A QWAC revoked with reason {reason}; OCSP and the CRL say so: reject "
                          "(revoked). One scenario per reason BR 7.2.2 allows on a subscriber certificate.",
                          "qwac", "reject", ("revoked",), "reject", _revoked(reason)))
    for reason in SIMULATOR_REASONS:
        s.append(Scenario(f"revoked-{reason}", f"A QWAC revoked with reason {reason}, which BR 7.2.2 keeps off "
                          "subscriber certificates (a real QTSP never sends it); OCSP and the CRL say so anyway: a "
                          "validator must still reject (revoked)" + (", a hold included" if reason == "certificate-hold"
                                                                     else "") + ".",
                          "qwac", "reject", ("revoked",), "reject", _revoked(reason)))
    s += [
        Scenario("revoked-after-expiry", "A QWAC revoked (keyCompromise) while valid, now expired. Its status is kept "
                 "after expiry: OCSP still answers revoked (archiveCutoff) and the CRL still lists it "
                 "(ExpiredCertsOnCRL). Reject (expired; and revoked, which a validator working as of a time inside "
                 "the validity period must find).", "qwac", "reject", ("expired", "revoked"), "reject",
                 _revoked_after_expiry),
        Scenario("issuer-not-in-tl", "A QWAC from a CA that chains to the sandbox root but is not a service of the "
                 "Trusted List: RFC 5280 path validation passes; reject as not qualified (issuer not trusted).",
                 "qwac", "reject", ("issuer-not-trusted",), "accept", _unlisted),
        Scenario("missing-psd2-statement", "A QWAC with the EN 319 412-5 statements but no PSD2 QCStatement: reject "
                 "for PSD2 (no roles, no NCA).", "qwac", "reject", ("missing-psd2-statement",), "accept",
                 _psd2_change(None)),
        Scenario("role-oid-mismatch", "The PSD2 role OID is PSP_AI (0.4.0.19495.1.3) but its name says PSP_PI: reject "
                 "(TS 119 495 5.1: name and OID must match).", "qwac", "reject", ("role-oid-mismatch",), "accept",
                 _psd2_change(_role_mismatch)),
        Scenario("ncaid-malformed", "NCAId 'Belgium/NBB' is not <CC>-<2-8 letters>: reject (TS 119 495 5.2.3).",
                 "qwac", "reject", ("ncaid-malformed",), "accept", _psd2_change(_ncaid_malformed)),
        Scenario("ncaid-mismatch", "NCAId DE-BAFIN while organizationIdentifier is PSDBE-NBB-...: reject (the NCA "
                 "that authorised the PSP must be the one the identifier names).", "qwac", "reject",
                 ("ncaid-mismatch",), "accept", _psd2_change(_ncaid_mismatch)),
        Scenario("qctype-eseal-on-tls", "A website certificate (serverAuth, QCP-w) whose QcType says eseal: reject "
                 "as a QWAC (EN 319 412-5 4.2.3: a QWAC is of type web).", "qwac", "reject", ("qctype-mismatch",),
                 "accept", _qctype_eseal_on_tls),
        Scenario("qwac-no-clientauth-mtls", "A QWAC with serverAuth only, presented as a TLS client certificate in "
                 "mutual TLS: reject for that use (no id-kp-clientAuth).", "qwac-client", "reject",
                 ("eku-client-auth-missing",), "reject", _server_auth_only),
        Scenario("wrong-key-usage", "A QWAC whose keyUsage is nonRepudiation only (no digitalSignature): it cannot "
                 "authenticate a TLS handshake; reject.", "qwac", "reject", ("key-usage",), "reject",
                 _wrong_key_usage),
        Scenario("unknown-critical-extension", "A QWAC carrying a critical extension no validator knows "
                 f"({UNKNOWN_CRITICAL_OID.dotted_string}): reject (RFC 5280 4.2).", "qwac", "reject",
                 ("unknown-critical-extension",), "reject", _unknown_critical),
        Scenario("wrong-signature", "A QWAC naming the scenarios CA as issuer (name and AKI) but signed by another "
                 "key: reject (bad signature). OCSP says good: only the signature check catches it.", "qwac",
                 "reject", ("bad-signature",), "reject", _wrong_signature),
        Scenario("missing-intermediate", "A QWAC from a sub-CA that is neither supplied nor reachable (its caIssuers "
                 "URL is not published): no path to a trust anchor; reject.", "qwac", "reject", ("no-path",),
                 "reject", _missing_intermediate),
    ]
    return s


CATALOGUE: dict[str, Scenario] = {sc.name: sc for sc in _catalogue()}


# --- issuing --------------------------------------------------------------------------------------


def _lint_findings(cert: x509.Certificate, sc: Scenario) -> list[dict[str, str | None]]:
    """What the lint gate would have refused: pkilint's ERROR/FATAL findings, then our own checks."""
    profile = profiles.QSEALC if sc.purpose == "qsealc" else profiles.QWAC
    linter = default_linter()
    out: list[dict[str, str | None]] = []
    try:
        for f in linter.pkilint_findings(cert.public_bytes(Encoding.DER), profile.lint):
            if f.severity in ("ERROR", "FATAL"):
                out.append({"source": "pkilint", "code": f.code, "severity": f.severity, "message": f.message})
    except Exception as exc:  # pkilint cannot decode it at all: that is the finding
        out.append({"source": "pkilint", "code": "decoding-failed", "severity": "FATAL",
                    "message": f"{type(exc).__name__}: {exc}"[:300]})
    try:
        problems = checks.check_certificate(cert, profile)
    except QTSPError as exc:  # a statement our decoder refuses outright
        problems = [(f"qtsp.{exc.kind.value}", exc.detail)]
    out += [{"source": "qtsp", "code": code, "severity": "ERROR", "message": message} for code, message in problems]
    return out


def _row(cert: x509.Certificate, issuer_id: str, sc: Scenario, now: dt.datetime) -> Certificate:
    der = cert.public_bytes(Encoding.DER)
    try:
        dns = ",".join(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ""
    return Certificate(
        issuer_id=issuer_id, serial=serial_hex(cert.serial_number), profile=f"{PROFILE_PREFIX}{sc.name}",
        subject=cert.subject.rfc4514_string(), org_id=PSP_ORG_ID, nca_id=None, roles=None, dns_names=dns or None,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(), der=der, status="good", created_at=now,
    )


def names(selection: list[str] | None) -> list[str]:
    if not selection:
        return list(CATALOGUE)
    unknown = [n for n in selection if n not in CATALOGUE]
    if unknown:
        raise QTSPError(Kind.NOT_FOUND, f"no scenario named {', '.join(unknown)}; 'qtsp scenarios list' shows them")
    if len(set(selection)) != len(selection):
        raise QTSPError(Kind.MALFORMED, "a scenario is named twice")
    return selection


def issue(sandbox: Sandbox, selection: list[str] | None, out: Path, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Issue the selected scenarios (all if None) into ``out``: certificates, keys, CA certificates, and
    ``manifest.json``. Returns the manifest."""
    chosen = names(selection)
    now = (now or utcnow()).replace(microsecond=0)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise QTSPError(Kind.CONFLICT, f"{out} exists and is not an empty directory; refusing to overwrite")
    cas = ensure_cas(sandbox, now)
    ctx = _Context(sandbox, now, cas)
    made = {name: CATALOGUE[name].build(ctx, CATALOGUE[name]) for name in chosen}
    findings = {name: _lint_findings(m.cert, CATALOGUE[name]) for name, m in made.items()}
    with sandbox.transaction() as session:
        rows = {name: _row(m.cert, m.issuer_id, CATALOGUE[name], now) for name, m in made.items()}
        session.add_all(rows.values())
        session.flush()
        for name, m in made.items():
            if m.revocation is not None:
                reason, revoked_at = m.revocation
                session.add(Revocation(certificate_id=rows[name].id, revoked_at=revoked_at, reason=reason,
                                       requested_by=ACTOR))
                rows[name].status = "revoked"
        session.flush()
        for row in rows.values():
            session.refresh(row)
        ocsp_svc.presign(sandbox, session, list(rows.values()), now)
        for issuer in {m.issuer_id for m in made.values()}:
            repo.mark_crl_dirty(session, issuer, now)
        repo.append_audit_many(session, now, [
            (ACTOR, "scenario.issue", rows[name].serial,
             {"scenario": name, "issuer": m.issuer_id, "verdict": CATALOGUE[name].verdict,
              "revoked": m.revocation[0] if m.revocation else None})
            for name, m in made.items()])
    for issuer in {m.issuer_id for m in made.values()}:
        crl_svc.generate(sandbox, issuer, now)
    published(sandbox)
    return _write(sandbox, out, now, made, rows, findings, cas)


def _write(sandbox: Sandbox, out: Path, now: dt.datetime, made: dict[str, _Made], rows: dict[str, Certificate],
           findings: dict[str, list[dict[str, str | None]]], cas: dict[str, _CA]) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ca").mkdir(exist_ok=True)
    with sandbox.transaction() as session:
        root = x509.load_der_x509_certificate(repo.get_ca(session, ROOT_ID).cert_der)
    (out / "ca" / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    # The pin a validator verifies the Trusted List against.
    (out / "tl-signer.pem").write_bytes(signer_certificate(sandbox).public_bytes(Encoding.PEM))
    for ca_id, ca in cas.items():
        (out / "ca" / f"{ca_id}.pem").write_bytes(ca.cert.public_bytes(Encoding.PEM))
    entries = []
    for name, m in made.items():
        sc = CATALOGUE[name]
        (out / f"{name}.pem").write_bytes(m.cert.public_bytes(Encoding.PEM))
        key_path = out / f"{name}.key"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:  # a throwaway test key for this scenario's certificate only
            fh.write(m.key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        entries.append({
            "name": name,
            "description": sc.description,
            "purpose": sc.purpose,
            "expected": {"verdict": sc.verdict, "reasons": list(sc.reasons)},
            "pkix": sc.pkix,
            "certificate": f"{name}.pem",
            "key": f"{name}.key",
            "chain": [f"ca/{ca_id}.pem" for ca_id in m.chain],
            "issuer": m.issuer_id,
            "serial": rows[name].serial,
            "not_before": m.cert.not_valid_before_utc.isoformat(),
            "not_after": m.cert.not_valid_after_utc.isoformat(),
            "revocation": None if m.revocation is None else {"reason": m.revocation[0],
                                                             "revoked_at": m.revocation[1].isoformat()},
            "lint_findings": findings[name],
        })
    manifest = {
        "version": MANIFEST_VERSION,
        "generated_at": now.isoformat(),
        "note": "Deliberately defective certificates from the qtsp simulator: they skip the lint gate on "
                "purpose. 'expected' is what a correct PSD2 validator concludes at generated_at; 'pkix' is what a "
                "plain RFC 5280 validator with revocation checking concludes, anchored at ca/root.pem.",
        "trusted_list": sandbox.config.trusted_list_url,
        "trusted_list_signer": "tl-signer.pem",
        "trust_anchor": "ca/root.pem",
        "scenarios": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def listing() -> list[dict[str, Any]]:
    return [{"name": sc.name, "purpose": sc.purpose, "verdict": sc.verdict, "reasons": list(sc.reasons),
             "pkix": sc.pkix, "description": sc.description} for sc in CATALOGUE.values()]
