"""The certificate ceremonies: root, intermediate, ocsp-signer, crl (the ARL), root-rollover.

Certificates come from qtsp's own profiles and builder (``qtsp.core``), are linted on a
throwaway-key copy before the ceremony key signs (``qtsp.services.signing.lint``), and linted
again, signature checked, after it signed. Each returns the ``result`` its transcript closes with,
which ``qtsp ceremony import`` reads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from qtsp.core import builder, crl as core_crl, profiles
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import PublicKey, load_csr, supported_public_key
from qtsp.core.profiles import LintTarget, Profile
from qtsp.core.serials import new_serial
from qtsp.core.types import IssuerId, parse_serial
from qtsp.services import signing
from qtsp.services.authorities import ca_subject, issuer_info

from . import backends
from .checks import identity, read_certificate, read_public_key
from .custody import run_backup, run_restore
from .steps import Run, StepResult, cert_details, key_entry

ROLES = {"root-ca": "root", "qwac-issuing-ca": "qwac", "qseal-issuing-ca": "qseal"}


# A link certificate: a root's subject and key, certified by the other root (BR 7.1.2.2, a
# cross-certified subordinate CA of the same operator: anyPolicy allowed, 7.1.2.2.6).
LINK = replace(profiles.ROOT_CA, name="root-link", description="Link certificate between two roots (BR 7.1.2.2)",
               lint=LintTarget.CABF_CROSS_CA, aia=True, crl_dp=True,
               policies=(x509.ObjectIdentifier("2.5.29.32.0"),))


def _spki(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def open_signing_key(run: Run, issuer_cert: x509.Certificate) -> Any:
    """Step: open the key that signs, and check it is the key of ``issuer_cert``."""
    spec = run.cfg["signing-key"]
    ref = backends.key_ref(spec)
    backend = backends.open_backend(spec["backend"], run.secret)

    def action() -> StepResult:
        signer = backend.signer(ref)
        if _spki(signer.public_key()) != _spki(issuer_cert.public_key()):
            raise QTSPError(Kind.POLICY, f"{ref} is not the key of the issuer certificate {issuer_cert.subject.rfc4514_string()}")
        run.ceremony_signer = signer
        return StepResult(signer, inputs={"issuer-certificate": run.input_entry(run.cfg["issuer-certificate"])},
                          keys=[key_entry("signing", ref, signer.public_key(), ceremony_key=True,
                                          attributes=backends.attributes(backend, ref))],
                          details={"issuer": cert_details(issuer_cert)})

    return run.step("open-signing-key", f"Open the signing key {ref}", action,
                    show=[f"in {backends.describe(spec['backend'])}", f"certified by {issuer_cert.subject.rfc4514_string()}"])


def generate_key(run: Run, spec: dict[str, Any], role: str, *, ceremony_key: bool) -> tuple[str, PublicKey]:
    backend = backends.open_backend(spec["backend"], run.secret)

    def action() -> StepResult:
        info = backends.generate(backend, spec)
        if ceremony_key:
            run.ceremony_signer = backend.signer(info.ref)
        return StepResult((info.ref, info.public_key),
                          keys=[key_entry(role, info.ref, info.public_key, ceremony_key=ceremony_key,
                                          attributes=backends.attributes(backend, info.ref))])

    extra = " (wrappable by a trusted key only, for backup)" if spec["backup"] else ""
    return run.step(f"generate-{role}-key", f"Generate the {role} key {spec['label']!r} ({spec['type']})", action,
                    show=[f"in {backends.describe(spec['backend'])}{extra}"])


def subject_key(run: Run, role: str) -> tuple[str | None, PublicKey]:
    """The subordinate's key: generated here, or read from a CSR or a public key file."""
    cfg = run.cfg
    if cfg.get("key") is not None:
        return generate_key(run, cfg["key"], role, ceremony_key=False)
    source = "csr" if cfg.get("csr") is not None else "public-key"

    def action() -> StepResult:
        data = cfg[source]
        public = supported_public_key(load_csr(data.read_bytes()).public_key() if source == "csr" else read_public_key(data))
        return StepResult(public, inputs={source: run.input_entry(data)},
                          keys=[key_entry(role, cfg.get("key-ref"), public)])

    public = run.step(f"read-{role}-key", f"Read the {role} public key from {cfg[source].name}", action)
    return cfg.get("key-ref"), public


def certify(run: Run, name: str, profile: Profile, tbs: x509.CertificateBuilder, signer: Any,
            issuer_cert: x509.Certificate | None, output: str) -> x509.Certificate:
    """Two steps: lint the template on a throwaway key; then sign, check, lint again and write."""

    def lint_before() -> StepResult:
        signing.lint(tbs, signer, profile, run.linter)
        return StepResult(details={"profile": profile.name, "lint_before": "clean (pkilint + qtsp checks)"})

    run.step(f"lint-{name}", f"Lint the {name} certificate ({profile.name}) signed with a throwaway key", lint_before)

    def sign() -> StepResult:
        cert = signing.sign(tbs, signer)
        cert.verify_directly_issued_by(issuer_cert or cert)
        run.linter.require_clean(cert, profile)
        return StepResult(cert, outputs=[run.output(output, _pem(cert))],
                          details={**cert_details(cert), "profile": profile.name, "lint_after": "clean"})

    return run.step(f"sign-{name}", f"Sign the {name} certificate with {signer.key_ref}", sign)


def _validity(profile: Profile, days: int) -> Profile:
    return profile.with_validity(days)


def root(run: Run) -> dict[str, Any]:
    cfg = run.cfg
    ref, public = generate_key(run, cfg["key"], "root", ceremony_key=True)
    profile = _validity(profiles.ROOT_CA, cfg["certificate"]["validity-days"])
    subject = ca_subject(identity(cfg), cfg["subject"]["common-name"])
    tbs = builder.build(profile, subject=subject, public_key=public, serial=new_serial(), now=run.now, issuer=None)
    certify(run, "root", profile, tbs, run.ceremony_signer, None, "certificate")
    run.step("write-public-key", "Write the root public key", lambda: StepResult(outputs=[run.output(
        "public-key", public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))]))
    return {"kind": "ca", "ca_id": cfg["certificate"]["ca-id"], "parent_id": None, "role": "root", "profile": profile.name,
            "certificate": run.writer.relative(cfg["outputs"]["certificate"]), "key_ref": ref}


def _subordinate(run: Run, profile: Profile, role: str) -> tuple[x509.Certificate, str | None]:
    cfg = run.cfg
    issuer_cert = read_certificate(cfg["issuer-certificate"], "issuer-certificate")
    signer = open_signing_key(run, issuer_cert)
    ref, public = subject_key(run, role)
    ident = identity(cfg)
    issuer_id = IssuerId(cfg["certificate"]["issuer-id"])
    tbs = builder.build(profile.with_validity(cfg["certificate"]["validity-days"]),
                        subject=ca_subject(ident, cfg["subject"]["common-name"]), public_key=public,
                        serial=new_serial(), now=run.now, issuer=issuer_info(ident, issuer_id, issuer_cert))
    cert = certify(run, role, profile.with_validity(cfg["certificate"]["validity-days"]), tbs, signer, issuer_cert,
                   "certificate")
    return cert, ref


def intermediate(run: Run) -> dict[str, Any]:
    cfg = run.cfg
    profile = profiles.get_profile(cfg["certificate"]["profile"])
    _, ref = _subordinate(run, profile, "issuing-ca")
    return {"kind": "ca", "ca_id": cfg["certificate"]["ca-id"], "parent_id": cfg["certificate"]["issuer-id"],
            "role": ROLES[profile.name], "profile": profile.name, "base_url": cfg["certificate"]["base-url"],
            "certificate": run.writer.relative(cfg["outputs"]["certificate"]), "key_ref": ref}


def ocsp_signer(run: Run) -> dict[str, Any]:
    cfg = run.cfg
    _, ref = _subordinate(run, profiles.OCSP_RESPONDER, "ocsp")
    return {"kind": "ocsp", "for_ca": cfg["certificate"]["issuer-id"], "key_ref": ref,
            "certificate": run.writer.relative(cfg["outputs"]["certificate"])}


def _check_crl(run: Run, der: bytes, issuer_cert: x509.Certificate, number: int, public: PublicKey | None) -> None:
    findings = run.linter.arl_findings(der)  # pkilint's CRL linter, BR profile, ARL type (lint_crl -t ARL -p BR)
    if findings:
        raise QTSPError(Kind.LINT, f"pkilint refused the ARL: {', '.join(findings)}", findings=findings)
    crl = x509.load_der_x509_crl(der)
    if crl.issuer.public_bytes() != issuer_cert.subject.public_bytes():
        raise QTSPError(Kind.LINT, "the CRL issuer differs from the CA subject (RFC 5280 5.1.2.3)")
    if crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number != number:
        raise QTSPError(Kind.LINT, "the CRL carries the wrong CRLNumber")
    if crl.next_update_utc is None or crl.next_update_utc - crl.last_update_utc > dt.timedelta(days=366):
        raise QTSPError(Kind.LINT, "an ARL's nextUpdate is at most 12 months after thisUpdate (BR 4.9.7)")
    if public is not None and not crl.is_signature_valid(public):
        raise QTSPError(Kind.INTEGRITY, "the CRL signature does not verify against the issuer's key")


def crl(run: Run) -> dict[str, Any]:
    cfg, spec = run.cfg, run.cfg["crl"]
    issuer_cert = read_certificate(cfg["issuer-certificate"], "issuer-certificate")
    signer = open_signing_key(run, issuer_cert)
    ca_der = issuer_cert.public_bytes(serialization.Encoding.DER)
    params = core_crl.CrlParams(number=spec["number"], this_update=run.now,
                                next_update=run.now + dt.timedelta(days=spec["validity-days"]))
    entries = [core_crl.Entry(parse_serial(e["serial"]), e["revoked-at"], e["reason"]) for e in spec["revoked"]]

    def lint_before() -> StepResult:
        lint_key = run.linter.key_for(signer.public_key())
        _check_crl(run, core_crl.build_crl(ca_der, lint_key, params, entries), issuer_cert, spec["number"], None)
        return StepResult(details={"lint_before": "clean (pkilint BR ARL + qtsp checks)", "entries": len(entries), "number": spec["number"]})

    run.step("lint-crl", f"Check CRL number {spec['number']} ({len(entries)} entries) signed with a throwaway key",
             lint_before)

    def sign() -> StepResult:
        der = core_crl.build_crl(ca_der, signer, params, entries)
        _check_crl(run, der, issuer_cert, spec["number"], supported_public_key(issuer_cert.public_key()))
        parsed = x509.load_der_x509_crl(der)
        next_update = parsed.next_update_utc
        assert next_update is not None  # _check_crl refused a CRL without one
        return StepResult(outputs=[run.output("crl", der)],
                          details={"number": spec["number"], "this_update": parsed.last_update_utc.isoformat(),
                                   "next_update": next_update.isoformat(), "lint_after": "clean"})

    run.step("sign-crl", f"Sign the CRL with {signer.key_ref}", sign)
    return {"kind": "crl", "issuer_id": spec["issuer-id"], "number": spec["number"],
            "crl": run.writer.relative(cfg["outputs"]["crl"])}


def _link(run: Run, name: str, subject_cert: x509.Certificate, issuer_cert: x509.Certificate, issuer_id: IssuerId,
          signer: Any, output: str) -> x509.Certificate:
    """``subject_cert``'s name and key, certified by ``issuer_cert``'s key, within both lifetimes."""
    ident = identity(run.cfg)
    end = min(subject_cert.not_valid_after_utc, issuer_cert.not_valid_after_utc)
    days = (end - run.now.replace(microsecond=0)).days
    profile = LINK.with_validity(days)
    tbs = builder.build(profile, subject=subject_cert.subject, public_key=supported_public_key(subject_cert.public_key()),
                        serial=new_serial(), now=run.now, issuer=issuer_info(ident, issuer_id, issuer_cert, ocsp=False))  # no store row answers for a link
    return certify(run, name, profile, tbs, signer, issuer_cert, output)


def root_rollover(run: Run) -> dict[str, Any]:
    cfg, cert_cfg = run.cfg, run.cfg["certificate"]
    old_cert = read_certificate(cfg["issuer-certificate"], "issuer-certificate")
    old_signer = open_signing_key(run, old_cert)
    ref, public = generate_key(run, cfg["key"], "new-root", ceremony_key=True)
    new_signer = run.ceremony_signer
    subject = ca_subject(identity(cfg), cfg["subject"]["common-name"])
    if subject.get_attributes_for_oid(NameOID.COMMON_NAME) == old_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        raise QTSPError(Kind.POLICY, "the new root needs a subject distinct from the old root's (a new common name)")
    profile = _validity(profiles.ROOT_CA, cert_cfg["validity-days"])
    tbs = builder.build(profile, subject=subject, public_key=public, serial=new_serial(), now=run.now, issuer=None)
    new_cert = certify(run, "new-root", profile, tbs, new_signer, None, "certificate")
    _link(run, "new-with-old", new_cert, old_cert, IssuerId(cert_cfg["old-ca-id"]), old_signer, "new-with-old")
    _link(run, "old-with-new", old_cert, new_cert, IssuerId(cert_cfg["ca-id"]), new_signer, "old-with-new")
    run.step("write-public-key", "Write the new root public key", lambda: StepResult(outputs=[run.output(
        "public-key", public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))]))
    return {"kind": "root-rollover", "ca_id": cert_cfg["ca-id"], "old_ca_id": cert_cfg["old-ca-id"], "key_ref": ref,
            "certificate": run.writer.relative(cfg["outputs"]["certificate"]),
            "new_with_old": run.writer.relative(cfg["outputs"]["new-with-old"]),
            "old_with_new": run.writer.relative(cfg["outputs"]["old-with-new"])}


KINDS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "root": root, "intermediate": intermediate, "ocsp-signer": ocsp_signer, "crl": crl,
    "root-rollover": root_rollover, "backup": run_backup, "restore": run_restore,
}
