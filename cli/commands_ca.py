"""``qtsp init``, ``ca``, ``certs``, ``audit`` and ``sandbox`` (the make-run helper).

Import-light (``qtsp certs --help`` must stay fast): the store and the services are imported
inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qtsp.core.errors import EXIT_CODES, Kind
from qtsp.core.keys import CA_KEY_TYPES, KeyType
from qtsp.core.ocsp import CA_REASONS

from .output import cli_actor, common, data_dir, emit, no_time_travel, subject_text, table
from .passwords import read_p12_password, sample_p12_password_options, wants_p12

if TYPE_CHECKING:
    from qtsp.services.context import Sandbox


@click.command()
@click.option("--key-type", type=click.Choice(CA_KEY_TYPES), help="CA key type (default from the config: ecdsa-p384)")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="TOML configuration to use (copied into the data dir)")
@click.option("--keystore", type=click.Choice(["file", "vault"]), help="where CA and OCSP keys live (default: file; "
              "vault: Transit at $QTSP_VAULT_ADDR with $QTSP_VAULT_TOKEN or AppRole)")
@click.option("--base-url", metavar="URL", help="the service's public base URL, named in every certificate's AIA, OCSP "
              "and CRL URLs (default http://127.0.0.1:8080, or base_url in --config)")
@common
def init(key_type: str | None, config_file: Path | None, keystore: str | None, base_url: str | None) -> None:
    """Create the sandbox hierarchy: root, QWAC CA, QSealC CA, OCSP responders."""
    from qtsp.services import hierarchy

    sb = hierarchy.init_sandbox(data_dir(), key_type=None if key_type is None else KeyType(key_type),
                                config_file=config_file, keystore=keystore, base_url=base_url, actor=cli_actor())
    _ca_list(sb, prefix=f"sandbox created in {sb.data_dir}\n")


def _ca_rows(sb: Sandbox) -> list[dict[str, Any]]:
    from qtsp.services import lookup

    return [
        {"id": ca.id, "role": ca.role, "parent": ca.parent, "subject": subject_text(ca.subject), "serial": ca.serial,
         "key": ca.key, "key_type": ca.key_type, "not_after": ca.not_after.isoformat(),
         "ocsp_responder": ca.ocsp_responder, "certificate": str(sb.ca_dir / f"{ca.id}.pem")}
        for ca in lookup.list_cas(sb)
    ]


def _ca_list(sb: Sandbox, prefix: str = "") -> None:
    rows = _ca_rows(sb)
    emit(rows, lambda: prefix + table(
        [[r["id"], r["role"], r["key_type"], r["not_after"][:10], r["subject"]] for r in rows],
        ["CA", "ROLE", "KEY", "NOT AFTER", "SUBJECT"]))


@click.group()
def ca() -> None:
    """The sandbox CAs."""


@ca.command("list")
@common
def ca_list() -> None:
    """List the CAs."""
    from qtsp.services.context import open_sandbox

    _ca_list(open_sandbox(data_dir()))


@ca.command("revoke")
@click.argument("ca_id", metavar="CA")
@click.option("--reason", required=True, type=click.Choice(CA_REASONS),
              help="CRLReason (BR 7.2.2): ca-compromise when the CA's key is compromised")
@common
def ca_revoke(ca_id: str, reason: str) -> None:
    """Revoke an issuing CA with the root key: OCSP (the root-delegated responder) says revoked at once,
    the root's ARL is signed before this returns, and every certificate below it is refused by relying
    parties that check the chain. Audited (ca.revoke). For an offline root, see docs/ceremonies.md."""
    from qtsp.services import ca_revocation
    from qtsp.services.context import open_sandbox
    from qtsp.services.lookup import resolve_ca

    sb = open_sandbox(data_dir())
    result = ca_revocation.revoke_ca(sb, resolve_ca(sb, ca_id), reason)
    data = {"ca": result.ca_id, "serial": result.serial, "issuer": result.parent_id, "reason": result.reason,
            "revoked_at": result.revoked_at.isoformat(), "crl_number": result.crl_number}
    emit(data, lambda: f"revoked CA {result.ca_id} (serial {result.serial}, {result.reason}) at "
                       f"{result.revoked_at:%Y-%m-%d %H:%M:%S}Z; {result.parent_id}'s CRL number {result.crl_number} lists it")


@click.group()
def certs() -> None:
    """Issued certificates."""


@certs.command("list")
@click.option("--org-id")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@common
def certs_list(org_id: str | None, limit: int) -> None:
    """List issued certificates, newest first."""
    from qtsp.services import lookup
    from qtsp.services.context import open_sandbox

    rows: list[dict[str, Any]] = [
        {"serial": c.serial, "issuer": c.issuer, "profile": c.profile, "org_id": c.org_id, "roles": c.roles,
         "dns_names": c.dns_names, "not_after": c.not_after.isoformat(), "status": c.status,
         "subject": subject_text(c.certificate.subject)}
        for c in lookup.list_certificates(open_sandbox(data_dir()), org_id=org_id, limit=limit)
    ]
    emit(rows, lambda: table([[r["serial"], r["profile"], r["org_id"] or "", r["not_after"][:10], r["status"], r["subject"]]
                              for r in rows], ["SERIAL", "PROFILE", "ORG ID", "NOT AFTER", "STATUS", "SUBJECT"]))


@certs.command("show")
@click.argument("serial")
@click.option("--issuer", metavar="CA", help="the issuing CA, when the serial exists under several")
@click.option("--pem", is_flag=True, help="print the certificate as PEM")
@common
def certs_show(serial: str, issuer: str | None, pem: bool) -> None:
    """Show one certificate by serial (hex, as openssl prints it)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from qtsp.core.types import canonical_serial
    from qtsp.services import lookup
    from qtsp.services.context import open_sandbox

    parsed = canonical_serial(serial)
    sb = open_sandbox(data_dir())
    issuer_id = None if issuer is None else lookup.resolve_ca(sb, issuer)
    c = lookup.certificate(sb, parsed, issuer_id)
    cert = c.certificate
    data = {"serial": c.serial, "issuer": c.issuer, "profile": c.profile, "subject": subject_text(cert.subject),
            "org_id": c.org_id, "nca_id": c.nca_id, "roles": c.roles, "dns_names": c.dns_names,
            "not_before": c.not_before.isoformat(), "not_after": c.not_after.isoformat(), "status": c.status,
            "sha256": c.sha256, "pem": cert.public_bytes(Encoding.PEM).decode()}
    if pem and not click.get_current_context().obj["json"]:
        click.echo(data["pem"], nl=False)
        return
    emit(data, lambda: "\n".join(f"{k:>10}: {v}" for k, v in data.items() if k != "pem"))


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--export", "export", type=click.Path(dir_okay=False, path_type=Path),
              help="check the signed heads of this copy of the export (default: the sandbox's own)")
@common
def audit_verify(export: Path | None) -> None:
    """Check the chain, the signed heads in the export, and the store against the events.

    Exit 0 when everything holds; 10 (integrity) with every problem found otherwise (the report
    is printed either way; with --json on stdout)."""
    from qtsp.services import audit as audit_svc
    from qtsp.services.context import open_sandbox

    report = audit_svc.check(open_sandbox(data_dir()), export)
    emit(report.as_dict(), lambda: _audit_text(report))
    if not report.ok:
        raise SystemExit(EXIT_CODES[Kind.INTEGRITY])


def _audit_text(report: Any) -> str:
    lines = []
    if report.chain is None:
        lines.append(f"audit chain verifies: {report.events} events")
    else:
        lines.append(f"audit chain broken at event {report.chain.seq}: {report.chain.problem}")
    last = report.last_signed
    if report.signed_heads == 0:
        lines.append(f"no signed head in {report.export} yet: run 'qtsp audit anchor' (or the scheduler)")
    elif last is not None:
        lines.append(f"signed heads: {report.signed_heads} in {report.export}, the last at event {last.seq} "
                     f"({last.at:%Y-%m-%d %H:%M:%S}Z)")
    lines += [f"signed head{f' at line {p.line}' if p.line else 's'}: {p.problem}" for p in report.head_problems]
    lines.append(f"store against events: {', '.join(f'{v} {k}' for k, v in report.checked.items())} checked")
    lines += [f"{p.subject}: {p.problem}" for p in report.state_problems]
    lines.append("audit log verifies" if report.ok else
                 f"audit log does NOT verify: {int(report.chain is not None) + len(report.head_problems)} chain and "
                 f"signed-head problems, {len(report.state_problems)} store problems")
    return "\n".join(lines)


@audit.command("anchor")
@common
@no_time_travel
def audit_anchor() -> None:
    """Sign the chain's head with the anchor key and append it to the export (the scheduler does so
    every 5 minutes when the chain has moved)."""
    from qtsp.services import audit as audit_svc
    from qtsp.services.context import open_sandbox

    done = audit_svc.anchor(open_sandbox(data_dir()))
    emit(done.as_dict(), f"signed the head at event {done.seq} with {done.key}: line {done.line} of {done.export}")


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="samples directory (default DATA_DIR/samples)")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="where `qtsp serve` will listen; a new sandbox's certificates name this host")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="where `qtsp serve` will listen; a new sandbox's certificates name this port")
@sample_p12_password_options
@common
def sandbox(out: Path | None, host: str, port: int, p12_password: str | None, p12_password_file: Path | None,
            p12_password_prompt: bool) -> None:
    """Set up a ready-to-use sandbox: init if absent, a sample PSP, a sample QWAC and QSealC.

    The certificates' AIA, OCSP and CRL URLs name http://HOST:PORT, so that they work as they are
    against `qtsp serve` on that address; an existing sandbox made for another address is refused.
    The samples' bundle.p12 use the password "sandbox" unless one is given (file, environment, prompt)."""
    from qtsp.config import base_url_for
    from qtsp.services import sample

    source = wants_p12(p12_password, p12_password_file, p12_password_prompt)
    password = read_p12_password(p12_password, p12_password_file, p12_password_prompt)
    result = sample.ensure_sandbox(data_dir(), out, base_url=base_url_for(host, port), p12_password=password, actor=cli_actor())
    if source is not None:
        result["p12_password_from"] = source
    result["service"] = result["base_url"]
    emit(result, lambda: sample.describe(result))
