"""``qtsp nca``: NCA identities and requests (QTSP side), and the NCA's own client."""

from __future__ import annotations

import json as jsonlib
from dataclasses import asdict
from pathlib import Path
from typing import Any
from collections.abc import Callable

import click
from cryptography import x509

from qtsp.core.errors import Kind, QTSPError

from .lazy import LazyChoice
from .output import cli_actor, common, data_dir, emit, table


def _reasons() -> list[str]:
    from qtsp.services import nca as nca_svc

    return list(nca_svc.REASONS)


@click.group()
def nca() -> None:
    """National Competent Authorities: their signing credentials and their requests."""


@nca.command("add")
@click.option("--id", "nca_id", required=True, help="NCA id, e.g. BE-NBB")
@click.option("--name", required=True, help='e.g. "National Bank of Belgium"')
@click.option("--cert", "cert_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="the NCA's own request-signing certificate (PEM; intermediates may follow it): documentSigning EKU, "
                   "valid now, chaining to the sandbox's NCA CA or to --anchor")
@click.option("--anchor", "anchor_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="with --cert: the CA certificate (PEM) the NCA's certificate chains to, if not the sandbox's NCA CA")
@click.option("--generate", is_flag=True, help="issue the NCA a request-signing certificate here and write its key")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="with --generate: where key.pem, cert.pem, chain.pem go")
@common
def add(nca_id: str, name: str, cert_path: Path | None, anchor_path: Path | None, generate: bool, out: Path | None) -> None:
    """Register an NCA and a credential it signs requests with."""
    from qtsp.services import nca_identity
    from qtsp.services.context import open_sandbox

    view, files = nca_identity.add_nca(open_sandbox(data_dir()), nca_id, name,
                                       cert_pem=cert_path.read_bytes() if cert_path else None, generate=generate, out=out,
                                       anchor_pem=anchor_path.read_bytes() if anchor_path else None,
                                       actor=cli_actor())
    emit({**asdict(view), "files": [str(f) for f in files]},
         lambda: f"{view.nca_id} ({view.name}): credentials {', '.join(c[:16] + '...' for c in view.credentials)}"
         + "".join(f"\n  wrote {f}" for f in files))


@nca.command("list")
@common
def list_() -> None:
    """NCAs and their registered credentials."""
    from qtsp.services import nca_identity
    from qtsp.services.context import open_sandbox

    views = nca_identity.list_ncas(open_sandbox(data_dir()))
    emit([asdict(v) for v in views], lambda: table([[v.nca_id, v.name, str(len(v.credentials) - len(v.withdrawn)),
                                                     str(len(v.withdrawn))] for v in views],
                                                   ["NCA", "NAME", "CREDENTIALS", "WITHDRAWN"]))


@nca.command("withdraw-credential")
@click.argument("fingerprint")
@click.option("--reason", type=LazyChoice(_reasons), default="cessation-of-operation", show_default=True,
              help="the revocation reason of its certificate (key-compromise for a leaked key)")
@common
def withdraw_credential(fingerprint: str, reason: str) -> None:
    """Withdraw an NCA's request-signing credential at once.

    FINGERPRINT: its SHA-256 (or 8+ leading hex digits), as 'qtsp nca list --json' shows it. Requests signed
    with it are refused from now on; its certificate, if the sandbox's NCA CA issued it, is revoked (and listed
    on the nca-ca CRL)."""
    from qtsp.services import nca_identity
    from qtsp.services.context import open_sandbox

    sb = open_sandbox(data_dir())
    done = nca_identity.withdraw_credential(sb, nca_identity.find_credential(sb, fingerprint), reason=reason, actor="cli")
    emit({**asdict(done), "withdrawn_at": done.withdrawn_at.isoformat()},
         lambda: f"withdrew {done.nca_id}'s credential {done.fingerprint[:16]}... at {done.withdrawn_at:%Y-%m-%d %H:%M:%S}Z"
         + (f"; revoked certificate {done.revoked_serial} ({reason})" if done.revoked_serial else ""))


@nca.command("requests")
@click.option("--nca", "nca_id", metavar="NCA", help="only this NCA's requests (its id, e.g. BE-NBB, or its name)")
@common
def requests_(nca_id: str | None) -> None:
    """Requests acted on, with receipt-to-publication time against the 24-hour limit."""
    from qtsp.services import nca as nca_svc
    from qtsp.services.context import open_sandbox

    from .lookup import resolve_nca

    sb = open_sandbox(data_dir())
    rows = nca_svc.list_requests(sb, None if nca_id is None else resolve_nca(sb, nca_id))
    emit(rows, lambda: table([[r["nca_id"], r["request_id"], r["kind"], r["received_at"][:19],
                               f"{r['receipt_to_publication_seconds']:.3f}s", "yes" if r["within_24h"] else "NO",
                               str(len(r["revoked"]))] for r in rows],
                             ["NCA", "REQUEST", "KIND", "RECEIVED", "TO PUBLICATION", "<24H", "REVOKED"]))


def _client_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--qtsp-root", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                        help="the QTSP root to verify receipts against (default: fetched from --url, trust on first use)")(func)
    func = click.option("--cert", "cert_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                        help="the credential certificate (default: cert.pem beside --key)")(func)
    func = click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))(func)
    func = click.option("--as", "as_nca", required=True, help="the NCA id you sign as")(func)
    func = click.option("--url", required=True, help="the QTSP, e.g. http://127.0.0.1:8080")(func)
    return func


def _send(url: str, path: str, as_nca: str, key_path: Path, cert_path: Path | None, qtsp_root: Path | None,
          body: dict[str, Any]) -> None:
    from qtsp.relying_party import nca_client
    from qtsp.relying_party.jose import b64url_decode

    cert_path = cert_path or key_path.with_name("cert.pem")
    compact = nca_client.sign_request(as_nca, key_path.read_bytes(), cert_path.read_bytes(), body,
                                      aud=url.rstrip("/") + path)
    request_id = jsonlib.loads(b64url_decode(compact.split(".")[1]))["jti"]
    status, answer = nca_client.send(url, path, compact)
    if status != 200:
        raise QTSPError(Kind.POLICY if status < 500 else Kind.STORAGE,
                        f"the QTSP answered {status}: {answer.get('detail', answer)}")
    root = x509.load_pem_x509_certificate(qtsp_root.read_bytes()) if qtsp_root else nca_client.fetch_root(url)
    receipt = nca_client.verify_receipt(answer["receipt"], root, request_id=request_id, body=body)
    revoked = [r["serial"] for r in receipt.get("revoked", [])]
    emit({"request_id": request_id, "receipt_verified": True, "result": answer["result"], "receipt": answer["receipt"]},
         lambda: f"request {request_id}: receipt verified; revoked {len(revoked)}: {', '.join(revoked) or '-'}")


@nca.command("request-revocation")
@_client_options
@click.option("--authorisation", help="the PSP's authorisation number")
@click.option("--org-id", help="or its organizationIdentifier")
@click.option("--serial", "serials", multiple=True, help="only these certificates (repeatable)")
@click.option("--reason", type=LazyChoice(_reasons), default="privilege-withdrawn", show_default=True)
@common
def request_revocation(url: str, as_nca: str, key_path: Path, cert_path: Path | None, qtsp_root: Path | None,
                       authorisation: str | None, org_id: str | None, serials: tuple[str, ...], reason: str) -> None:
    """Sign and send a revocation request as an NCA; verify the QTSP's receipt."""
    if (authorisation is None) == (org_id is None):
        raise QTSPError(Kind.MALFORMED, "give exactly one of --authorisation or --org-id")
    body: dict[str, Any] = {"reason": reason}
    body.update({"authorisation_number": authorisation} if authorisation else {"org_id": org_id})
    if serials:
        body["serials"] = list(serials)
    _send(url, "/nca/v1/revocation-requests", as_nca, key_path, cert_path, qtsp_root, body)


@nca.command("publish-authorisation")
@_client_options
@click.option("--action", type=click.Choice(["grant", "change-roles", "withdraw"]), required=True)
@click.option("--org-id", required=True)
@click.option("--name", help="legal name (grant)")
@click.option("--roles", help="comma-separated roles (grant, change-roles)")
@click.option("--locality")
@click.option("--registration-number")
@common
def publish_authorisation(url: str, as_nca: str, key_path: Path, cert_path: Path | None, qtsp_root: Path | None,
                          action: str, org_id: str, name: str | None, roles: str | None, locality: str | None,
                          registration_number: str | None) -> None:
    """Sign and send a register change as an NCA; verify the QTSP's receipt."""
    body: dict[str, Any] = {"action": action, "org_id": org_id}
    if action == "grant":
        body.update({"name": name, "roles": (roles or "").split(",")})
        if locality:
            body["locality"] = locality
        if registration_number:
            body["registration_number"] = registration_number
    elif action == "change-roles":
        body["roles"] = (roles or "").split(",")
    _send(url, "/nca/v1/authorisations", as_nca, key_path, cert_path, qtsp_root, body)
