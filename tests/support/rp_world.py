"""The relying-party matrix's world (tests/system/relying_party/test_matrix_*.py, docs/relying-parties.md):
the real software, on loopback, judging a valid QWAC, a revoked one and a valid one under a revoked
issuing CA (and the same three QSealCs where the software checks more than TLS). What each row must
conclude is tests/support/rp_matrix.py's table; test_matrix_tools.py compares the doc's table with it.

One served sandbox for the package, prepared the way an operator would get there: leaves issued
under the first generation of each issuing CA, the CAs rolled over, leaves issued and one revoked
under the new generation, then the first generation revoked with ``qtsp ca revoke`` (the root key,
the root-delegated responder, the ARL). Certificates name ``http://qtsp.localtest.me:<port>``:
nginx reaches it through a DNS server on loopback (tests/support/dns.py), Java through a hosts
file, the rest get URLs rewritten to 127.0.0.1. No traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID

from qtsp.clock import utcnow
from qtsp.core.types import IssuerId
from qtsp.services import crl as crl_svc, issuance, keys, register, revocation
from qtsp.services.context import Sandbox

from . import ROOT as REPO
from . import rp_matrix
from .external import output, run_tool
from . import mtls
from .mtls import gateway_identity, write_key
from .loopback import Served, served_sandbox, server_env
from .rp_matrix import ACCEPTED, CASES, REFUSED


ORG = "PSDBE-NBB-0123456789"
PEM = serialization.Encoding.PEM


# --- the world: one served sandbox, three cases per kind ------------------------------------------


@dataclass
class Case:
    kind: str
    name: str
    cert: x509.Certificate
    leaf: Path
    key: Path
    ca: Path  # the issuing CA's certificate
    chain: Path  # leaf + issuing CA, what a TLS client sends

    def url(self, access: x509.ObjectIdentifier, cert: x509.Certificate | None = None) -> str:
        aia = (cert or self.cert).extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
        return next(d.access_location.value for d in aia if d.access_method == access)


@dataclass
class World(Served):
    root: Path = Path()
    work: Path = Path()
    cases: dict[tuple[str, str], Case] = field(default_factory=dict)
    crl_urls: set[str] = field(default_factory=set)  # every CA's CRL (the root's ARL too)
    gateway_cert: Path = Path()
    gateway_key: Path = Path()

    def case(self, kind: str, name: str) -> Case:
        return self.cases[(kind, name)]

    def fetch(self, public_url: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
        request = urllib.request.Request(self.local(public_url), data=body, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return bytes(response.read())

    def crl_bundle(self, name: str) -> Path:
        """Every CA's current CRL (the root's ARL too), PEM, in one file: what crl-file and ssl load."""
        pems = []
        for url in sorted(self.crl_urls):
            pems.append(x509.load_der_x509_crl(self.fetch(url)).public_bytes(PEM))
        path = self.work / name
        path.write_bytes(b"".join(pems))
        return path


def issue_case(sandbox: Sandbox, work: Path, kind: str, name: str) -> Case:
    profile = "qwac" if kind == "qwac" else "qsealc"
    domains = (f"{name}.{kind}.example.com",) if kind == "qwac" else ()
    issued = issuance.issue(sandbox, issuance.IssueRequest(profile, ORG, domains=domains, generate_key="ecdsa-p256"))
    stem = work / f"{kind}-{name}"
    leaf, key, ca, chain = (Path(f"{stem}.pem"), Path(f"{stem}.key"), Path(f"{stem}-ca.pem"), Path(f"{stem}-chain.pem"))
    leaf.write_bytes(issued.certificate.public_bytes(PEM))
    write_key(key, issued.private_key)
    ca.write_bytes(issued.chain[0].public_bytes(PEM))
    chain.write_bytes(leaf.read_bytes() + ca.read_bytes())
    return Case(kind, name, issued.certificate, leaf, key, ca, chain)


def _register(sandbox: Sandbox, _data_dir: Path) -> None:
    register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                     locality="Brussels", registration_number="0123.456.789")


def qtsp_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_tool([sys.executable, "-m", "cli.main", *args, "--data-dir", str(data_dir)], cwd=REPO, env=server_env())


@contextlib.contextmanager
def make_world(base: Path) -> Iterator[World]:
    """The served sandbox and its cases, as the module docstring says; stopped on exit."""
    work = base / "files"
    work.mkdir()
    with served_sandbox(base, "crl_debounce_seconds = 0\n", workers=2, prepare=_register) as served:
        sb = served.sandbox
        cases: dict[tuple[str, str], Case] = {}
        for kind in rp_matrix.KINDS:  # under the first generation, which is revoked below
            cases[(kind, "ca-revoked")] = issue_case(sb, work, kind, "ca-revoked")
        for old in ("qwac-ca", "qseal-ca"):
            keys.rollover_ca(sb, IssuerId(old))
        for kind in rp_matrix.KINDS:
            for name in ("valid", "revoked"):
                cases[(kind, name)] = issue_case(sb, work, kind, name)
            revocation.revoke(sb, format(cases[(kind, "revoked")].cert.serial_number, "X"), "key-compromise")
        for old in ("qwac-ca", "qseal-ca"):  # the root key, the root-delegated responder, the ARL: the CLI path
            result = qtsp_cli(served.data_dir, "ca", "revoke", old, "--reason", "ca-compromise")
            assert result.returncode == 0, output(result)
        crl_svc.regenerate_dirty(sb, utcnow())  # what the scheduler does: the leaves' CRLs
        crl_urls = {served.base + "/crl/root.crl"}
        for case in cases.values():
            points = case.cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
            crl_urls.add(points[0].full_name[0].value)
        gateway_cert, gateway_key = gateway_identity(work)
        yield World(served.sandbox, served.data_dir, served.url, served.base, served.data_dir / "ca" / "root.pem",
                    work, cases, crl_urls, gateway_cert, gateway_key)


# --- clients --------------------------------------------------------------------------------------


def https_get(port: int, case: Case, timeout: float = 15) -> tuple[int | None, str]:
    """A TLS client presenting the case's certificate and chain: (HTTP status or None, what it saw)."""
    return mtls.https_get(port, case.chain, case.key, timeout)


def http_verdict(status: int | None, seen: str) -> str:
    if status == 200:
        return ACCEPTED
    if status == 400 or status is None:  # nginx: 400 "The SSL certificate error"; others: the handshake fails
        return REFUSED
    return f"error: HTTP {status} {seen[:200]}"


def check_row(row_id: str, kind: str, observed: dict[str, str], seen: dict[str, str]) -> None:
    expected = rp_matrix.BY_ID[row_id].expected(kind)
    verdicts = {name: observed[name] for name in CASES}
    details = "\n".join(f"  {name}: {observed[name]} <- {seen.get(name, '')[:400]}" for name in CASES)
    print(f"{row_id} {kind}:\n{details}")
    assert verdicts == expected, f"{row_id} ({kind}) saw {verdicts}, the matrix says {expected}\n{details}"



def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0

