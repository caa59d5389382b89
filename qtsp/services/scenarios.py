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
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from ca_store import repositories as repo
from ca_store.models import Certificate, Revocation

from .. import files
from ..clock import time_travelling, utcnow
from ..core import checks, profiles
from ..core.errors import Kind, QTSPError
from ..core.ocsp import REASONS, SIMULATOR_REASONS
from ..core.types import IssuerId, serial_hex
from ..lint import TWO_QWAC_EKU_CODE, Linter
from . import crl as crl_svc
from . import ocsp as ocsp_svc
from .context import Sandbox
from .authorities import ROOT_ID
from . import scenario_bindings
from . import scenario_certs as make
from . import scenario_requests
from .revocation import dirty_time, published
from .scenario_cas import ACTOR, CA_ROLES, SCENARIOS_CA, SUB_CA, UNLISTED_CA, ScenarioCA, ensure_cas
from .scenario_certs import PROFILE_PREFIX, PSP_ORG_ID, UNKNOWN_CRITICAL_OID, Context, Made, Scenario
from .trusted_list import signer_certificate

__all__ = ["ACTOR", "CA_ROLES", "CATALOGUE", "SCENARIOS_CA", "SUB_CA", "UNLISTED_CA", "Scenario", "ScenarioCA",
           "ensure_cas", "issue", "listing", "names"]
MANIFEST_VERSION = 1




def _catalogue() -> list[Scenario]:
    s = [
        Scenario("valid-qwac", "A correct PSD2 QWAC (PSP_AI, PSP_PI) from a CA/QC service granted in the Trusted List "
                 "with ForWebSiteAuthentication: accept. The control case.", "qwac", "accept", (), "accept", make.plain),
        Scenario("valid-qsealc", "A correct PSD2 QSealC from a granted CA/QC service with ForeSeals: accept.",
                 "qsealc", "accept", (), "accept", make.plain),
        Scenario("expired", "A QWAC that expired weeks ago: reject (expired).", "qwac", "reject",
                 ("expired",), "reject", make.expired),
        Scenario("not-yet-valid", "A QWAC whose notBefore is 30 days ahead: reject (not yet valid).", "qwac", "reject",
                 ("not-yet-valid",), "reject", make.not_yet_valid),
    ]
    for reason in REASONS:
        s.append(Scenario(f"revoked-{reason}", f"A QWAC revoked with reason {reason}; OCSP and the CRL say so: reject "
                          "(revoked). One scenario per reason BR 7.2.2 allows on a subscriber certificate.",
                          "qwac", "reject", ("revoked",), "reject", make.revoked(reason)))
    for reason in SIMULATOR_REASONS:
        s.append(Scenario(f"revoked-{reason}", f"A QWAC revoked with reason {reason}, which BR 7.2.2 keeps off "
                          "subscriber certificates (a real QTSP never sends it); OCSP and the CRL say so anyway: a "
                          "validator must still reject (revoked)" + (", a hold included" if reason == "certificate-hold"
                                                                     else "") + ".",
                          "qwac", "reject", ("revoked",), "reject", make.revoked(reason)))
    s += [
        Scenario("revoked-after-expiry", "A QWAC revoked (keyCompromise) while valid, now expired. Its status is kept "
                 "after expiry: OCSP still answers revoked (archiveCutoff) and the CRL still lists it "
                 "(ExpiredCertsOnCRL). Reject (expired; and revoked, which a validator working as of a time inside "
                 "the validity period must find).", "qwac", "reject", ("expired", "revoked"), "reject",
                 make.revoked_after_expiry),
        Scenario("issuer-not-in-tl", "A QWAC from a CA that chains to the sandbox root but is not a service of the "
                 "Trusted List: RFC 5280 path validation passes; reject as not qualified (issuer not trusted).",
                 "qwac", "reject", ("issuer-not-trusted",), "accept", make.unlisted),
        Scenario("missing-psd2-statement", "A QWAC with the EN 319 412-5 statements but no PSD2 QCStatement: reject "
                 "for PSD2 (no roles, no NCA).", "qwac", "reject", ("missing-psd2-statement",), "accept",
                 make.psd2_change(None)),
        Scenario("role-oid-mismatch", "The PSD2 role OID is PSP_AI (0.4.0.19495.1.3) but its name says PSP_PI: reject "
                 "(TS 119 495 5.1: name and OID must match).", "qwac", "reject", ("role-oid-mismatch",), "accept",
                 make.psd2_change(make.role_mismatch)),
        Scenario("ncaid-malformed", "NCAId 'Belgium/NBB' is not <CC>-<2-8 letters>: reject (TS 119 495 5.2.3).",
                 "qwac", "reject", ("ncaid-malformed",), "accept", make.psd2_change(make.ncaid_malformed)),
        Scenario("ncaid-mismatch", "NCAId DE-BAFIN while organizationIdentifier is PSDBE-NBB-...: reject (the NCA "
                 "that authorised the PSP must be the one the identifier names).", "qwac", "reject",
                 ("ncaid-mismatch",), "accept", make.psd2_change(make.ncaid_mismatch)),
        Scenario("qctype-eseal-on-tls", "A website certificate (serverAuth, QCP-w) whose QcType says eseal: reject "
                 "as a QWAC (EN 319 412-5 4.2.3: a QWAC is of type web).", "qwac", "reject", ("qctype-mismatch",),
                 "accept", make.qctype_eseal_on_tls),
        Scenario("qwac-no-clientauth-mtls", "A QWAC with serverAuth only, presented as a TLS client certificate in "
                 "mutual TLS: reject for that use (no id-kp-clientAuth).", "qwac-client", "reject",
                 ("eku-client-auth-missing",), "reject", make.server_auth_only),
        Scenario("wrong-key-usage", "A QWAC whose keyUsage is nonRepudiation only (no digitalSignature): it cannot "
                 "authenticate a TLS handshake; reject.", "qwac", "reject", ("key-usage",), "reject",
                 make.wrong_key_usage),
        Scenario("unknown-critical-extension", "A QWAC carrying a critical extension no validator knows "
                 f"({UNKNOWN_CRITICAL_OID.dotted_string}): reject (RFC 5280 4.2).", "qwac", "reject",
                 ("unknown-critical-extension",), "reject", make.unknown_critical),
        Scenario("wrong-signature", "A QWAC naming the scenarios CA as issuer (name and AKI) but signed by another "
                 "key: reject (bad signature). OCSP says good: only the signature check catches it.", "qwac",
                 "reject", ("bad-signature",), "reject", make.wrong_signature),
        Scenario("missing-intermediate", "A QWAC from a sub-CA that is neither supplied nor reachable (its caIssuers "
                 "URL is not published): no path to a trust anchor; reject.", "qwac", "reject", ("no-path",),
                 "reject", make.missing_intermediate),
    ]
    return s + scenario_bindings.certificate_scenarios() + scenario_requests.CERTIFICATES  # 2-QWACs (issue 18), QSealCs (issue 19)


CATALOGUE: dict[str, Scenario] = {sc.name: sc for sc in _catalogue()}




# --- issuing --------------------------------------------------------------------------------------


def _lint_findings(linter: Linter, cert: x509.Certificate, sc: Scenario) -> list[dict[str, str | None]]:
    """What the lint gate would have refused: pkilint's ERROR/FATAL findings, then our own checks."""
    profile = {"qsealc": profiles.QSEALC, "2-qwac": profiles.TWO_QWAC}.get(sc.purpose, profiles.QWAC)
    out: list[dict[str, str | None]] = []
    try:
        for f in linter.pkilint_findings(cert.public_bytes(Encoding.DER), profile.lint):
            if f.severity in ("ERROR", "FATAL") and not (profile.is_two_qwac and f.code == TWO_QWAC_EKU_CODE):
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


def _row(cert: x509.Certificate, issuer_id: IssuerId, sc: Scenario, now: dt.datetime) -> Certificate:
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
    """The certificate and binding scenarios selected (all if None), unknown names refused."""
    if not selection:
        return list(CATALOGUE) + list(scenario_bindings.BINDINGS)
    unknown = [n for n in selection if n not in CATALOGUE and n not in scenario_bindings.BINDINGS]
    if unknown:
        raise QTSPError(Kind.NOT_FOUND, f"no scenario named {', '.join(unknown)}; 'qtsp scenarios list' shows them")
    if len(set(selection)) != len(selection):
        raise QTSPError(Kind.MALFORMED, "a scenario is named twice")
    return selection


def issue(sandbox: Sandbox, selection: list[str] | None, out: Path, *, now: dt.datetime | None = None,
          actor: str = ACTOR) -> dict[str, Any]:
    """Issue the selected scenarios (all if None) into ``out``: certificates, keys, CA certificates, and
    ``manifest.json``. Returns the manifest."""
    selected = names(selection)
    bindings = [n for n in selected if n in scenario_bindings.BINDINGS]
    # A binding scenario brings the certificate scenario that signs it.
    chosen = list(dict.fromkeys([n for n in selected if n in CATALOGUE] + scenario_bindings.signers_of(bindings)))
    now = (now or utcnow()).replace(microsecond=0)
    if os.path.lexists(out):
        files.check_own_dir(out)  # not a symlink, nor another user's directory
        if any(out.iterdir()):
            raise QTSPError(Kind.CONFLICT, f"{out} exists and is not an empty directory; refusing to overwrite")
    cas = ensure_cas(sandbox, now)
    ctx = Context(sandbox, now, cas)
    made = {name: CATALOGUE[name].build(ctx, CATALOGUE[name]) for name in chosen}
    findings = {name: _lint_findings(sandbox.linter, m.cert, CATALOGUE[name]) for name, m in made.items()}
    with sandbox.transaction() as session:
        rows = {name: _row(m.cert, m.issuer_id, CATALOGUE[name], now) for name, m in made.items()}
        session.add_all(rows.values())
        session.flush()
        for name, m in made.items():
            if m.revocation is not None:
                reason, revoked_at = m.revocation
                session.add(Revocation(certificate_id=rows[name].id, revoked_at=revoked_at, reason=reason,
                                       requested_by=actor))
                rows[name].status = "revoked"
        session.flush()
        for row in rows.values():
            session.refresh(row)
        ocsp_svc.presign(sandbox, session, list(rows.values()), now)
        for issuer in {m.issuer_id for m in made.values()}:
            repo.mark_crl_dirty(session, issuer, dirty_time(now))
        repo.append_audit_many(session, now, [
            (actor, "scenario.issue", rows[name].serial,
             {"scenario": name, "issuer": m.issuer_id, "verdict": CATALOGUE[name].verdict,
              "revoked": m.revocation[0] if m.revocation else None, "sha256": rows[name].fingerprint_sha256})
            for name, m in made.items()])
    if not time_travelling():  # as of another time, CRLs are never stored: the scheduler publishes them
        for issuer in {m.issuer_id for m in made.values()}:
            crl_svc.generate(sandbox, issuer, now)
    published(sandbox)
    return _write(sandbox, out, now, made, rows, findings, cas, bindings)


def _write(sandbox: Sandbox, out: Path, now: dt.datetime, made: dict[str, Made], rows: dict[str, Certificate],
           findings: dict[str, list[dict[str, str | None]]], cas: dict[IssuerId, ScenarioCA],
           bindings: list[str]) -> dict[str, Any]:
    # Every file new (a file or symlink planted in the directory meanwhile is refused, never followed).
    files.ensure_dir(out / "ca")
    with sandbox.transaction() as session:
        root = x509.load_der_x509_certificate(repo.get_ca(session, ROOT_ID).cert_der)
    files.write_new(out / "ca" / "root.pem", root.public_bytes(Encoding.PEM))
    # The pin a validator verifies the Trusted List against.
    files.write_new(out / "tl-signer.pem", signer_certificate(sandbox).public_bytes(Encoding.PEM))
    for ca_id, ca in cas.items():
        files.write_new(out / "ca" / f"{ca_id}.pem", ca.cert.public_bytes(Encoding.PEM))
    entries = []
    for name, m in made.items():
        sc = CATALOGUE[name]
        files.write_new(out / f"{name}.pem", m.cert.public_bytes(Encoding.PEM))
        # A throwaway test key for this scenario's certificate only.
        files.write_new(out / f"{name}.key", m.key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                   serialization.NoEncryption()), private=True)
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
        # Signed API requests a bank must refuse, with the Berlin Group answer (scenario_requests.py).
        "requests": scenario_requests.manifest_entries(set(made)),
    }
    if bindings:
        manifest["bindings"] = scenario_bindings.write(out, bindings, made, {i: ca.cert for i, ca in cas.items()}, now)
    files.write_new(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


def listing() -> list[dict[str, Any]]:
    return [{"name": sc.name, "purpose": sc.purpose, "verdict": sc.verdict, "reasons": list(sc.reasons),
             "pkix": sc.pkix, "description": sc.description} for sc in CATALOGUE.values()] + scenario_bindings.listing()

