"""``qtsp site serve``: a demo HTTPS site presenting a TLS certificate and its 2-QWAC TLS certificate binding."""

from __future__ import annotations

from pathlib import Path

import click

from .output import common, no_time_travel


@click.group("site")
def site() -> None:
    """A demo website for 2-QWAC TLS certificate bindings."""


@site.command("serve")
@click.option("--tls-cert", "tls_cert", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="the TLS certificate (PEM, leaf first, its chain after it)")
@click.option("--tls-key", "tls_key", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="its private key (PEM)")
@click.option("--binding", "binding_file", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="the TLS certificate binding to serve (compact JWS), good or broken")
@click.option("--port", required=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True, type=click.Choice(["127.0.0.1", "::1"]))
@no_time_travel
@common
def serve(tls_cert: Path, tls_key: Path, binding_file: Path, port: int, host: str) -> None:
    """Serve https://HOST:PORT/ with 'Link: </tls-certificate-binding.jws>; rel="tls-certificate-binding"' on
    every answer, and the binding at that path. Loopback only; stops on SIGTERM or Ctrl-C."""
    from qtsp.core import tls_binding
    from qtsp.services.bindings import read_limited
    from qtsp.web import demo_site

    binding = read_limited(binding_file, "binding", tls_binding.MAX_BINDING_BYTES)
    click.echo(f"serving https://{'[::1]' if host == '::1' else host}:{port}/ (binding at {demo_site.BINDING_PATH}); "
               "SIGTERM or Ctrl-C stops", err=True)
    demo_site.serve(tls_cert=tls_cert, tls_key=tls_key, binding=binding.strip(), host=host, port=port)
