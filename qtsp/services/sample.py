"""What ``make run`` does: a sandbox (created if absent), a sample PSP, a sample QWAC and QSealC."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import config as config_mod, files
from ..core.errors import Kind, QTSPError
from ..core.profiles import CertificateKind
from ..core.types import OrgId
from . import issuance, output, register
from .context import open_sandbox
from .hierarchy import init_sandbox

SAMPLE_ORG_ID = OrgId("PSDBE-NBB-0123456789")
SAMPLE_P12_PASSWORD = "sandbox"


def ensure_sandbox(data_dir: Path, out: Path | None = None, base_url: str | None = None,
                   p12_password: str | None = None) -> dict[str, Any]:
    """``base_url``: where the service will answer. A new sandbox is made for it; an existing one made for
    another URL is refused, changing nothing: its certificates name the other URL, and serving it
    elsewhere would break every AIA, OCSP and CRL link in them.

    ``p12_password``: the bundles' password, when the caller has one of its own (a file, the environment,
    a prompt); it is never in the result. Without it, the documented sample password is used and shown."""
    if out is not None and os.path.lexists(out):
        files.check_own_dir(out)  # the samples go into subdirectories: the directory named must be a real one, ours
    created = not (data_dir / config_mod.CONFIG_NAME).exists()
    sb = init_sandbox(data_dir, base_url=base_url) if created else open_sandbox(data_dir)
    if base_url and sb.config.base != base_url.rstrip("/"):
        raise QTSPError(Kind.CONFLICT, f"the sandbox in {data_dir} was made for {sb.config.base}: its certificates "
                        f"name that URL, not {base_url.rstrip('/')}. Serve it there, or make a new sandbox in "
                        "another data directory for the new address")
    try:
        register.get_psp(sb, SAMPLE_ORG_ID)
    except QTSPError as exc:
        if exc.kind is not Kind.NOT_FOUND:
            raise
        register.add_psp(sb, org_id=SAMPLE_ORG_ID, name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                         country="BE", locality="Brussels", registration_number="0123.456.789")
    out = out or data_dir / "samples"
    samples = {}
    for kind, request in (
        ("qwac", issuance.IssueRequest(CertificateKind.QWAC, SAMPLE_ORG_ID, domains=("api.example-fintech.eu",),
                                       generate_key=True)),
        ("qsealc", issuance.IssueRequest(CertificateKind.QSEALC, SAMPLE_ORG_ID, generate_key=True)),
    ):
        target = out / kind
        if (target / "cert.pem").exists():
            samples[kind] = {"dir": str(target), "new": False}
            continue
        output.check_out_dir(target, with_key=True, with_p12=True)
        issued = issuance.issue(sb, request, actor="make-run")
        output.write_issued(issued, target, p12_password=p12_password or SAMPLE_P12_PASSWORD)
        samples[kind] = {"dir": str(target), "new": True, "serial": issued.serial}
    return {"data_dir": str(data_dir), "created": created, "base_url": sb.config.base, "ca_dir": str(sb.ca_dir), "samples": samples,
            "p12_password": None if p12_password else SAMPLE_P12_PASSWORD, "sample_org_id": SAMPLE_ORG_ID}


def describe(result: dict[str, Any]) -> str:
    lines = [f"sandbox QTSP in {result['data_dir']} ({'created' if result['created'] else 'already there'})",
             f"  CA certificates: {result['ca_dir']}/{{root,qwac-ca,qseal-ca}}.pem"]
    for kind, info in result["samples"].items():
        state = f"new, serial {info['serial']}" if info["new"] else "kept from an earlier run"
        lines.append(f"  sample {kind.upper():6} {info['dir']}/  cert.pem chain.pem key.pem bundle.p12 ({state})")
    if result["p12_password"] is not None:  # the sample one; a password of the user's own is never shown
        lines.append(f"  PKCS#12 password: {result['p12_password']}")
    else:
        lines.append(f"  PKCS#12 password: the one from {result.get('p12_password_from', 'the caller')} (new bundles only)")
    lines.append(f"  inspect:  openssl x509 -in {result['samples']['qwac']['dir']}/cert.pem -noout -text")
    lines.append(f"  verify:   openssl verify -CAfile {result['ca_dir']}/root.pem -untrusted "
                 f"{result['ca_dir']}/qwac-ca.pem {result['samples']['qwac']['dir']}/cert.pem")
    service = result.get("service")
    if service:
        qwac = result["samples"]["qwac"]["dir"]
        lines += [
            f"service (starting next) on {service}:",
            f"  OCSP:     openssl ocsp -issuer {result['ca_dir']}/qwac-ca.pem -cert {qwac}/cert.pem -url {service}/ocsp "
            f"-CAfile {result['ca_dir']}/root.pem -resp_text",
            f"  CRLs:     curl -o qwac-ca.crl {service}/crl/qwac-ca.crl   (also qseal-ca.crl, root.crl, <ca>-delta.crl)",
            f"  AIA:      {service}/ca/{{root,qwac-ca,qseal-ca}}.der   chain: {service}/ca/qwac-ca-chain.pem",
            f"  API:      {service}/api/v1/openapi.json   (tokens: qtsp tokens create --name ci --role operator)",
            f"  health:   {service}/healthz   metrics: {service}/metrics",
            "  revoke:   qtsp revoke SERIAL --reason key-compromise --data-dir " + result["data_dir"],
        ]
    return "\n".join(lines)
