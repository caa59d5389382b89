"""``qtsp binding``: 2-QWAC TLS certificate bindings (ETSI TS 119 411-5 V2.1.1 Annex B): sign one, verify one
as a browser would, check a site end to end. verify and check exit 0 accept, 1 reject, 2 unusable (an input
that cannot be read, a site or responder that cannot be reached)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

import click

from qtsp.core.errors import QTSPError

from .trust_source import trusted_list
from .output import as_json, common, emit

if TYPE_CHECKING:
    from qtsp.relying_party.binding import BindingVerdict

MAX_TL = 8 * 1024 * 1024
UNUSABLE = 2


@click.group("binding")
def binding() -> None:
    """2-QWAC TLS certificate bindings: sign, verify, check a site."""


@binding.command("sign")
@click.option("--signer", "signer_dir", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="the 2-QWAC's directory: cert.pem, chain.pem, key.pem (as 'qtsp issue two-qwac --generate-key' wrote)")
@click.option("--tls-cert", "tls_certs", multiple=True, required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="a TLS certificate of the site to bind, PEM or DER (repeatable)")
@click.option("--valid-days", default=90, show_default=True, type=click.IntRange(1, 398),
              help="the binding's life (exp); never past the 2-QWAC or a TLS certificate")
@click.option("--hash", "hash_m", type=click.Choice(["S256", "S384", "S512"]), default="S256", show_default=True,
              help="sigD hashM")
@click.option("--rsa-pss", is_flag=True, help="PS256 rather than RS256 for an RSA 2-QWAC")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="the new .jws file")
@common
def sign(signer_dir: Path, tls_certs: tuple[Path, ...], valid_days: int, hash_m: str, rsa_pss: bool, out: Path) -> None:
    """Sign a binding of the TLS certificates to the 2-QWAC: a JAdES compact JWS with a detached empty payload."""
    from qtsp.clock import utcnow
    from qtsp.core import tls_binding
    from qtsp.services import bindings

    signer = bindings.load_signer(signer_dir)
    certs = [bindings.load_one(path, "TLS certificate") for path in tls_certs]
    jws = bindings.sign_binding(signer, certs, now=utcnow(), valid_days=valid_days, hash_m=hash_m, rsa_pss=rsa_pss)
    bindings.write_binding(out, jws)
    parsed = tls_binding.parse(jws)
    data = {"file": str(out), "alg": parsed.alg, "hashM": parsed.hash_m, "bound": len(certs),
            "iat": parsed.iat.isoformat() if parsed.iat else None, "exp": parsed.exp.isoformat() if parsed.exp else None}
    emit(data, lambda: f"signed a TLS certificate binding ({parsed.alg}, {len(certs)} certificate(s), {parsed.hash_m}) "
         f"valid until {parsed.exp:%Y-%m-%d %H:%M:%S}Z\n  wrote:    {out}")


def _trust_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--connect-to", "connect_to", metavar="HOST:PORT",
                        help="send every OCSP, CRL and Trusted List request there, keeping the URL's Host header")(func)
    func = click.option("--tl-signer", "tl_signer", type=click.Path(dir_okay=False, path_type=Path),
                        help="PEM of the certificate the Trusted List must be signed by (with --tl)")(func)
    func = click.option("--tl", "tl", metavar="URL|FILE", help="judge the 2-QWAC against this Trusted List")(func)
    func = click.option("--trust-anchor", "anchors", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
                        help="a pinned CA certificate (PEM) taken as a granted CA/QC service (repeatable)")(func)
    return func


def _unusable(exc: QTSPError) -> None:
    if as_json():
        click.echo(json.dumps({"verdict": "unusable", "error": exc.kind.value, "detail": exc.detail}), err=True)
    else:
        click.echo(f"unusable: {exc.detail}", err=True)
    sys.exit(UNUSABLE)


def _judge(jws: bytes, tls_cert: Any, anchors: tuple[Path, ...], tl: str | None, tl_signer: Path | None,
           connect_to: str | None) -> BindingVerdict:
    from qtsp import relying_party
    from qtsp.clock import utcnow
    from qtsp.relying_party.binding import verify_binding

    at = click.get_current_context().obj.get("at")
    now = utcnow()
    fetcher = relying_party.Fetcher(connect_to=connect_to, at=at)
    trusted = trusted_list(anchors=anchors, tl=tl, tl_signer=tl_signer, fetcher=fetcher, now=now, data_dir=None)
    return verify_binding(jws, tls_cert, trusted_list=trusted, at=now, fetcher=fetcher)


def _report(verdict: BindingVerdict, what: str, extra: dict[str, Any] | None = None) -> None:
    from qtsp.core.names import readable_oids

    data = verdict.as_dict()
    data.update(extra or {})
    for finding in data["findings"]:
        finding["message"] = readable_oids(finding["message"])

    def text() -> str:
        lines = [f"{'ACCEPT' if verdict.accepted else 'REJECT'}  {what} at {verdict.at:%Y-%m-%dT%H:%M:%SZ}"]
        lines += [f"  - {f['rule']}: {f['message']} ({f['source']})" for f in data["findings"]]
        if verdict.signer:
            lines.append(f"  2-QWAC: {readable_oids(verdict.signer['subject'])} (serial {verdict.signer['serial']})")
        if verdict.binding:
            b = verdict.binding
            lines.append(f"  binding: {b['alg']}, {b['bound']} certificate(s) by {b['hashM']}, expires {b['exp']}")
        return "\n".join(lines)

    emit(data, text)
    if not verdict.accepted:
        click.get_current_context().exit(1)


@binding.command("verify")
@click.argument("jws_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tls-cert", "tls_cert_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the TLS certificate the site presents (PEM or DER; the first of a chain)")
@_trust_options
@common
def verify(jws_file: Path, tls_cert_path: Path, anchors: tuple[Path, ...], tl: str | None, tl_signer: Path | None,
           connect_to: str | None) -> None:
    """Verify a binding as a browser would: header, alg allow-list, signature, the 2-QWAC (path, EKU, QcType,
    validity, revocation), the binding's exp, and the TLS certificate's hash among sigD's. Exit 0/1/2."""
    from qtsp.core import tls_binding
    from qtsp.services import bindings

    try:
        jws = bindings.read_limited(jws_file, "binding", tls_binding.MAX_BINDING_BYTES)
        tls_cert = bindings.load_one(tls_cert_path, "TLS certificate")
        verdict = _judge(jws, tls_cert, anchors, tl, tl_signer, connect_to)
    except QTSPError as exc:
        _unusable(exc)
        return
    _report(verdict, str(jws_file))


@binding.command("check")
@click.argument("url")
@click.option("--tls-ca", "tls_ca", type=click.Path(dir_okay=False, path_type=Path),
              help="also verify the site's TLS chain against these CA certificates (default: the binding alone)")
@_trust_options
@common
def check(url: str, tls_ca: Path | None, anchors: tuple[Path, ...], tl: str | None, tl_signer: Path | None,
          connect_to: str | None) -> None:
    """Fetch URL over TLS, take the certificate the handshake presents, follow the page's
    Link: <...>; rel="tls-certificate-binding" (same origin, bounded) and verify the binding. Exit 0/1/2."""
    from qtsp.relying_party.binding import fetch_site

    try:
        site = fetch_site(url, cafile=str(tls_ca) if tls_ca else None)
        verdict = _judge(site.binding, site.tls_cert, anchors, tl, tl_signer, connect_to)
    except QTSPError as exc:
        _unusable(exc)
        return
    _report(verdict, url, {"url": url, "binding_url": site.binding_url,
                           "tls_certificate": site.tls_cert.subject.rfc4514_string()})
