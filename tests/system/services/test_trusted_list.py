"""The Trusted List with real parts: signed by an RSA file key and by a key in OpenBao's Transit engine
(others verify both), and served by a real `qtsp serve` (caching, rollover after a CA key rotation).
(The list itself, in process: tests/unit/services/test_trusted_list.py.)"""

from __future__ import annotations

import http.client
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.validation.qualified.tsp import QcCertType
from sqlalchemy import select

from ca_store.models import KeyReference, TrustedListSigner
from qtsp.clock import utcnow
from qtsp.core.keys import key_type_of
from qtsp.core.trusted_list import FOR_ESEALS, FOR_WEB
from qtsp.relying_party import parse_and_verify_trusted_list
from qtsp.services import trusted_list as tl
from qtsp.services.context import Sandbox
from qtsp.services.hierarchy import init_sandbox

from support.server import running_server
from support.tl import ca_certs, pyhanko_registry, registry_services, run


@pytest.mark.parametrize("keystore, key_type", [("file", "rsa-3072"), ("vault", "ecdsa-p256")])
def test_rsa_signers_and_vault_transit_signers_make_lists_others_verify(
        request: pytest.FixtureRequest, tmp_path: Path, keystore: str, key_type: str) -> None:
    if keystore == "vault":
        request.getfixturevalue("vault_env")  # a real OpenBao dev server (tests/bao.py)
    sb = init_sandbox(tmp_path / "qtsp-data", key_type=key_type, keystore=keystore)
    try:
        now = utcnow()
        record = tl.current(sb, now)
        signer = tl.signer_certificate(sb)
        assert key_type_of(signer.public_key()) == key_type
        with sb.transaction() as session:
            row = session.execute(select(TrustedListSigner)).scalar_one()
            assert session.get(KeyReference, row.key_id).ref.startswith("vault-transit:" if keystore == "vault" else "file:")
        # the two QWAC CAs (browser and non-browser hierarchies) and the QSealC CA
        assert len(parse_and_verify_trusted_list(record.xml, [signer], now).services) == 3
        assert len(registry_services(pyhanko_registry(record.xml, signer))) == 3
    finally:
        sb.engine.dispose()


# --- the endpoint over a real server, rollover, and the CLI -----------------------------------------


def _get(url: str, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


def test_served_list_caching_and_rollover_over_a_real_server(data_dir: Path, sandbox: Sandbox) -> None:
    with running_server(data_dir) as url:
        pem = _get(url, "/tl-signer.pem")
        assert pem.status == 200 and pem.getheader("Content-Type") == "application/x-pem-file"
        signer = x509.load_pem_x509_certificate(pem.body)  # type: ignore[attr-defined]
        assert signer == tl.signer_certificate(sandbox)

        first = _get(url, "/tl.xml")
        assert first.status == 200 and first.getheader("Content-Type") == "application/vnd.etsi.tsl+xml"
        body = first.body  # type: ignore[attr-defined]
        parsed = parse_and_verify_trusted_list(body, [signer], utcnow())
        etag = first.getheader("ETag")
        assert etag == f'"tl-{parsed.sequence}"'
        max_age = int(re.search(r"max-age=(\d+)", first.getheader("Cache-Control") or "").group(1))  # type: ignore[union-attr]
        assert 0 < max_age <= 300
        assert first.getheader("Last-Modified") and first.getheader("Expires")
        assert len(parsed.services) == 3  # qwac-ca, qwac-browser-ca, qseal-ca

        not_modified = _get(url, "/tl.xml", headers={"If-None-Match": etag})
        assert not_modified.status == 304 and not_modified.getheader("ETag") == etag
        assert not_modified.body == b""  # type: ignore[attr-defined]
        head = _get(url, "/tl.xml", method="HEAD")
        assert head.status == 200 and head.body == b"" and head.getheader("ETag") == etag  # type: ignore[attr-defined]

        rotated = run("keys", "rotate", "--ca", "qwac-ca", "--data-dir", data_dir, "--json")
        assert rotated.exit_code == 0, rotated.output
        deadline = time.monotonic() + 15
        while True:  # the service keeps the current list for a second
            latest = _get(url, "/tl.xml")
            after = parse_and_verify_trusted_list(latest.body, [signer], utcnow())  # type: ignore[attr-defined]
            if after.sequence != parsed.sequence or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert after.sequence == parsed.sequence + 1
        cas = ca_certs(sandbox)
        listed = {s.certificate.public_bytes(Encoding.DER): s.additional_info for s in after.services}
        assert listed == {cas["qwac-ca"][1]: {FOR_WEB}, cas["qwac-ca-2"][1]: {FOR_WEB}, cas["qwac-browser-ca"][1]: {FOR_WEB},
                          cas["qseal-ca"][1]: {FOR_ESEALS}}
        assert _get(url, "/tl.xml", headers={"If-None-Match": etag}).status == 200  # the old ETag no longer matches
        registry = pyhanko_registry(latest.body, signer)  # type: ignore[attr-defined]
        assert registry_services(registry)[cas["qwac-ca-2"][1]] == {QcCertType.QC_WEB}
