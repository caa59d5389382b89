"""The REST API's issuance, judged by ``openssl verify`` (an external program): the QWAC issued from a
CSR chains to the root, with the chain the API returns; lookup by Location and by an openssl-style serial."""

from __future__ import annotations

import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from cryptography import x509

from support.api import DOMAIN, PREFIX, SAMPLE_ORG, Api, csr_pem, new_key


def test_issue_qwac_from_csr_verifies_with_openssl(api: Api, tmp_path: Path) -> None:
    key = new_key()
    issued, _ = api.issue(key, roles="PSP_AI")
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    assert issued["serial"] == format(cert.serial_number, "X").zfill(len(issued["serial"]))
    assert issued["issuer"] == "qwac-ca" and len(issued["chain"]) == 2
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [DOMAIN]
    assert issued["not_before"] == cert.not_valid_before_utc.isoformat()

    leaf = tmp_path / "leaf.pem"
    leaf.write_text(issued["certificate"])
    ca = api.data_dir / "ca"
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(ca / "root.pem"), "-untrusted", str(ca / "qwac-ca.pem"),
                             str(leaf)], capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and verify.stdout.strip().endswith(": OK"), verify.stdout + verify.stderr
    chain = tmp_path / "chain.pem"
    chain.write_text(issued["chain"][0])
    again = subprocess.run(["openssl", "verify", "-CAfile", str(ca / "root.pem"), "-untrusted", str(chain), str(leaf)],
                           capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stdout + again.stderr

    client = api.client
    location = client.post(f"{PREFIX}/certificates", headers=api.headers("operator"),
                           json={"kind": "qwac", "org_id": SAMPLE_ORG, "csr": csr_pem(new_key()), "domains": [DOMAIN]}
                           ).headers["Location"]
    assert location.startswith(f"{PREFIX}/certificates/")
    shown = client.get(location, headers=api.headers("auditor")).get_json()
    assert shown["status"] == "good" and shown["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    # the serial is found however openssl-style it is written
    lower = client.get(f"{PREFIX}/certificates/0x{issued['serial'].lower()}", headers=api.headers("auditor"))
    assert lower.get_json()["serial"] == issued["serial"] and lower.get_json()["roles"] == ["PSP_AI"]

    with closing(sqlite3.connect(api.data_dir / "qtsp.db")) as db:
        actor = db.execute("SELECT actor FROM audit_events WHERE action = 'certificate.issue' AND subject = ?",
                           (issued["serial"],)).fetchone()[0]
    assert actor.startswith("api-token:") and actor.endswith(":ops")
