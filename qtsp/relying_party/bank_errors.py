"""The Berlin Group's error answers, as a bank's XS2A interface gives them.

NextGenPSD2 XS2A Framework Implementation Guidelines V1.3.x, 14.11 ("Additional Error Information"):
``{"tppMessages": [{"category": "ERROR", "code": "...", "text": "..."}]}`` with the HTTP status the table
gives each code. The statuses below are that table's, as the adorsys xs2a reference implementation also
encodes them (``MessageErrorCode``): every certificate and signature code is 401, and so is ROLE_INVALID
(the TPP is not authenticated *for this service*), not 403.
"""

from __future__ import annotations

import json

__all__ = ["STATUS", "body", "status_line"]

STATUS = {
    "CERTIFICATE_INVALID": 401,  # the certificate's content does not meet PSD2 requirements
    "CERTIFICATE_EXPIRED": 401,
    "CERTIFICATE_BLOCKED": 401,  # blocked by the ASPSP
    "CERTIFICATE_REVOKED": 401,  # revoked by the QTSP
    "CERTIFICATE_MISSING": 401,
    "SIGNATURE_INVALID": 401,
    "SIGNATURE_MISSING": 401,
    "ROLE_INVALID": 401,  # the TPP does not have the PSD2 role this service needs
    "FORMAT_ERROR": 400,
    "RESOURCE_UNKNOWN": 404,
    "ACCESS_EXCEEDED": 429,
}
_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
MAX_TEXT = 500  # tppMessages text is Max500Text


def status_line(code: str) -> str:
    status = STATUS[code]
    return f"{status} {_REASONS[status]}"


def body(code: str, text: str) -> bytes:
    return json.dumps({"tppMessages": [{"category": "ERROR", "code": code, "text": text[:MAX_TEXT]}]}).encode()
