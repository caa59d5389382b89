"""The OpenAPI 3.1 description of /api/v1, served at GET /api/v1/openapi.json.

Paths are relative to the server URL ``/api/v1``. Limits, reasons and algorithms come from the
modules that enforce them, so the description cannot drift from the checks.
"""

from __future__ import annotations

from typing import Any

from ..core.http import TIME_HEADER
from ..core.keys import MAX_CSR_BYTES
from ..services import issuance, tokens
from ..services.behaviours import BEHAVIOURS, CRL, OCSP
from ..services.search import STATUSES as CERTIFICATE_STATUSES

from ..services.revocation import REASON_CHOICES
from .contract import IAT_WINDOW, JWS_ALGORITHMS, KINDS, MAX_BEHAVIOUR_ID, STATUSES
from .query import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET

SERVER = "/api/v1"
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _problem_response(description: str, *, challenge: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if challenge:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                    "description": 'Bearer realm="qtsp-api"[, error="..."]'}}
    return response


def _json(ref: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
            **extra}


def _errors(*statuses: int, authenticated: bool = True) -> dict[str, Any]:
    texts = {
        400: "malformed request: bad JSON, wrong types, unknown fields, bad serial",
        401: "missing, invalid or revoked API token",
        403: "the token's role may not use this endpoint",
        404: "no such certificate",
        409: "conflict: the certificate is already revoked",
        413: "request body too large",
        415: "wrong Content-Type",
        422: "refused by policy or by the linter",
        503: "the store or the CA key is unavailable",
    }
    out = {str(s): _problem_response(texts[s], challenge=s in (401, 403) and authenticated) for s in statuses}
    return out


SERIAL_PARAMETER = {
    "name": "serial", "in": "path", "required": True,
    "description": "certificate serial number in hex, as openssl prints it (colons and 0x allowed)",
    "schema": {"type": "string", "maxLength": 128, "examples": ["4F1A2B3C4D5E6F70"]},
}


_NCA_DESCRIPTION = (
    "The body is a compact JWS (Content-Type application/jose) signed with a registered NCA credential: alg ES256, "
    "ES384, PS256 or RS256; x5c or kid (SHA-256 of the certificate) names it; claims iss (NCA id), jti (request id), "
    "iat (within nca_request_window_seconds), aud (the URL the request is sent to: this service's base_url and the "
    "path; another URL is refused, 401) and body. The credential is checked on every request: withdrawn, revoked, "
    "expired, not yet valid or no longer chaining to its anchor is 401. The same jti with the same body returns the "
    "first answer (Idempotent-Replayed: true); with another body, 409."
)
_NCA_BODY = {"required": True, "content": {"application/jose": {"schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$"}}}}
_NCA_RESPONSES = {
    "200": {"description": "done: result and receipt (a JWS signed by the QTSP, x5c up to the sandbox root)",
            "content": {"application/json": {"schema": {"type": "object", "required": ["result", "receipt"],
                                                         "properties": {"result": {"type": "object"},
                                                                        "receipt": {"type": "string"}}}}}},
    **{str(code): {"description": text, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
       for code, text in ((400, "malformed request or body"), (401, "not authenticated: unsigned, bad signature, "
                          "algorithm not accepted, unknown credential, stale or future iat"),
                          (403, "authenticated, but the organizationIdentifier names another NCA"),
                          (404, "unknown PSP, authorisation number or serial; another NCA's answers the same"), (409, "request id reused with another body"),
                          (413, "body too large"), (415, "not application/jose"))},
}


CA_ID_PATTERN = "^[a-z0-9-]{1,64}$"


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _paging_parameters(*, cursor: bool) -> list[dict[str, Any]]:
    parameters = [
        _query("limit", "items per page", type="integer", minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT),
        _query("offset", "items to skip" + (" (not with cursor)" if cursor else ""),
               type="integer", minimum=0, maximum=MAX_OFFSET, default=0),
    ]
    if cursor:
        parameters.append(_query("cursor", "opaque: from the 'next' link of the page before",
                                 type="string", pattern="^[A-Za-z0-9_-]{1,64}$"))
    return parameters


def _list_errors() -> dict[str, Any]:
    return {"400": _problem_response("an unknown, repeated or bad query parameter; the detail names it"),
            **_errors(401, 403)}


def _page_properties(items: str, item_ref: str) -> dict[str, Any]:
    return {
        items: {"type": "array", "items": {"$ref": f"#/components/schemas/{item_ref}"}},
        "total": {"type": "integer", "minimum": 0, "description": "items matching the filters, on every page"},
        "limit": {"type": "integer"},
        "offset": {"type": "integer", "description": "matching items before the first of this page"},
        "next_offset": {"type": ["integer", "null"], "description": "offset of the next page; null on the last"},
        "next": {"type": ["string", "null"], "description": "URL of the next page (same filters); null on the last"},
    }


def document() -> dict[str, Any]:
    """The whole description, assembled from one piece per path group."""
    return {
        "openapi": "3.1.0",
        "info": _info(),
        "servers": [{"url": SERVER}],
        "security": BEARER,
        "paths": {**_certificate_paths(), **_revoke_by_key_paths(), **_simulator_paths(), **_nca_credential_paths(),
                  **_nca_paths(), **_meta_paths()},
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "qtsp_<43 base64url characters>",
                               "description": f"roles: {', '.join(tokens.ROLES)}"},
            },
            "schemas": {**_common_schemas(), **_certificate_schemas(), **_revoke_by_key_schemas(),
                        **_simulator_schemas()},
        },
    }


def _info() -> dict[str, Any]:
    return {
        "title": "qtsp sandbox QTSP API",
        "version": "1",
        "description": (
            "Issue, look up and revoke PSD2 QWACs and QSealCs in the sandbox. Every operation needs an API token "
            "(Authorization: Bearer qtsp_...) unless marked otherwise: operator tokens may do everything, "
            "auditor tokens may only read. Tokens are made with 'qtsp tokens create'. Errors are RFC 9457 "
            f"problem+json. Sandbox time travel: when the sandbox's time_travel is on, a {TIME_HEADER} header "
            "(ISO 8601 with a zone, e.g. 2027-06-01T00:00Z) makes any request act as of that time, and the "
            "response echoes it with Cache-Control: no-store; when it is off, the header is refused with 400."
        ),
    }


def _common_schemas() -> dict[str, Any]:
    return {
        "Problem": {
            "type": "object", "description": "RFC 9457 problem details",
            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                           "status": {"type": "integer"}, "detail": {"type": "string"},
                           "findings": {"type": "array", "items": {"type": "string"}}},
            "required": ["type", "title", "status", "detail"],
        },
    }


# --- /certificates ---------------------------------------------------------------------------------


def _certificate_paths() -> dict[str, Any]:
    return {
        "/certificates": {
            "post": {
                "operationId": "issueCertificate",
                "summary": "Issue a QWAC or QSealC from a CSR (operator)",
                "description": "The key stays with the subscriber: only a PKCS#10 CSR is accepted, never key generation.",
                "security": BEARER,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/IssueRequest"}}}},
                "responses": {
                    "201": {**_json("IssuedCertificate", "issued", headers={
                        "Location": {"schema": {"type": "string"}, "description": "the certificate's URL"}}),
                        # OpenAPI links: what a client (and schemathesis' stateful tests) may call next.
                        "links": {
                            "GetIssued": {"operationId": "getCertificate",
                                          "parameters": {"serial": "$response.body#/serial"}},
                            "RevokeIssued": {"operationId": "revokeCertificate",
                                             "parameters": {"serial": "$response.body#/serial"}},
                        }},
                    **_errors(400, 401, 403, 413, 415, 422, 503),
                },
            },
            "get": {
                "operationId": "listCertificates",
                "summary": "List or search issued certificates, newest first (operator, auditor)",
                "description": (
                    "Filters combine (all must hold); total counts every match. Follow 'next' for the next page: it "
                    "carries a cursor (where the page ended), so certificates issued or revoked between two requests "
                    "neither repeat nor go missing, as they would when paging by offset. offset stays for jumping to "
                    "a position; it and cursor exclude each other. An unknown or repeated parameter, or a bad value, "
                    "is 400 naming it."
                ),
                "security": BEARER,
                "parameters": [
                    _query("org_id", "the PSP's organizationIdentifier", type="string", minLength=1, maxLength=128),
                    _query("kind", "every profile of this kind (qwac, the 1-QWACs: qwac, qwac-client and qwac-browser; "
                           "two-qwac: the 2-QWACs)", type="string", enum=list(KINDS)),
                    _query("profile", "exactly this profile", type="string", pattern="^[a-z0-9-]{1,64}$",
                           examples=["qwac", "qwac-client", "qwac-browser", "qsealc", "qsealc-qscd", "two-qwac"]),
                    _query("issuer", "the issuing CA's id", type="string", pattern=CA_ID_PATTERN, examples=["qwac-ca"]),
                    _query("status", "as of now: valid (not revoked, within its validity), expired (not revoked, "
                           "past notAfter), revoked, good (not revoked, whatever its dates)",
                           type="string", enum=list(CERTIFICATE_STATUSES)),
                    {"name": "expiring_before", "in": "query",
                     "description": "notAfter before this time: a date (00:00Z that day) or a date-time with a zone",
                     # ISO 8601 as Python reads it (2027-06-01T12:00Z too), wider than JSON Schema's date-time
                     "schema": {"type": "string", "minLength": 10, "maxLength": 40,
                                "examples": ["2027-06-01", "2027-06-01T12:00:00Z"]}},
                    *_paging_parameters(cursor=True),
                ],
                "responses": {"200": _json("CertificateList", "a page of certificates"), **_list_errors()},
            },
        },
        "/certificates/{serial}": {
            "get": {
                "operationId": "getCertificate",
                "summary": "One certificate, with its PEM (operator, auditor)",
                "security": BEARER,
                "parameters": [SERIAL_PARAMETER],
                "responses": {"200": _json("CertificateDetail", "the certificate"), **_errors(400, 401, 403, 404)},
            },
        },
        "/certificates/{serial}/revoke": {
            "post": {
                "operationId": "revokeCertificate",
                "summary": "Revoke a certificate (operator)",
                "description": ("OCSP says revoked before this returns; the CRL follows. A revoked certificate's "
                                "reason may only be changed to key-compromise; anything else is 409."),
                "security": BEARER,
                "parameters": [SERIAL_PARAMETER],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/RevokeRequest"}}}},
                "responses": {"200": _json("Revocation", "revoked"), **_errors(400, 401, 403, 404, 409, 413, 415, 503)},
            },
        },
    }


def _certificate_schemas() -> dict[str, Any]:
    return {
        "IssueRequest": {
            "type": "object", "additionalProperties": False, "required": ["kind", "org_id", "csr"],
            "properties": {
                "kind": {"type": "string", "enum": list(KINDS),
                         "description": "qwac: a 1-QWAC (the TLS certificate is qualified); qsealc; two-qwac: a 2-QWAC "
                                        "(ETSI TS 119 411-5 4.2: QNCP-w-gen, EKU id-kp-tls-binding only, from the 2-QWAC "
                                        "CA; it signs TLS certificate bindings; its key P-256 or RSA)"},
                "org_id": {"type": "string", "maxLength": 128, "examples": ["PSDBE-NBB-0123456789"],
                           "description": "the PSP's organizationIdentifier; it must be in the NCA register"},
                "csr": {"type": "string", "maxLength": MAX_CSR_BYTES, "description": "PKCS#10 request, PEM"},
                "domains": {"type": "array", "maxItems": issuance.MAX_DOMAINS, "items": {"type": "string"},
                            "description": "DNS names; at least one for a QWAC (1-QWAC or 2-QWAC), none for a QSealC"},
                "roles": {"description": "narrows the register's roles",
                          "oneOf": [{"type": "string", "examples": ["PSP_AI,PSP_PI"]},
                                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                    {"type": "null"}]},
                "qscd": {"type": "boolean", "default": False, "description": "QSealC only: key in a QSCD"},
                "purpose": {"type": "string", "enum": ["server", "client", "both"], "default": "both",
                            "description": "QWAC only, and it decides the hierarchy: server (browser root, serverAuth "
                                           "only), client (non-browser root, clientAuth only), both (non-browser root, "
                                           "serverAuth + clientAuth)"},
                "browser": {"type": "boolean", "default": False, "description": "QWAC only: the same as purpose server"},
            },
        },
        "IssuedCertificate": {
            "type": "object",
            "required": ["serial", "issuer", "certificate", "chain", "not_before", "not_after"],
            "properties": {
                "serial": {"type": "string"}, "issuer": {"type": "string"}, "subject": {"type": "string"},
                "certificate": {"type": "string", "description": "PEM"},
                "chain": {"type": "array", "items": {"type": "string"}, "description": "issuing CA, then root (PEM)"},
                "not_before": {"type": "string", "format": "date-time"},
                "not_after": {"type": "string", "format": "date-time"},
            },
        },
        "CertificateSummary": {
            "type": "object",
            "properties": {
                "serial": {"type": "string"}, "issuer": {"type": "string"}, "profile": {"type": "string"},
                "subject": {"type": "string"}, "org_id": {"type": ["string", "null"]},
                "nca_id": {"type": ["string", "null"]},
                "roles": {"type": "array", "items": {"type": "string"}},
                "dns_names": {"type": "array", "items": {"type": "string"}},
                "not_before": {"type": "string", "format": "date-time"},
                "not_after": {"type": "string", "format": "date-time"},
                "status": {"type": "string", "enum": list(STATUSES)},
                "sha256": {"type": "string"},
                "revocation": {"oneOf": [{"type": "null"}, {
                    "type": "object", "properties": {"reason": {"type": "string", "enum": list(REASON_CHOICES)},
                                                     "revoked_at": {"type": "string", "format": "date-time"}}}]},
            },
        },
        "CertificateDetail": {
            "allOf": [{"$ref": "#/components/schemas/CertificateSummary"},
                      {"type": "object", "properties": {"certificate": {"type": "string", "description": "PEM"}}}],
        },
        "CertificateList": {
            "type": "object",
            "required": ["certificates", "total", "limit", "offset", "next_offset", "next"],
            "properties": _page_properties("certificates", "CertificateSummary"),
        },
        "RevokeRequest": {
            "type": "object", "additionalProperties": False, "required": ["reason"],
            "properties": {"reason": {"type": "string", "enum": list(REASON_CHOICES)}},
        },
        "Revocation": {
            "type": "object", "required": ["serial", "reason", "revoked_at"],
            "properties": {
                "serial": {"type": "string"}, "issuer": {"type": "string"},
                "reason": {"type": "string", "enum": list(REASON_CHOICES)},
                "revoked_at": {"type": "string", "format": "date-time"},
                "reason_changed_from": {"type": ["string", "null"]},
                "published_in": {"type": "array", "items": {"type": "string", "enum": ["ocsp", "crl"]},
                                 "description": "where the revocation is published: a CA without an OCSP "
                                                "responder (nca-ca) publishes it in its CRL only"},
                "note": {"type": ["string", "null"]},
            },
        },
    }


# --- /revoke-by-key --------------------------------------------------------------------------------


def _revoke_by_key_paths() -> dict[str, Any]:
    return {
        "/revoke-by-key": {
            "post": {
                "operationId": "revokeByKey",
                "summary": "Revoke a certificate by proving possession of its private key (no token)",
                "description": (
                    "Like ACME revocation signed with the certificate key: the body is a JWS in compact "
                    f"serialisation, signed with the certificate's own private key ({', '.join(JWS_ALGORITHMS)}; "
                    "'none' and HMAC are refused; header parameters other than alg, typ and kid are refused), "
                    "whose payload is a RevokeByKeyPayload. iat must be within "
                    f"{int(IAT_WINDOW.total_seconds() // 60)} minutes of the server's clock; a jti is accepted once; "
                    "aud must be this endpoint's URL (the service's base_url + /api/v1/revoke-by-key)."
                ),
                "security": [],
                "requestBody": {"required": True, "content": {"application/jose": {
                    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
                               "description": "compact JWS; payload: RevokeByKeyPayload"}}}},
                "responses": {
                    "200": _json("Revocation", "revoked"),
                    **_errors(400, 404, 413, 415, 503, authenticated=False),
                    "403": _problem_response("not signed with the certificate's key, iat outside the window, or aud "
                                             "naming another URL"),
                    "409": _problem_response("jti replayed, or the certificate is already revoked"),
                },
            },
        },
    }


def _revoke_by_key_schemas() -> dict[str, Any]:
    return {
        "RevokeByKeyPayload": {
            "type": "object", "additionalProperties": False, "required": ["serial", "reason", "iat", "jti", "aud"],
            "properties": {
                "serial": {"type": "string", "description": "hex"},
                "reason": {"type": "string", "enum": list(REASON_CHOICES)},
                "iat": {"type": "integer", "description": "Unix seconds"},
                "jti": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
                "aud": {"type": "string", "format": "uri", "description": "this endpoint's URL"},
            },
        },
    }


# --- /simulator ------------------------------------------------------------------------------------


def _simulator_paths() -> dict[str, Any]:
    return {
        "/simulator/behaviours": {
            "get": {
                "operationId": "listBehaviours",
                "summary": "The responder misbehaviours in force, and whether time travel is on (operator, auditor)",
                "description": "Oldest first, paged by offset ('next' links to the next page).",
                "security": BEARER,
                "parameters": [
                    _query("ca", "behaviours of this CA", type="string", pattern=CA_ID_PATTERN, examples=["qwac-ca"]),
                    _query("target", "behaviours of the OCSP responder or of the CRL", type="string",
                           enum=[OCSP, CRL]),
                    *_paging_parameters(cursor=False),
                ],
                "responses": {"200": _json("BehaviourList", "a page of behaviours, oldest first"), **_list_errors()},
            },
            "put": {
                "operationId": "setBehaviour",
                "summary": "Make a CA's OCSP responder or CRL, or one certificate's OCSP answers, misbehave (operator)",
                "description": (
                    "Sandbox simulator: off until set, written to the audit log, in force on every worker before "
                    "this returns. Replaces the behaviour the same CA (or certificate) had for the same target. "
                    "A per-certificate behaviour beats the CA's. Answers under a behaviour are signed on demand "
                    "and never cached. Behaviours: " + "; ".join(f"{name} ({fault.target}): {fault.description}"
                                                                for name, fault in BEHAVIOURS.items()) + "."
                ),
                "security": BEARER,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/BehaviourRequest"}}}},
                "responses": {
                    "200": _json("Behaviour", "in force"),
                    **_errors(400, 401, 403, 413, 415),
                    "404": _problem_response("no such CA, or that CA issued no certificate with that serial"),
                    "409": _problem_response("the same behaviour was changed concurrently; retry"),
                    "422": _problem_response("delay beyond simulator_max_delay_seconds, or an OCSP behaviour for "
                                             "a CA without an OCSP responder"),
                },
            },
        },
        "/simulator/behaviours/{behaviour_id}": {
            "delete": {
                "operationId": "clearBehaviour",
                "summary": "Switch one behaviour off; correct answers again at once (operator)",
                "security": BEARER,
                "parameters": [{"name": "behaviour_id", "in": "path", "required": True,
                                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_BEHAVIOUR_ID}}],
                "responses": {
                    "200": _json("Behaviour", "removed"),
                    **_errors(400, 401, 403),
                    "404": _problem_response("no such behaviour"),
                },
            },
        },
    }


def _simulator_schemas() -> dict[str, Any]:
    return {
        "BehaviourRequest": {
            "type": "object", "additionalProperties": False, "required": ["ca", "behaviour"],
            "properties": {
                "ca": {"type": "string", "pattern": CA_ID_PATTERN, "examples": ["qwac-ca"]},
                "behaviour": {"type": "string", "enum": list(BEHAVIOURS)},
                "serial": {"type": ["string", "null"], "maxLength": 128,
                           "description": "one certificate of the CA (hex); OCSP behaviours only"},
                "target": {"type": ["string", "null"], "enum": [OCSP, CRL, None],
                           "description": "implied by the behaviour; if given, it must agree"},
                "delay_seconds": {"type": ["number", "null"], "minimum": 0,
                                  "description": "slow only, and required there; at most the sandbox's "
                                                 "simulator_max_delay_seconds (default 10)"},
            },
        },
        "Behaviour": {
            "type": "object",
            "required": ["id", "ca", "target", "serial", "behaviour", "delay_seconds", "created_at", "created_by"],
            "properties": {
                "id": {"type": "integer"}, "ca": {"type": "string"},
                "target": {"type": "string", "enum": [OCSP, CRL]},
                "serial": {"type": ["string", "null"], "description": "null: every certificate of the CA"},
                "behaviour": {"type": "string", "enum": list(BEHAVIOURS)},
                "delay_seconds": {"type": ["number", "null"]},
                "created_at": {"type": "string", "format": "date-time"}, "created_by": {"type": "string"},
            },
        },
        "BehaviourList": {
            "type": "object",
            "required": ["behaviours", "time_travel", "total", "limit", "offset", "next_offset", "next"],
            "properties": {**_page_properties("behaviours", "Behaviour"), "time_travel": {"type": "boolean"}},
        },
    }


# --- /nca-credentials (the operator withdraws an NCA's credential) ---------------------------------


def _nca_credential_paths() -> dict[str, Any]:
    return {
        "/nca-credentials/{fingerprint}/withdraw": {
            "post": {
                "operationId": "withdrawNcaCredential",
                "summary": "Withdraw an NCA's request-signing credential at once (operator, unscoped token)",
                "description": "Requests signed with it are refused from now on; its certificate, when the sandbox's "
                               "NCA CA issued it, is revoked with the reason given and listed on the nca-ca CRL.",
                "security": BEARER,
                "parameters": [{"name": "fingerprint", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "required": ["reason"],
                    "properties": {"reason": {"type": "string", "enum": list(REASON_CHOICES)}}}}}},
                "responses": {
                    "200": {"description": "withdrawn", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["nca_id", "fingerprint", "withdrawn_at", "revoked_serial"],
                        "properties": {"nca_id": {"type": "string"}, "fingerprint": {"type": "string"},
                                       "withdrawn_at": {"type": "string", "format": "date-time"},
                                       "revoked_serial": {"type": ["string", "null"]}}}}}},
                    **_errors(400, 401, 403, 413, 415),
                    "404": _problem_response("no such credential (or a token whose scope does not reach it)"),
                    "409": _problem_response("withdrawn already"),
                },
            },
        },
    }


# --- /nca/v1 (path-level servers: signed JWS instead of API tokens) -------------------------------


def _nca_paths() -> dict[str, Any]:
    return {
        "/authorisations": {
            "servers": [{"url": "/nca/v1"}],
            "post": {
                "operationId": "ncaAuthorisation",
                "summary": "NCA register feed: grant, change-roles or withdraw a PSP authorisation (signed JWS)",
                "description": _NCA_DESCRIPTION + " Body: {action: grant|change-roles|withdraw, org_id, name, roles, "
                               "country, locality, registration_number}. A withdrawal revokes every valid certificate "
                               "of the PSP carrying the NCA's id (privilegeWithdrawn); a withdrawn role revokes the "
                               "certificates carrying it; a granted role revokes nothing.",
                "security": [],
                "requestBody": _NCA_BODY,
                "responses": _NCA_RESPONSES,
            },
        },
        "/revocation-requests": {
            "servers": [{"url": "/nca/v1"}],
            "post": {
                "operationId": "ncaRevocationRequest",
                "summary": "NCA-requested revocation (TS 119 495 6.2.6), answered with a QTSP-signed receipt",
                "description": _NCA_DESCRIPTION + " Body: {org_id | authorisation_number, serials?, reason}. Only "
                               "certificates whose nCAId is the requesting NCA's are affected.",
                "security": [],
                "requestBody": _NCA_BODY,
                "responses": _NCA_RESPONSES,
            },
        },
        "/revocation-requests/{request_id}": {
            "servers": [{"url": "/nca/v1"}],
            "get": {
                "operationId": "ncaRevocationRequestStatus",
                "summary": "The stored result and receipt of an earlier request (Authorization: JWS <compact> with body "
                           "{get: id}, aud this URL; each signed query is accepted once)",
                "security": [],
                "parameters": [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": _NCA_RESPONSES,
            },
        },
    }


def _meta_paths() -> dict[str, Any]:
    return {
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document (no token)",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            },
        },
    }
