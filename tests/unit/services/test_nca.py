"""NCAs (qtsp.services.nca_identity, qtsp.services.nca): an NCA registered by its own certificate
authenticates with it; registering twice or under a malformed id is refused."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qtsp.relying_party import nca_client
from qtsp.services import nca_identity
from qtsp.services.context import Sandbox


def test_register_an_nca_by_its_own_certificate(sandbox: Sandbox, tmp_path: Path) -> None:
    from qtsp.core.errors import QTSPError

    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "FR"), x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "ACPR")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(7) \
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA384())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    view, _ = nca_identity.add_nca(sandbox, "FR-ACPR", "Autorite de Controle Prudentiel et de Resolution", cert_pem=pem)
    assert view.credentials == [hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()]
    with pytest.raises(QTSPError):
        nca_identity.add_nca(sandbox, "FR-ACPR", "Autorite de Controle Prudentiel et de Resolution", cert_pem=pem)  # twice
    with pytest.raises(QTSPError):
        nca_identity.add_nca(sandbox, "FR_ACPR", "x", cert_pem=pem)  # malformed id
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    compact = nca_client.sign_request("FR-ACPR", key_pem, pem, {"org_id": "PSDFR-ACPR-1", "reason": "superseded"})
    from qtsp.core.errors import Kind
    from qtsp.services import nca as nca_svc

    with pytest.raises(QTSPError) as err:  # authenticated with ES384, then: no such PSP
        nca_svc.handle(sandbox, "revocation", compact)
    assert err.value.kind is Kind.NOT_FOUND
