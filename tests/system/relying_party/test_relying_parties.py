"""Relying parties against the running service: what a bank's validators conclude about a QWAC.

The certificates name ``http://qtsp.localtest.me:<port>/...`` for caIssuers, OCSP and CRLs. So
the sandbox is initialised with that base_url, the server listens on 127.0.0.1:<port>, and
each relying party is pointed at 127.0.0.1 for that one name only, without touching
/etc/hosts: pyhanko-certvalidator through a patched ``socket.getaddrinfo``, Java through
``-Djdk.net.hosts.file``; openssl and pkilint get files fetched from the server's loopback
address at the paths the certificates name. No traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from qtsp.clock import utcnow
from qtsp.services import crl as crl_svc, issuance, register, revocation
from qtsp.services.context import Sandbox

from support.external import find_openssl, run_tool
from support.loopback import HOST, Served, served_sandbox

ORG = "PSDBE-NBB-0123456789"
BIN = Path(sys.executable).parent


# --- the deployment: a sandbox whose base_url is the test server's port ----------------------


@dataclass
class Deployment(Served):
    root: Path = Path()
    issuing_ca: Path = Path()


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def _register(sandbox: Sandbox, _data_dir: Path) -> None:
    register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                     country="BE", locality="Brussels", registration_number="0123.456.789")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    # crl_debounce_seconds = 0: regenerate_dirty publishes a revocation at once, with thisUpdate = now
    # (a "now" in the future would give a CRL that relying parties call not yet valid).
    with served_sandbox(tmp_path_factory.mktemp("relying-parties"), "crl_debounce_seconds = 0\n", workers=2,
                        prepare=_register) as served:
        yield Deployment(served.sandbox, served.data_dir, served.url, served.base,
                         served.data_dir / "ca" / "root.pem", served.data_dir / "ca" / "qwac-ca.pem")


@dataclass
class Qwac:
    cert: x509.Certificate
    path: Path

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "X")

    def crl_url(self) -> str:
        points = self.cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
        return points[0].full_name[0].value

    def ocsp_url(self) -> str:
        aia = self.cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
        return next(d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP)


def _issue(dep: Deployment, tmp_path: Path, name: str) -> Qwac:
    cert = issuance.issue(dep.sandbox, issuance.IssueRequest("qwac", ORG, domains=(f"{name}.example.com",),
                                                             generate_key="ecdsa-p256")).certificate
    path = tmp_path / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Qwac(cert, path)


def _revoke_and_publish(dep: Deployment, qwac: Qwac, reason: str = "key-compromise") -> None:
    """Revoke (OCSP re-signed in the same commit), then what the scheduler does: the dirty CRL."""
    revocation.revoke(dep.sandbox, qwac.serial, reason)
    assert crl_svc.regenerate_dirty(dep.sandbox, utcnow()) == 2  # full + delta of qwac-ca


def _fetch(dep: Deployment, public_url: str, body: bytes | None = None) -> bytes:
    headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
    request = urllib.request.Request(dep.local(public_url), data=body, headers=headers)
    with _opener().open(request, timeout=10) as response:
        assert response.status == 200
        return response.read()


# --- pyhanko-certvalidator (in process) -----------------------------------------------------


def _delta_crls(dep: Deployment, *certs: Qwac) -> list[bytes]:
    """The delta CRLs that the certificates' complete CRLs name in their FreshestCRL extension.

    pyhanko-certvalidator (0.33) insists on the delta a complete CRL announces, but it looks
    for delta CRLs only in the *certificate's* FreshestCRL extension, which these certificates
    do not carry ("Delta CRL matching Freshest CRL extension not available" for the issuing CA
    checked against the root's ARL). A bank using it would have to hand them over like this."""
    deltas = []
    for cert in certs:
        complete = x509.load_der_x509_crl(_fetch(dep, cert.crl_url()))
        with contextlib.suppress(x509.ExtensionNotFound):
            for point in complete.extensions.get_extension_for_class(x509.FreshestCRL).value:
                deltas.append(_fetch(dep, point.full_name[0].value))
    return deltas


def _pyhanko_validate(dep: Deployment, qwac: Qwac, *, crl_only: bool = False):  # type: ignore[no-untyped-def]
    """revocation_mode="hard-fail" (OCSP or CRL, whichever the certificate declares, must answer);
    ``crl_only``: an ETSI TS 119 172 policy that checks CRLs on every certificate of the path."""
    from asn1crypto import x509 as ax
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

    def load(path: Path) -> ax.Certificate:
        return ax.Certificate.load(x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER))

    issuing_ca = Qwac(x509.load_pem_x509_certificate(dep.issuing_ca.read_bytes()), dep.issuing_ca)
    context = ValidationContext(trust_roots=[load(dep.root)], other_certs=[load(dep.issuing_ca)], allow_fetching=True,
                                crls=_delta_crls(dep, qwac, issuing_ca), revocation_mode="hard-fail",
                                revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(
                                    RevocationCheckingRule.CRL_REQUIRED, RevocationCheckingRule.CRL_REQUIRED)) if crl_only else None,
                                fetcher_backend=RequestsFetcherBackend(per_request_timeout=10))
    validator = CertificateValidator(load(qwac.path), validation_context=context)
    return asyncio.run(validator.async_validate_usage({"digital_signature"}))


def test_pyhanko_certvalidator_hard_fail(deployment: Deployment, tmp_path: Path, loopback_dns: list[str]) -> None:
    from pyhanko_certvalidator.errors import RevokedError

    qwac = _issue(deployment, tmp_path, "pyhanko")
    for crl_only in (False, True):
        loopback_dns.clear()
        path = _pyhanko_validate(deployment, qwac, crl_only=crl_only)  # raises, with pyhanko's reason, if anything is missing
        assert path.leaf.serial_number == qwac.cert.serial_number and path.pkix_len == 2
        assert loopback_dns, "pyhanko fetched nothing: the revocation check was not exercised"

    _revoke_and_publish(deployment, qwac)
    for crl_only, source in ((False, "OCSP response"), (True, "CRL")):
        loopback_dns.clear()
        with pytest.raises(RevokedError) as err:
            _pyhanko_validate(deployment, qwac, crl_only=crl_only)
        assert err.value.reason.native == "key_compromise", str(err.value)
        assert str(err.value).startswith(f"{source} indicates the end-entity certificate was revoked"), str(err.value)
        assert loopback_dns
        print(f"pyhanko-certvalidator ({'CRLs only' if crl_only else 'hard-fail'}): {err.value}")


# --- Java 17 PKIX ----------------------------------------------------------------------------


def _java(dep: Deployment, classes: Path, qwac: Qwac, tmp_path: Path, *, prefer_crls: bool = False) -> subprocess.CompletedProcess[str]:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 {HOST}\n")
    java = shutil.which("java")
    assert java, "java missing: install openjdk-17-jdk-headless"
    args = [java, f"-Djdk.net.hosts.file={hosts}", "-Dcom.sun.security.enableCRLDP=true",
            "-Dcom.sun.security.ocsp.timeout=10", "-Dcom.sun.security.crl.timeout=10",
            "-Djava.net.useSystemProxies=false", "-cp", str(classes), "BankValidator",
            str(qwac.path), str(dep.issuing_ca), str(dep.root)]
    if prefer_crls:
        args.append("prefer-crls")
    return run_tool(args)


def test_java_pkix_with_ocsp_and_crl(deployment: Deployment, bank_validator: Path, tmp_path: Path) -> None:
    qwac = _issue(deployment, tmp_path, "java")
    for prefer_crls in (False, True):
        result = _java(deployment, bank_validator, qwac, tmp_path, prefer_crls=prefer_crls)
        assert result.returncode == 0 and result.stdout.strip() == "VALID", result.stdout + result.stderr

    _revoke_and_publish(deployment, qwac)
    for prefer_crls in (False, True):  # OCSP first (CRL fallback), then a bank that prefers CRLs
        result = _java(deployment, bank_validator, qwac, tmp_path, prefer_crls=prefer_crls)
        out = result.stdout + result.stderr
        assert result.returncode == 2 and result.stdout.startswith("REVOKED: KEY_COMPROMISE"), out
        print(f"java PKIX ({'CRL' if prefer_crls else 'OCSP'} preferred): {result.stdout.strip()}")


# --- openssl ---------------------------------------------------------------------------------


def test_openssl_verify_with_the_published_crl(deployment: Deployment, tmp_path: Path) -> None:
    openssl = find_openssl()
    qwac = _issue(deployment, tmp_path, "openssl")
    bundle = tmp_path / "root-and-ca.pem"
    bundle.write_bytes(deployment.root.read_bytes() + deployment.issuing_ca.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(deployment.issuing_ca.read_bytes())
    arl = tmp_path / "root.crl"
    arl.write_bytes(_fetch(deployment, Qwac(ca_cert, deployment.issuing_ca).crl_url()))

    def verify(label: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
        crl = tmp_path / f"qwac-ca-{label}.crl"
        crl.write_bytes(_fetch(deployment, qwac.crl_url()))
        signed = run_tool([openssl, "crl", "-inform", "DER", "-in", str(crl), "-CAfile", str(bundle), "-noout"])
        assert signed.returncode == 0 and "verify OK" in signed.stdout + signed.stderr, signed.stdout + signed.stderr
        leaf_only = run_tool([openssl, "verify", "-crl_check", "-CAfile", str(deployment.root), "-untrusted",
                          str(deployment.issuing_ca), "-CRLfile", str(crl), str(qwac.path)])
        chain = run_tool([openssl, "verify", "-crl_check_all", "-CAfile", str(deployment.root), "-untrusted",
                      str(deployment.issuing_ca), "-CRLfile", str(crl), "-CRLfile", str(arl), str(qwac.path)])
        return leaf_only, chain

    for result in verify("before"):
        assert result.returncode == 0 and f"{qwac.path}: OK" in result.stdout, result.stdout + result.stderr

    _revoke_and_publish(deployment, qwac)
    for result in verify("after"):
        out = result.stdout + result.stderr
        assert result.returncode != 0 and "certificate revoked" in out, out
    print(f"openssl verify: {out.strip().splitlines()[-1]}")


# --- pkilint ---------------------------------------------------------------------------------


def test_pkilint_on_what_the_server_publishes(deployment: Deployment, tmp_path: Path) -> None:
    lint_crl, lint_ocsp = BIN / "lint_crl", BIN / "lint_ocsp_response"
    assert lint_crl.exists() and lint_ocsp.exists(), "pkilint missing: pip install pkilint"
    qwac = _issue(deployment, tmp_path, "pkilint")
    _revoke_and_publish(deployment, qwac)

    crl_path = tmp_path / "qwac-ca.crl"
    crl_path.write_bytes(_fetch(deployment, qwac.crl_url()))
    published = x509.load_der_x509_crl(crl_path.read_bytes())
    entry = published.get_revoked_certificate_by_serial_number(qwac.cert.serial_number)
    assert entry is not None
    result = run_tool([str(lint_crl), "lint", "-t", "CRL", "-p", "BR", "-s", "ERROR", str(crl_path)])
    assert result.returncode == 0, result.stdout + result.stderr
    # and the rest of what a relying party downloads: the delta it names, the root's ARL and its delta
    issuing_ca = Qwac(x509.load_pem_x509_certificate(deployment.issuing_ca.read_bytes()), deployment.issuing_ca)
    for kind, url in (("CRL", published.extensions.get_extension_for_class(x509.FreshestCRL).value[0].full_name[0].value),
                      ("ARL", issuing_ca.crl_url()), ("ARL", deployment.base + "/crl/root-delta.crl")):
        path = tmp_path / url.rsplit("/", 1)[1]
        path.write_bytes(_fetch(deployment, url))
        result = run_tool([str(lint_crl), "lint", "-t", kind, "-p", "BR", "-s", "ERROR", str(path)])
        assert result.returncode == 0, f"{url}: {result.stdout}{result.stderr}"

    issuer = x509.load_pem_x509_certificate(deployment.issuing_ca.read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(qwac.cert, issuer, hashes.SHA1()).build()
    body = _fetch(deployment, qwac.ocsp_url(), request.public_bytes(serialization.Encoding.DER))
    response = ocsp.load_der_ocsp_response(body)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.key_compromise
    assert response.revocation_time_utc == entry.revocation_date_utc
    ocsp_path = tmp_path / "revoked.ocsp"
    ocsp_path.write_bytes(body)
    result = run_tool([str(lint_ocsp), "lint", "-s", "ERROR", str(ocsp_path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert dt.timedelta(0) <= utcnow() - response.produced_at_utc < dt.timedelta(minutes=5)
