"""The deployment tests/system/relying_party/test_validation.py judges (the simulator's catalogue, served
on loopback) and the validators it asks: the reference validator (``reference``), ``openssl verify``
with CRLs at every level, pyhanko-certvalidator in hard-fail mode."""

from __future__ import annotations

import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from qtsp import relying_party
from qtsp.clock import real_utcnow, utcnow
from qtsp.services import scenarios, trusted_list
from qtsp.services.context import Sandbox
from support.external import find_openssl

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Deployment:
    sandbox: Sandbox
    data_dir: Path
    url: str  # http://127.0.0.1:<port>
    base: str  # http://qtsp.localtest.me:<port>, what the certificates say
    out: Path  # the issued catalogue
    manifest: dict[str, Any]

    @property
    def connect_to(self) -> str:
        return self.url.removeprefix("http://")

    def entry(self, name: str) -> dict[str, Any]:
        return next(e for e in self.manifest["scenarios"] if e["name"] == name)

    def cert(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.out / self.entry(name)["certificate"]).read_bytes())

    def chain(self, name: str) -> list[x509.Certificate]:
        return [x509.load_pem_x509_certificate((self.out / p).read_bytes()) for p in self.entry(name)["chain"]]

    def get(self, path: str) -> bytes:
        with OPENER.open(self.url + path, timeout=10) as response:
            return response.read()


def reference(dep: Deployment, name: str, **kwargs: Any) -> relying_party.Verdict:
    entry = dep.entry(name)
    now = kwargs.pop("at", None) or utcnow()
    tl = relying_party.parse_and_verify_trusted_list(dep.get("/tl.xml"), [trusted_list.signer_certificate(dep.sandbox)], real_utcnow())
    return relying_party.validate(dep.cert(name), trusted_list=tl, intermediates=dep.chain(name), purpose=entry["purpose"],
                                  at=now, fetcher=relying_party.Fetcher(connect_to=dep.connect_to, at=kwargs.pop("travel", None)),
                                  **kwargs)


def openssl_verify(dep: Deployment, name: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    entry = dep.entry(name)
    crls = tmp_path / f"{name}-crls.pem"
    pem = b""
    for ca in ("root", scenarios.SCENARIOS_CA, scenarios.UNLISTED_CA, scenarios.SUB_CA):
        der = dep.get(f"/crl/{ca}.crl")
        pem += x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)
    crls.write_bytes(pem)
    args = [find_openssl(), "verify", "-x509_strict", "-CAfile", str(dep.out / "ca" / "root.pem"), "-CRLfile", str(crls),
            "-crl_check_all"]
    for chain in entry["chain"]:
        args += ["-untrusted", str(dep.out / chain)]
    purpose = {"qwac": "sslserver", "qwac-client": "sslclient"}.get(entry["purpose"])
    if purpose:
        args += ["-purpose", purpose]
    return subprocess.run(args + [str(dep.out / entry["certificate"])], capture_output=True, text=True, timeout=60)


def _asn1(cert: x509.Certificate):  # type: ignore[no-untyped-def]
    from asn1crypto import x509 as ax
    return ax.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def pyhanko_verdict(dep: Deployment, name: str) -> tuple[str, str]:
    import asyncio

    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

    entry = dep.entry(name)
    root = x509.load_pem_x509_certificate((dep.out / "ca" / "root.pem").read_bytes())
    chain = dep.chain(name)
    # pyhanko insists on the delta CRLs that complete CRLs announce but looks for them only in the
    # certificate's FreshestCRL: hand them over (see test_relying_parties._delta_crls).
    deltas = [dep.get(f"/crl/{ca}-delta.crl") for ca in (scenarios.SCENARIOS_CA, scenarios.UNLISTED_CA, scenarios.SUB_CA)]
    context = ValidationContext(trust_roots=[_asn1(root)], other_certs=[_asn1(c) for c in chain], allow_fetching=True,
                                crls=deltas, revocation_mode="hard-fail",
                                fetcher_backend=RequestsFetcherBackend(per_request_timeout=10))
    validator = CertificateValidator(_asn1(dep.cert(name)), validation_context=context)
    usage = {"qwac": ({"digital_signature"}, {"server_auth"}), "qwac-client": ({"digital_signature"}, {"client_auth"}),
             "qsealc": ({"non_repudiation"}, None),
             "2-qwac": ({"digital_signature"}, {"0.4.0.194115.1.0"})}[entry["purpose"]]  # id-kp-tls-binding (issue 18)
    try:
        asyncio.run(validator.async_validate_usage(key_usage=usage[0], extended_key_usage=usage[1]))
    except Exception as exc:  # every pyhanko refusal is an exception: that is its "reject"
        return "reject", f"{type(exc).__name__}: {exc}"
    return "accept", ""
