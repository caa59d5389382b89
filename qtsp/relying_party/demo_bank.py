"""A demo bank (ASPSP): a few NextGenPSD2 XS2A-style endpoints behind ``SignatureVerifier``, for trying a
TPP's signed requests end to end (``qtsp bank serve``). The data is fixed and nothing is stored: it answers
what an XS2A interface answers once the TPP is authenticated (consent and SCA are the bank's and not here).

    GET  /v1/accounts                          PSP_AI   account list
    GET  /v1/accounts/<id>/balances            PSP_AI
    POST /v1/payments/<product>                PSP_PI   201, transactionStatus RCVD
    GET  /v1/payments/<product>/<id>/status    PSP_PI
    POST /v1/funds-confirmations               PSP_IC   fundsAvailable
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from . import bank_errors

__all__ = ["ROLES", "app"]

ROLES: dict[str, str | None] = {"/v1/accounts": "PSP_AI", "/v1/payments": "PSP_PI", "/v1/funds-confirmations": "PSP_IC"}
ACCOUNTS = [
    {"resourceId": "3dc3d5b3-7023-4848-9853-f5400a64e80f", "iban": "BE68539007547034", "currency": "EUR",
     "name": "Main account", "cashAccountType": "CACC", "status": "enabled"},
    {"resourceId": "42fb4cc3-91cb-45ba-9159-b87acf6d8add", "iban": "BE71096123456769", "currency": "EUR",
     "name": "Savings", "cashAccountType": "SVGS", "status": "enabled"},
]


def _json(start_response: Callable[..., Any], status: str, data: Any, environ: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(data).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    request_id = environ.get("HTTP_X_REQUEST_ID")
    if request_id:
        headers.append(("X-Request-ID", str(request_id)[:100]))
    start_response(status, headers)
    return [payload]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    method, path = environ.get("REQUEST_METHOD", "GET"), str(environ.get("PATH_INFO", "/"))
    parts = [p for p in path.split("/") if p]
    tpp = environ.get("qtsp.tpp", {})
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if method == "GET" and parts == ["v1", "accounts"]:
        return _json(start_response, "200 OK", {"accounts": ACCOUNTS, "tppAuthentication": tpp}, environ)
    if method == "GET" and len(parts) == 4 and parts[:2] == ["v1", "accounts"] and parts[3] == "balances":
        if parts[2] not in {a["resourceId"] for a in ACCOUNTS}:
            return _error(start_response, "RESOURCE_UNKNOWN", "no such account")
        return _json(start_response, "200 OK", {"balances": [{"balanceType": "interimAvailable", "balanceAmount":
                                                             {"currency": "EUR", "amount": "1520.75"}}]}, environ)
    if parts[:2] == ["v1", "payments"]:
        if method == "POST" and len(parts) == 3:
            try:
                payment = json.loads(body or b"null")
            except ValueError:
                payment = None
            if not isinstance(payment, dict) or "instructedAmount" not in payment:
                return _error(start_response, "FORMAT_ERROR", "the body must be a JSON payment with instructedAmount")
            payment_id = hashlib.sha256(body + str(tpp.get("request_id")).encode()).hexdigest()[:32]
            return _json(start_response, "201 Created", {"transactionStatus": "RCVD", "paymentId": payment_id,
                                                          "_links": {"status": {"href": f"{path}/{payment_id}/status"}},
                                                          "tppAuthentication": tpp}, environ)
        if method == "GET" and len(parts) == 5 and parts[4] == "status":
            return _json(start_response, "200 OK", {"transactionStatus": "ACSP"}, environ)
    if method == "POST" and parts == ["v1", "funds-confirmations"]:
        return _json(start_response, "200 OK", {"fundsAvailable": True, "tppAuthentication": tpp}, environ)
    return _error(start_response, "RESOURCE_UNKNOWN", f"no service {method} {path[:200]}")


def _error(start_response: Callable[..., Any], code: str, text: str) -> list[bytes]:
    payload = bank_errors.body(code, text)
    start_response(bank_errors.status_line(code), [("Content-Type", "application/json"),
                                                   ("Content-Length", str(len(payload)))])
    return [payload]
