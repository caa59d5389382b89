"""The served simulator deployment tests/system/responder/ judges (the ``dep`` fixture of its conftest.py):
one sandbox whose URLs name the test server's port, served by two workers, with two QWACs and a QSealC;
and how its tests ask: ``openssl ocsp``, raw OCSP over HTTP, the store, pyhanko-certvalidator."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtensionOID

from qtsp.core.types import serial_hex
from qtsp.services.context import Sandbox
from qtsp.services.generation import Generation
from support.external import find_openssl, output, run_tool

ORG = "PSDBE-NBB-0123456789"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Dep:
    sandbox: Sandbox
    data_dir: Path
    url: str
    base: str
    files: dict[str, Path]
    certs: dict[str, x509.Certificate]

    def serial(self, name: str) -> str:
        return serial_hex(self.certs[name].serial_number)  # canonical: even length, as the store keeps it

    def local(self, public_url: str) -> str:
        assert public_url.startswith(self.base + "/"), public_url
        return self.url + public_url[len(self.base):]


def _issuer_of(name: str) -> str:
    return "qseal-ca" if name == "seal" else "qwac-ca"


def openssl_ocsp(dep: Dep, name: str, *extra: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    """``openssl ocsp`` as a relying party runs it (with a nonce unless -no_nonce)."""
    return run_tool([find_openssl(), "ocsp", "-issuer", str(dep.files[_issuer_of(name)]), "-cert", str(dep.files[name]),
                 "-url", (url or dep.url) + "/ocsp", "-CAfile", str(dep.files["root"]), *extra])


def assert_good(dep: Dep, name: str, url: str | None = None) -> None:
    result = openssl_ocsp(dep, name, url=url)
    out = output(result)
    assert result.returncode == 0 and f"{dep.files[name]}: good" in out and "Response verify OK" in out, out
    assert "WARNING" not in out, out


def request_der(dep: Dep, name: str, *, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        dep.certs[name], x509.load_pem_x509_certificate(dep.files[_issuer_of(name)].read_bytes()), hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def http(url: str, *, data: bytes | None = None, method: str | None = None, headers: dict[str, str] | None = None,
         timeout: float = 20) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def post_ocsp(dep: Dep, der: bytes) -> tuple[int, Any, bytes]:
    return http(dep.url + "/ocsp", data=der, headers={"Content-Type": "application/ocsp-request"})


def stored_ocsp(dep: Dep, name: str) -> bytes:
    """The pre-signed response (SHA-1 CertID) the store holds for a certificate."""
    with contextlib.closing(sqlite3.connect(dep.data_dir / "qtsp.db")) as db:
        row = db.execute("SELECT der FROM ocsp_responses WHERE serial = ? AND hash_algorithm = 'sha1'",
                         (dep.serial(name),)).fetchone()
    return bytes(row[0])


def assert_presigned(dep: Dep, name: str) -> None:
    status, headers, body = post_ocsp(dep, request_der(dep, name))
    assert status == 200 and body == stored_ocsp(dep, name), "not the pre-signed answer"
    assert "public" in headers["Cache-Control"] and "max-age=" in headers["Cache-Control"], headers["Cache-Control"]


def store_state(dep: Dep) -> tuple[Any, ...]:
    with contextlib.closing(sqlite3.connect(dep.data_dir / "qtsp.db")) as db:
        rows = db.execute("SELECT id, issuer_id, target, scope, behaviour, delay_ms FROM responder_behaviours "
                          "ORDER BY id").fetchall()
        head = db.execute("SELECT seq, hash FROM audit_head").fetchall()
    return tuple(rows), tuple(head), Generation(dep.data_dir).value()


def stored_ocsp_responder(dep: Dep) -> bytes:
    with contextlib.closing(sqlite3.connect(dep.data_dir / "qtsp.db")) as db:
        return bytes(db.execute("SELECT ocsp_responder_der FROM certificate_authorities WHERE id = 'qwac-ca'").fetchone()[0])


def _deltas(dep: Dep, *certs: x509.Certificate) -> list[bytes]:
    """The delta CRLs the complete CRLs announce (pyhanko looks for them only in the certificate)."""
    out = []
    for cert in certs:
        points = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
        complete = x509.load_der_x509_crl(http(dep.local(points[0].full_name[0].value))[2])
        with contextlib.suppress(x509.ExtensionNotFound):
            for point in complete.extensions.get_extension_for_class(x509.FreshestCRL).value:
                out.append(http(dep.local(point.full_name[0].value))[2])
    return out


def pyhanko_validate(dep: Dep, name: str, leaf_rule: str) -> Any:
    """Validate with revocation required for the leaf by ``leaf_rule`` (ocsp or crl) and by CRL for
    the issuing CA; raises pyhanko's error when the revocation information is not acceptable."""
    from asn1crypto import x509 as ax
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

    def load(cert: x509.Certificate) -> ax.Certificate:
        return ax.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    issuing = x509.load_pem_x509_certificate(dep.files["qwac-ca"].read_bytes())
    root = x509.load_pem_x509_certificate(dep.files["root"].read_bytes())
    rule = {"ocsp": RevocationCheckingRule.OCSP_REQUIRED, "crl": RevocationCheckingRule.CRL_REQUIRED}[leaf_rule]
    context = ValidationContext(
        trust_roots=[load(root)], other_certs=[load(issuing)], allow_fetching=True, crls=_deltas(dep, dep.certs[name], issuing),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(rule, RevocationCheckingRule.CRL_REQUIRED)),
        fetcher_backend=RequestsFetcherBackend(per_request_timeout=10))
    validator = CertificateValidator(load(dep.certs[name]), validation_context=context)
    return asyncio.run(validator.async_validate_usage({"digital_signature"}))
