"""``qtsp lint`` on CRLs and OCSP responses that OpenSSL made, not this project: a small CA run with
``openssl ca`` (issuing, revoking, ``-gencrl``) and its responder run with ``openssl ocsp -index ... -rsigner
... -respout`` (no server: the response is written to a file). Good ones lint clean; the wrong ones OpenSSL
can be made to produce (a 30-day CRL, a hold, no cRLNumber/AKI, an OCSP answer with no nextUpdate or a 30-day
interval, one signed by a certificate without id-kp-OCSPSigning) get the finding and clause expected, and
where OpenSSL itself has an opinion (``openssl ocsp -respin ... -verify``) the two agree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from support.external import find_openssl

SUBJECT = "/C=LU/O=Foreign OpenSSL QTSP SA"
CONFIG = """
[ca]
default_ca = demo
[demo]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/new
serial = {dir}/serial
{crlnumber}
certificate = {dir}/ca.pem
private_key = {dir}/ca.key
default_md = sha256
default_days = 90
default_crl_days = 7
policy = anything
unique_subject = no
copy_extensions = none
{crl_extensions}
[anything]
countryName = optional
organizationName = optional
commonName = supplied
[crl_ext]
authorityKeyIdentifier = keyid:always
[leaf_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ocsp_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
noCheck = ignored
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class OpenSslCa:
    def __init__(self, work: Path) -> None:
        self.dir = work
        self.openssl = find_openssl()
        (work / "new").mkdir()
        (work / "index.txt").write_text("")
        (work / "serial").write_text("1000\n")
        (work / "crlnumber").write_text("1000\n")
        for name, numbered in (("ca.cnf", True), ("bare.cnf", False)):
            (work / name).write_text(CONFIG.format(
                dir=work, crlnumber=f"crlnumber = {work}/crlnumber" if numbered else "",
                crl_extensions="crl_extensions = crl_ext" if numbered else ""))
        # A root, and the issuing CA it certifies (BR 6.1.7: a root signs no subscriber certificate).
        self.run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "root.key")
        self.run("req", "-x509", "-new", "-key", "root.key", "-subj", f"{SUBJECT}/CN=Foreign OpenSSL Root",
                 "-days", "3650", "-out", "root.pem", "-addext", "basicConstraints=critical,CA:true",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext", "subjectKeyIdentifier=hash")
        (work / "ca_ext.cnf").write_text("[ca_ext]\nbasicConstraints = critical,CA:true,pathlen:0\n"
                                         "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
                                         "authorityKeyIdentifier = keyid\n")
        self.run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
        self.run("req", "-new", "-key", "ca.key", "-subj", f"{SUBJECT}/CN=Foreign OpenSSL Issuing CA", "-out", "ca.csr")
        self.run("x509", "-req", "-in", "ca.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
                 "-days", "1825", "-extfile", "ca_ext.cnf", "-extensions", "ca_ext", "-out", "ca.pem")

    def run(self, *args: str) -> str:
        done = subprocess.run([self.openssl, *args], cwd=self.dir, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"
        return done.stdout + done.stderr

    def issue(self, name: str, extensions: str) -> Path:
        self.run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key")
        self.run("req", "-new", "-key", f"{name}.key", "-subj", f"{SUBJECT}/CN={name}", "-out", f"{name}.csr")
        self.run("ca", "-config", "ca.cnf", "-batch", "-notext", "-in", f"{name}.csr", "-out", f"{name}.pem",
                 "-extensions", extensions)
        return self.dir / f"{name}.pem"

    def path(self, name: str) -> Path:
        return self.dir / name


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> OpenSslCa:
    ca = OpenSslCa(tmp_path_factory.mktemp("openssl-ca"))
    for name in ("good-leaf", "revoked-leaf", "held-leaf"):
        ca.issue(name, "leaf_ext")
    ca.issue("responder", "ocsp_ext")
    ca.run("ca", "-config", "ca.cnf", "-revoke", "revoked-leaf.pem", "-crl_reason", "keyCompromise")
    return ca


def lint(*args: object) -> tuple[int, set[str], dict[str, str]]:
    result = CliRunner().invoke(cli, ["lint", *[str(a) for a in args], "--json"], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    findings = json.loads(result.stdout)["findings"]
    errors = {f["rule"]: f["source"] for f in findings if f["severity"] == "error"}
    return result.exit_code, set(errors), errors


def test_openssl_crls(ca: OpenSslCa) -> None:
    ca.run("ca", "-config", "ca.cnf", "-gencrl", "-out", "good.crl")
    code, errors, _ = lint(ca.path("good.crl"), "--issuer", ca.path("ca.pem"))
    assert (code, errors) == (0, set())
    ca.run("ca", "-config", "ca.cnf", "-gencrl", "-crldays", "30", "-out", "month.crl")
    code, errors, sources = lint(ca.path("month.crl"), "--issuer", ca.path("ca.pem"))
    assert code == 1 and "crl-validity-too-long" in errors and "4.9.7" in sources["crl-validity-too-long"]
    assert "cabf.crl_invalid_validity_period" in errors  # pkilint, underneath, agrees
    ca.run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "other.key")
    ca.run("req", "-new", "-key", "other.key", "-subj", f"{SUBJECT}/CN=Foreign OpenSSL Issuing CA", "-out", "other.csr")
    ca.run("x509", "-req", "-in", "other.csr", "-CA", "root.pem", "-CAkey", "root.key", "-days", "365",
           "-extfile", "ca_ext.cnf", "-extensions", "ca_ext", "-out", "other.pem")
    code, errors, _ = lint(ca.path("good.crl"), "--issuer", ca.path("other.pem"))  # same name, another key
    assert code == 1 and "crl-signature-invalid" in errors and "crl-issuer-name" not in errors
    # Without cRLNumber and AKI (no crlnumber file, no crl_extensions), and with a certificate on hold.
    ca.run("ca", "-config", "bare.cnf", "-revoke", "held-leaf.pem", "-crl_hold", "1.2.840.10040.2.2")
    ca.run("ca", "-config", "bare.cnf", "-gencrl", "-out", "bare.crl")
    code, errors, sources = lint(ca.path("bare.crl"), "--issuer", ca.path("ca.pem"))
    assert code == 1
    assert {"crl-number-missing", "crl-aki-missing", "crl-reason-certificate-hold"} <= errors
    assert "RFC 5280 (2008-05) 5.2.3" in sources["crl-number-missing"]


def _respond(ca: OpenSslCa, out: str, *extra: str, signer: str = "responder") -> Path:
    ca.run("ocsp", "-index", "index.txt", "-CA", "ca.pem", "-rsigner", f"{signer}.pem", "-rkey", f"{signer}.key",
           "-reqin", "req.der", "-respout", out, *extra)
    return ca.path(out)


def _openssl_verifies(ca: OpenSslCa, response: Path) -> bool:
    done = subprocess.run([ca.openssl, "ocsp", "-no_nonce", "-respin", str(response), "-issuer", "ca.pem", "-CAfile", "root.pem",
                           "-cert", "good-leaf.pem"], cwd=ca.dir, capture_output=True, text=True, timeout=60)
    return "Response verify OK" in done.stderr + done.stdout


def test_openssl_ocsp_responses(ca: OpenSslCa) -> None:
    ca.run("ocsp", "-issuer", "ca.pem", "-cert", "good-leaf.pem", "-cert", "revoked-leaf.pem", "-reqout", "req.der")
    good = _respond(ca, "good.der", "-ndays", "4")
    code, errors, _ = lint(good, "--issuer", ca.path("ca.pem"), "--request", ca.path("req.der"))
    assert (code, errors) == (0, set())
    assert _openssl_verifies(ca, good)

    long_ = _respond(ca, "long.der", "-ndays", "30")
    code, errors, sources = lint(long_, "--issuer", ca.path("ca.pem"), "--request", ca.path("req.der"))
    assert code == 1 and errors == {"ocsp-validity-too-long"} and "4.9.10" in sources["ocsp-validity-too-long"]

    open_ended = _respond(ca, "open.der")  # no -ndays/-nmin: no nextUpdate at all
    code, errors, _ = lint(open_ended, "--issuer", ca.path("ca.pem"))
    assert code == 1 and errors == {"ocsp-next-update-missing"}

    # Signed by a certificate the CA issued, but not for OCSP: we refuse it, and so does OpenSSL.
    rogue = _respond(ca, "rogue.der", "-ndays", "4", signer="good-leaf")
    code, errors, _ = lint(rogue, "--issuer", ca.path("ca.pem"))
    assert code == 1 and errors == {"ocsp-responder-not-authorised", "ocsp-responder-no-nocheck"}
    assert not _openssl_verifies(ca, rogue)

    # Checked against a certificate that is not the CA: neither the signer nor the CertIDs fit.
    code, errors, _ = lint(good, "--issuer", ca.path("good-leaf.pem"))
    assert code == 1 and {"ocsp-certid-issuer", "ocsp-responder-not-authorised"} <= errors
