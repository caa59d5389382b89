"""Entry point: ``qtsp``.

Commands are listed here by name and imported only when used (``cli/lazy.py``): ``qtsp --help``,
``--version``, a group's ``--help`` and shell completion must not pay for pkilint, SQLAlchemy or
Flask. Each entry keeps the command's one-line help, so the listing needs no import either.
"""

from __future__ import annotations

import click

from .lazy import LazyGroup
from .operator import AT_KEY, OPERATOR_ENV, OPERATOR_KEY, check_operator

COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("cli.commands_ca:audit", "The hash-chained audit log."),
    "bank": ("cli.commands_bank:bank", "A demo bank (ASPSP) that checks signed PSD2 API requests as banks must."),
    "binding": ("cli.commands_binding:binding", "2-QWAC TLS certificate bindings: sign, verify, check a site."),
    "ca": ("cli.commands_ca:ca", "The sandbox CAs."),
    "ceremony": ("cli.commands_ceremony:ceremony",
                 "Key ceremonies: one YAML file each, witnessed, transcribed (examples: `qtsp ceremony examples`)."),
    "certs": ("cli.commands_ca:certs", "Issued certificates."),
    "crl": ("cli.commands_crl:crl", "CRLs (per issuing CA) and the root's ARL."),
    "init": ("cli.commands_ca:init", "Create the sandbox hierarchy: root, QWAC CA, QSealC CA, OCSP responders."),
    "issue": ("cli.commands_issue:issue", "Issue PSD2 certificates."),
    "keys": ("cli.commands_keys:keys", "CA and OCSP keys: where they live and when they rotate."),
    "lint": ("cli.commands_lint:lint",
             "Lint FILE, a certificate, a CRL or an OCSP response (PEM or DER; the type is detected), as of --at "
             "(default now)."),
    "nca": ("cli.commands_nca:nca", "National Competent Authorities: their signing credentials and their requests."),
    "portal": ("cli.commands_portal:portal", "Accounts of the browser portal at /portal (PSP developers, operators)."),
    "profiles": ("cli.commands_profiles:profiles",
                 "Certificate profiles and the rules (clause and edition) each is checked against."),
    "register": ("cli.commands_register:register", "The simulated NCA register of authorised PSPs."),
    "revoke": ("cli.commands_serve:revoke",
               "Revoke a certificate; OCSP says so before this returns, the CRL follows within seconds."),
    "sandbox": ("cli.commands_ca:sandbox",
                "Set up a ready-to-use sandbox: init if absent, a sample PSP, a sample QWAC and QSealC."),
    "scenarios": ("cli.commands_scenarios:scenarios",
                  "Negative and edge-case certificates, and responder misbehaviours, for testing bank validators."),
    "scheduler": ("cli.commands_serve:scheduler_cmd",
                  "Run the scheduled jobs (OCSP refresh, CRL publication); one process leads, others stand by."),
    "serve": ("cli.commands_serve:serve", "Run the service (OCSP, CRLs, AIA, REST API), and the scheduler beside it."),
    "site": ("cli.commands_site:site", "A demo website for 2-QWAC TLS certificate bindings."),
    "tl": ("cli.commands_tl:tl", "The sandbox Trusted List (ETSI TS 119 612, XAdES-signed), as served at /tl.xml."),
    "tokens": ("cli.commands_tokens:tokens", "API tokens for /api/v1 (operator: everything; auditor: read only)."),
    "tpp": ("cli.commands_tpp:tpp", "A TPP's side of PSD2 APIs: requests sealed with a QSealC, sent over mutual TLS."),
    "trust": ("cli.commands_trust:trust", "Trust stores for relying parties, from a Trusted List."),
    "validate": ("cli.commands_validate:validate",
                 "Judge CERTIFICATES (files or directories) as a PSD2 validator should: path to the Trusted List or "
                 "the trust anchors, revocation (OCSP, then the CRL), every profile rule with its clause, pkilint."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qtsp")
@click.option("--operator", metavar="NAME", envvar=OPERATOR_ENV, callback=check_operator,
              help=f"who is acting, as the audit log records it (default: the OS user; or ${OPERATOR_ENV})")
@click.option("--at", "at", metavar="TIME", default=None,
              help="act as of another time, for the command that follows (the same as its own --at)")
@click.pass_context
def cli(ctx: click.Context, operator: str | None, at: str | None) -> None:
    """qtsp: a sandbox QTSP issuing PSD2 QWACs and QSealCs."""
    ctx.meta[OPERATOR_KEY] = operator
    ctx.meta[AT_KEY] = at


def main() -> None:
    cli(prog_name="qtsp")


if __name__ == "__main__":
    main()
