"""CRL helpers the CRL tests share (tests/unit/{services,web,cli}/test_crl.py, tests/system/services/test_crl.py):
issuing a certificate, reading a CRL's extensions and entries' reasons, the stored CRL records, the
concurrent-generator check both backends run, and pkilint's lint_crl."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
from pathlib import Path

from asn1crypto import crl as acrl
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from ca_store.models import CrlRecord
from qtsp.clock import utcnow
from qtsp.services import crl as crl_svc
from qtsp.services import issuance
from qtsp.services.context import Sandbox
from support import SAMPLE_ORG as ORG
from support.external import BIN, run_tool

EXPIRED_CERTS_ON_CRL = "2.5.29.60"
DELTA_CRL_INDICATOR = "2.5.29.27"
FRESHEST_CRL = "2.5.29.46"
TIMEOUT = 120

# CRLReason values for the reason names of qtsp.core.ocsp.REASONS (BR 7.2.2).
REASON_CODES = {"key-compromise": 1, "affiliation-changed": 3, "superseded": 4,
                "cessation-of-operation": 5, "privilege-withdrawn": 9}


def issue_cert(sandbox: Sandbox, name: str, kind: str = "qwac", now: dt.datetime | None = None) -> x509.Certificate:
    domains = (f"{name}.example.com",) if kind == "qwac" else ()
    return issuance.issue(sandbox, issuance.IssueRequest(kind, ORG, domains=domains, generate_key="ecdsa-p256"),
                          now=now).certificate


def ca_cert(data_dir: Path, ca_id: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((data_dir / "ca" / f"{ca_id}.pem").read_bytes())


def crl_ext(crl: x509.CertificateRevocationList, oid: str) -> x509.Extension[x509.ExtensionType] | None:
    for ext in crl.extensions:
        if ext.oid.dotted_string == oid:
            return ext
    return None


def crl_reasons(crl: x509.CertificateRevocationList) -> dict[int, int | None]:
    """serial -> CRLReason code, None where the entry has no reasonCode."""
    raw = acrl.CertificateList.load(crl.public_bytes(Encoding.DER))
    out: dict[int, int | None] = {}
    for entry in raw["tbs_cert_list"]["revoked_certificates"]:
        codes = [e["extn_value"].parsed.native for e in entry["crl_entry_extensions"] if e["extn_id"].dotted == "2.5.29.21"]
        out[entry["user_certificate"].native] = None if not codes else reason_code(codes[0])
    return out


def reason_code(name: str) -> int:
    names = {"unspecified": 0, "key_compromise": 1, "ca_compromise": 2, "affiliation_changed": 3, "superseded": 4,
             "cessation_of_operation": 5, "certificate_hold": 6, "remove_from_crl": 8, "privilege_withdrawn": 9,
             "aa_compromise": 10}
    return names[name]


def load_crl(record: CrlRecord) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(record.der)


def crl_records(sandbox: Sandbox, issuer_id: str) -> list[CrlRecord]:
    with sandbox.transaction() as session:
        return list(session.execute(select(CrlRecord).where(CrlRecord.issuer_id == issuer_id)
                                    .order_by(CrlRecord.id)).scalars())


def run_crl_tool(args: list[str]) -> subprocess.CompletedProcess[str]:
    return run_tool(args, timeout=TIMEOUT)


def pkilint(path: Path, kind: str) -> subprocess.CompletedProcess[str]:
    linter = BIN / "lint_crl"
    assert linter.exists(), f"pkilint's lint_crl not in {BIN}"
    return run_crl_tool([str(linter), "lint", "-t", kind, "-p", "BR", "-s", "ERROR", str(path)])


def concurrent_numbers(sandbox: Sandbox) -> None:
    numbers: list[int] = []
    errors: list[BaseException] = []
    now = utcnow()
    assert crl_svc.generate(sandbox, "qwac-ca", now).number == 1  # a base, so every delta below makes one CRL

    def work(i: int) -> None:
        try:
            numbers.append(crl_svc.generate(sandbox, "qwac-ca", now, delta=i % 2 == 1).number)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT)
    assert not errors, errors
    assert sorted(numbers) == list(range(2, 10))
    stored = sorted(r.number for r in crl_records(sandbox, "qwac-ca"))
    assert stored == list(range(1, 10))
