"""The negative catalogue of signed API requests (issue 19): what a bank's request-signature verifier must
answer, with the Berlin Group error code, for each defect of a TPP's request or of the certificates it uses.

Each entry names the certificate scenarios it sends with (``seal``: the QSealC that signs, ``tls``: the
client QWAC of the mutual-TLS connection, both from ``scenarios.CATALOGUE``), the request, the defect
(``tamper``, ``qtsp.relying_party.http_signatures.tamper``) and the expected answer. The certificates the
request cases need that the certificate catalogue lacked (QSealCs expired, not yet valid, revoked, of
another organisation) are added to it here, so ``qtsp scenarios issue`` makes them with the rest and
manifest.json lists both. ``tests/system/relying_party/test_bank.py`` sends every entry through the demo
bank, in each of its schemes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..core.keys import signature_hash
from . import scenario_certs as make
from .scenario_cas import SCENARIOS_CA
from .scenario_certs import Context, Made, Scenario

__all__ = ["CERTIFICATES", "OTHER_ORG_ID", "REQUESTS", "RequestScenario", "manifest_entries"]

OTHER_ORG_ID = "PSDBE-NBB-0999000002"
OTHER_ORG_NAME = "Other Payments SA"
SCHEMES = ("berlin-group", "rfc9421", "jades")
ACCOUNTS = "/v1/accounts"
PAYMENTS = "/v1/payments/sepa-credit-transfers"
PAYMENT = b'{"instructedAmount": {"currency": "EUR", "amount": "12.50"}, "debtorAccount": {"iban": "BE68539007547034"}, ' \
          b'"creditorName": "Merchant", "creditorAccount": {"iban": "BE71096123456769"}}'


def _other_org(ctx: Context, sc: Scenario) -> Made:
    """A correct QSealC whose subject is another PSP (O and organizationIdentifier), same NCA."""
    template, key = make._template(ctx, sc)
    replaced = {NameOID.ORGANIZATION_IDENTIFIER: OTHER_ORG_ID, NameOID.ORGANIZATION_NAME: OTHER_ORG_NAME,
                NameOID.COMMON_NAME: OTHER_ORG_NAME}
    subject = x509.Name([x509.NameAttribute(a.oid, replaced.get(a.oid, a.value))
                         for a in template.subject])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(template.issuer)
               .public_key(template.public_key()).serial_number(template.serial_number)
               .not_valid_before(template.not_valid_before_utc).not_valid_after(template.not_valid_after_utc))
    for ext in template.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    signer = ctx.cas[SCENARIOS_CA].signer
    return Made(builder.sign(signer, signature_hash(signer)), key, SCENARIOS_CA, (SCENARIOS_CA,))


CERTIFICATES = [
    Scenario("qsealc-expired", "A QSealC that expired weeks ago: reject (expired). A bank answers a request sealed "
             "with it CERTIFICATE_EXPIRED.", "qsealc", "reject", ("expired",), "reject", make.expired),
    Scenario("qsealc-not-yet-valid", "A QSealC whose notBefore is 30 days ahead: reject (not yet valid); a bank "
             "answers CERTIFICATE_INVALID.", "qsealc", "reject", ("not-yet-valid",), "reject", make.not_yet_valid),
    Scenario("qsealc-revoked", "A QSealC revoked (keyCompromise); OCSP and the CRL say so: reject (revoked); a bank "
             "answers CERTIFICATE_REVOKED.", "qsealc", "reject", ("revoked",), "reject", make.revoked("key-compromise")),
    Scenario("qsealc-other-org", f"A correct QSealC of another PSP ({OTHER_ORG_ID}): accept on its own; a bank "
             "refuses a request sealed with it on the connection of another PSP's QWAC (CERTIFICATE_INVALID).",
             "qsealc", "accept", (), "accept", _other_org),
]


@dataclass(frozen=True)
class RequestScenario:
    name: str
    description: str
    method: str
    path: str
    status: int  # the bank's HTTP status
    code: str | None  # the Berlin Group tppMessages code; None for a success
    seal: str = "valid-qsealc"
    tls: str = "valid-qwac"
    tamper: str | None = None
    body: bytes = b""
    schemes: tuple[str, ...] = SCHEMES

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "schemes": list(self.schemes),
                "request": {"method": self.method, "path": self.path, "body": self.body.decode() or None,
                            "seal": self.seal, "tls": self.tls, "tamper": self.tamper},
                "expected": {"status": self.status, "code": self.code}}


REQUESTS = [
    RequestScenario("request-accepted", "The control case: a correct request sealed with the PSP's QSealC over mutual "
                    "TLS with its QWAC: 200, the accounts.", "GET", ACCOUNTS, 200, None),
    RequestScenario("request-payment-accepted", "A payment initiation (PSP_PI) with a body, correctly sealed: 201.",
                    "POST", PAYMENTS, 201, None, body=PAYMENT),
    RequestScenario("digest-mismatch", "The body changed after the seal: the digest no longer matches it. "
                    "SIGNATURE_INVALID.", "POST", PAYMENTS, 401, "SIGNATURE_INVALID", tamper="digest-mismatch", body=PAYMENT),
    RequestScenario("header-not-signed", "X-Request-ID is sent but not covered by the signature: SIGNATURE_INVALID.",
                    "GET", ACCOUNTS, 401, "SIGNATURE_INVALID", tamper="header-not-signed"),
    RequestScenario("signed-by-other-key", "The signature is made with another key than the one of "
                    "TPP-Signature-Certificate: SIGNATURE_INVALID.", "GET", ACCOUNTS, 401, "SIGNATURE_INVALID",
                    tamper="other-key"),
    RequestScenario("qsealc-expired", "Sealed with an expired QSealC: CERTIFICATE_EXPIRED.", "GET", ACCOUNTS, 401,
                    "CERTIFICATE_EXPIRED", seal="qsealc-expired"),
    RequestScenario("qsealc-revoked", "Sealed with a revoked QSealC (OCSP says revoked): CERTIFICATE_REVOKED.", "GET",
                    ACCOUNTS, 401, "CERTIFICATE_REVOKED", seal="qsealc-revoked"),
    RequestScenario("qsealc-not-yet-valid", "Sealed with a QSealC not yet valid: CERTIFICATE_INVALID.", "GET", ACCOUNTS,
                    401, "CERTIFICATE_INVALID", seal="qsealc-not-yet-valid"),
    RequestScenario("qwac-as-seal", "Signed with the QWAC's key and the QWAC sent as TPP-Signature-Certificate: a "
                    "website certificate is not a seal (QcType web, no nonRepudiation). CERTIFICATE_INVALID.", "GET",
                    ACCOUNTS, 401, "CERTIFICATE_INVALID", seal="valid-qwac"),
    RequestScenario("qsealc-other-organisation", "Sealed with another PSP's valid QSealC over this PSP's QWAC: the "
                    "organizationIdentifiers differ. CERTIFICATE_INVALID.", "GET", ACCOUNTS, 401, "CERTIFICATE_INVALID",
                    seal="qsealc-other-org"),
    RequestScenario("role-missing", "A funds confirmation needs PSP_IC; the PSP holds PSP_AI and PSP_PI: ROLE_INVALID "
                    "(401 in NextGenPSD2 IG 14.11).", "POST", "/v1/funds-confirmations", 401, "ROLE_INVALID",
                    body=b'{"instructedAmount": {"currency": "EUR", "amount": "5.00"}}'),
    RequestScenario("clock-skew", "Signed 15 minutes ago (Date / created / sigT), outside the bank's 5-minute window: "
                    "SIGNATURE_INVALID.", "GET", ACCOUNTS, 401, "SIGNATURE_INVALID", tamper="clock-skew"),
    RequestScenario("replayed-x-request-id", "The same signed request sent twice: the second, with an X-Request-ID "
                    "already used, is refused as a replay (SIGNATURE_INVALID); the first gets 200.", "GET", ACCOUNTS,
                    401, "SIGNATURE_INVALID", tamper="replay"),
    RequestScenario("unsupported-algorithm", "The signature declares hmac-sha256 (HS256 in JAdES), a shared-secret "
                    "algorithm no QSealC makes and the bank's allow-list refuses: SIGNATURE_INVALID.", "GET", ACCOUNTS,
                    401, "SIGNATURE_INVALID", tamper="unsupported-algorithm"),
    RequestScenario("signature-missing", "No signature at all: SIGNATURE_MISSING.", "GET", ACCOUNTS, 401,
                    "SIGNATURE_MISSING", tamper="unsigned", schemes=("berlin-group",)),
    RequestScenario("certificate-missing", "Signed, but without TPP-Signature-Certificate: CERTIFICATE_MISSING.",
                    "GET", ACCOUNTS, 401, "CERTIFICATE_MISSING", tamper="no-certificate",
                    schemes=("berlin-group", "rfc9421")),
]


def manifest_entries(issued: set[str]) -> list[dict[str, Any]]:
    """The request scenarios whose certificates are among ``issued``."""
    return [r.as_dict() for r in REQUESTS if r.seal in issued and r.tls in issued]
