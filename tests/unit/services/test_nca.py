"""NCAs (qtsp.services.nca_identity, qtsp.services.nca): an NCA registered by its own certificate
authenticates with it; registering twice or under a malformed id is refused."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from qtsp.relying_party import nca_client
from qtsp.services import nca_identity
from qtsp.services.context import Sandbox
from support.nca import nca_anchor, nca_leaf


def test_register_an_nca_by_its_own_certificate(sandbox: Sandbox, tmp_path: Path) -> None:
    """A certificate chaining to the anchor given (--anchor), with the documentSigning EKU, valid now."""
    from qtsp.core.errors import QTSPError

    now = dt.datetime.now(dt.timezone.utc)
    anchor_key, anchor = nca_anchor(now)
    key_pem, cert = nca_leaf(anchor_key, anchor, now)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    view, _ = nca_identity.add_nca(sandbox, "FR-ACPR", "Autorite de Controle Prudentiel et de Resolution", cert_pem=pem,
                                   anchor_pem=anchor.public_bytes(serialization.Encoding.PEM))
    assert view.credentials == [hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()]
    with pytest.raises(QTSPError):
        nca_identity.add_nca(sandbox, "FR-ACPR", "Autorite de Controle Prudentiel et de Resolution", cert_pem=pem,
                             anchor_pem=anchor.public_bytes(serialization.Encoding.PEM))  # twice
    with pytest.raises(QTSPError):
        nca_identity.add_nca(sandbox, "FR_ACPR", "x", cert_pem=pem)  # malformed id
    compact = nca_client.sign_request("FR-ACPR", key_pem, pem, {"org_id": "PSDFR-ACPR-1", "reason": "superseded"},
                                      aud="http://127.0.0.1:8080/nca/v1/revocation-requests")
    from qtsp.core.errors import Kind
    from qtsp.services import nca as nca_svc

    with pytest.raises(QTSPError) as err:  # authenticated with ES384, then: no such PSP
        nca_svc.handle(sandbox, "revocation", compact)
    assert err.value.kind is Kind.NOT_FOUND
