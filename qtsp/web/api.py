"""The REST API under /api/v1.

Access is decided in one place, ``_authorise``, from the ``ACCESS`` table: an endpoint that is
not listed there is refused to every caller (default deny), and only the endpoints marked
``PUBLIC`` are served without a bearer token. The hook runs for every path under the prefix,
including paths that match no route, so nothing under /api/v1 is reachable unauthenticated by
accident. The role is checked here; the token's scope (PSPs, kinds, CAs) goes to the services,
which answer what is outside it as if it did not exist (``qtsp.services.access``).

Bodies are parsed strictly (UTF-8 JSON objects, no duplicate keys, no NaN, no unknown fields,
checked types), and so are the list endpoints' query strings (``query``: known parameters, each
once, bounded); anything else is a 4xx problem+json, naming the field or parameter, before any
service is called.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import Blueprint, Response, g, jsonify, request, url_for


from ..clock import utcnow
from ..core.errors import Kind, QTSPError
from ..core.ocsp import REASONS
from ..core.profiles import PROFILES
from ..core.types import SerialHex, canonical_serial
from ..services import issuance, nca_identity, revocation, search, simulator, tokens
from ..services.access import Caller, Scope
from . import errors, metrics, query
from .contract import IAT_WINDOW, JWS_ALGORITHMS, KINDS, MAX_BEHAVIOUR_ID
from .errors import ApiProblem
from .state import state

if TYPE_CHECKING:
    from joserfc.jwk import ECKey, RSAKey
    from joserfc.jws import JWSRegistry

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PUBLIC = "public"
OPERATOR = frozenset({"operator"})
READERS = frozenset({"operator", "auditor"})
# endpoint -> roles allowed, or PUBLIC. Anything not listed here is denied to everyone.
ACCESS: dict[str, frozenset[str] | str] = {
    "api.issue_certificate": OPERATOR,
    "api.list_certificates": READERS,
    "api.get_certificate": READERS,
    "api.revoke_certificate": OPERATOR,
    "api.revoke_by_key": PUBLIC,  # authorised by the JWS, signed with the certificate's own key
    "api.list_behaviours": READERS,
    "api.set_behaviour": OPERATOR,
    "api.clear_behaviour": OPERATOR,
    "api.withdraw_nca_credential": OPERATOR,
    "api.openapi": PUBLIC,
}

REALM = "qtsp-api"
CA_ID = r"[a-z0-9-]{1,64}"
JWS_HEADERS = frozenset({"alg", "typ", "kid"})  # the key comes from the certificate, never from the JWS
JTI_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
KEY_ACTOR = "subscriber-key:"  # + jti: the revocation's actor and requested_by, found again on replay


@bp.errorhandler(ApiProblem)
def _api_problem(exc: ApiProblem) -> Response:
    return errors.problem(exc.status, exc.title, exc.detail, exc.title.replace(" ", "_"))


def _bad(detail: str) -> ApiProblem:
    return ApiProblem(400, "malformed", detail)


# --- access -------------------------------------------------------------------------------


def _under_prefix(path: str) -> bool:
    prefix = bp.url_prefix or ""
    return path == prefix or path.startswith(prefix + "/")


def _challenge(response: Response, error: str | None = None) -> Response:
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    response.headers["WWW-Authenticate"] = value
    return response


@bp.before_app_request
def _authorise() -> Response | None:
    if not _under_prefix(request.path):
        return None
    policy = ACCESS.get(request.endpoint or "")
    if policy == PUBLIC:
        return None
    header = request.headers.get("Authorization", "")
    if not header:
        return _challenge(errors.problem(401, "unauthorised", "an API token is required: Authorization: Bearer <token>",
                                         "unauthorised"))
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return _challenge(errors.problem(401, "unauthorised", "use the Bearer scheme: Authorization: Bearer <token>",
                                         "unauthorised"), "invalid_request")
    try:
        caller = tokens.authenticate(state().sandbox, credentials.strip())
    except QTSPError as exc:
        if exc.kind is not Kind.UNAUTHORISED:
            raise
        return _challenge(errors.problem(401, "unauthorised", "the API token is invalid, expired or revoked",
                                         "unauthorised"), "invalid_token")
    g.api_token = caller
    role = caller.role
    if request.routing_exception is not None:
        return None  # authenticated: let the 404 / 405 through
    if not isinstance(policy, frozenset) or role not in policy:
        needs = f"; it takes {' or '.join(sorted(policy))} tokens" if isinstance(policy, frozenset) else ""
        return _challenge(errors.problem(403, "forbidden", f"a token with the role {role!r} may not use this endpoint"
                                         f"{needs}", "forbidden"), "insufficient_scope")
    return None


# Until qtsp.web.app's 405 handler returns errors.method_not_allowed (which sets Allow itself), every 405
# from routing gets its Allow header here; registered app-wide because the handler is the app's.


@bp.after_app_request
def _count(response: Response) -> Response:
    if _under_prefix(request.path):
        metrics.http_request(request.endpoint or "api.unmatched", response.status_code)
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _actor() -> str:
    caller: Caller = g.api_token
    return caller.actor


def _scope() -> Scope:
    caller: Caller = g.api_token
    return caller.scope


# --- input ----------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _loads(raw: bytes, what: str) -> Any:
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates from \ud800 escapes
    except (ValueError, RecursionError, UnicodeError) as exc:
        raise _bad(f"{what} is not valid UTF-8 JSON: {str(exc)[:200]}") from None
    return data


def _body(mimetype: str) -> bytes:
    if request.mimetype != mimetype:
        raise ApiProblem(415, "unsupported media type", f"Content-Type must be {mimetype}")
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413 from the app
    if not raw.strip():
        raise _bad("the request body is empty")
    return raw


def _json_object(fields: dict[str, tuple[type, ...]], required: tuple[str, ...], raw: bytes | None = None,
                 what: str = "the request body") -> dict[str, Any]:
    data = _loads(_body("application/json") if raw is None else raw, what)
    if not isinstance(data, dict):
        raise _bad(f"{what} must be a JSON object")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise _bad(f"unknown field(s) in {what}: {', '.join(repr(u)[:80] for u in unknown[:10])}")
    missing = [name for name in required if name not in data]
    if missing:
        raise _bad(f"missing field(s) in {what}: {', '.join(missing)}")
    for name, value in data.items():
        types = fields[name]
        # bool is an int in Python; JSON booleans are only accepted where a boolean is meant
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise _bad(f"field {name!r} has the wrong type: expected {_type_names(types)}")
    return data


def _type_names(types: tuple[type, ...]) -> str:
    names = {str: "string", bool: "boolean", int: "integer", list: "array", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _serial(text: str) -> SerialHex:
    try:
        return canonical_serial(text)
    except QTSPError as exc:
        raise _bad(exc.detail) from None


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


def _certificate_json(record: search.CertificateRecord) -> dict[str, Any]:
    revoked = record.revocation
    data: dict[str, Any] = {
        "serial": record.serial, "issuer": record.issuer_id, "profile": record.profile, "subject": record.subject,
        "org_id": record.org_id, "nca_id": record.nca_id, "roles": list(record.roles),
        "dns_names": list(record.dns_names),
        "not_before": _iso(record.not_before), "not_after": _iso(record.not_after), "status": record.status,
        "sha256": record.sha256,
        "revocation": None if revoked is None else {"reason": revoked.reason, "revoked_at": _iso(revoked.revoked_at)},
    }
    if record.certificate is not None:
        data["certificate"] = _pem(record.certificate)
    return data


# --- certificates ----------------------------------------------------------------------------


@bp.post("/certificates")
def issue_certificate() -> Response:
    # The fields, their types and the refusals naming them: issue_request.FIELDS (source "api"), the table
    # the CLI and bulk issuance use too.
    body = _loads(_body("application/json"), "the request body")
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    req = issuance.parse_issue_request(body, source="api")
    issued = issuance.issue(state().sandbox, req, actor=_actor(), scope=_scope())
    cert = issued.certificate
    response = jsonify({
        "serial": issued.serial, "issuer": issued.issuer_id, "subject": cert.subject.rfc4514_string(),
        "certificate": _pem(cert), "chain": [_pem(c) for c in issued.chain],
        "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat(),
    })
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_certificate", serial=issued.serial)
    return response


LIST_FILTERS: dict[str, query.Parser] = {
    "org_id": query.text(128),
    "kind": query.one_of(*KINDS),
    "profile": query.text(64, r"[a-z0-9-]+", "a profile name such as qwac or qsealc-qscd"),
    "issuer": query.text(64, CA_ID, "a CA id such as qwac-ca"),
    "status": query.one_of(*search.STATUSES),
    "expiring_before": query.instant,
}
LIST_PARAMETERS = {**LIST_FILTERS, **query.PAGING_PARSERS, "cursor": query.cursor}


def _profiles(params: dict[str, Any]) -> tuple[str, ...] | None:
    """The profiles asked for: ``profile`` exactly (qwac is not qwac-browser), ``kind`` every profile of
    that kind; both: the ones that are both."""
    wanted = None if "kind" not in params else {n for n, p in PROFILES.items() if params["kind"] in p.tags}
    if "profile" in params:
        wanted = {params["profile"]} if wanted is None else wanted & {params["profile"]}
    return None if wanted is None else tuple(sorted(wanted))


@bp.get("/certificates")
def list_certificates() -> Response:
    """Newest first. The next page is found by a keyset cursor (``next``): issuance and revocation between
    two requests neither repeat nor skip a certificate, as an offset would. ``offset`` stays for a jump."""
    params = query.parse(request.args, LIST_PARAMETERS)
    page = query.Page.of(params)
    result = search.certificates(
        state().sandbox, now=utcnow(), org_id=params.get("org_id"), issuer_id=params.get("issuer"),
        profiles=_profiles(params), status=params.get("status"), expiring_before=params.get("expiring_before"),
        limit=page.limit, offset=page.offset, before_id=page.before_id, scope=_scope())
    records = [r for r in result.items if isinstance(r, search.CertificateRecord)]
    rows = [_certificate_json(r) for r in records]
    cursor = query.encode_cursor(records[-1].row_id) if result.more and records else None
    return jsonify({
        "certificates": rows, "total": result.total, "limit": page.limit, "offset": result.offset,
        "next_offset": None if cursor is None else result.offset + len(rows),
        "next": None if cursor is None else query.next_link(limit=page.limit, cursor=cursor),
    })


@bp.get("/certificates/<serial>")
def get_certificate(serial: str) -> Response:
    parsed = _serial(serial)
    return jsonify(_certificate_json(search.certificate(state().sandbox, parsed, _scope())))


REVOKE_FIELDS: dict[str, tuple[type, ...]] = {"reason": (str,)}


def _reason(value: str) -> str:
    if value not in REASONS:
        raise _bad(f"reason must be one of {', '.join(revocation.REASON_CHOICES)}")
    return value


def _revocation_json(result: revocation.RevocationResult) -> Response:
    return jsonify({"serial": result.serial, "issuer": result.issuer_id, "reason": result.reason,
                    "revoked_at": result.revoked_at.isoformat(), "reason_changed_from": result.changed_reason_from,
                    "published_in": result.published_in, "note": result.note})


@bp.post("/certificates/<serial>/revoke")
def revoke_certificate(serial: str) -> Response:
    parsed = _serial(serial)
    body = _json_object(REVOKE_FIELDS, ("reason",))
    result = revocation.revoke(state().sandbox, parsed, _reason(body["reason"]), actor=_actor(), scope=_scope())
    return _revocation_json(result)


# --- revocation by the certificate's own key (like ACME revokeCert signed with the cert key) ---

# aud: the URL of this endpoint as this service's base_url spells it; a request signed for another QTSP (or
# another endpoint) is refused there, so it cannot be replayed from one QTSP to another.
KEY_REVOKE_FIELDS: dict[str, tuple[type, ...]] = {"serial": (str,), "reason": (str,), "iat": (int,), "jti": (str,),
                                                  "aud": (str,)}


def _jws_registry() -> JWSRegistry:
    from joserfc import jws

    registry = jws.JWSRegistry(algorithms=list(JWS_ALGORITHMS))
    registry.max_signature_length = 2048  # RSA-8192 signatures are 1366 characters
    return registry


def _jose_key(public_key: object, alg: str) -> ECKey | RSAKey | None:
    """The certificate's key as a joserfc key, if ``alg`` is a signature this key can make."""
    from joserfc.jwk import ECKey, RSAKey

    if isinstance(public_key, ec.EllipticCurvePublicKey):
        fits = {"secp256r1": "ES256", "secp384r1": "ES384"}.get(public_key.curve.name) == alg
        cls: Any = ECKey
    elif isinstance(public_key, rsa.RSAPublicKey):
        fits = alg in ("RS256", "PS256")
        cls = RSAKey
    else:
        return None
    if not fits:
        return None
    return cls.import_key(public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))


@bp.post("/revoke-by-key")
def revoke_by_key() -> Response:
    from joserfc import jws
    from joserfc.errors import JoseError

    raw = _body("application/jose").strip()
    registry = _jws_registry()
    try:
        token = jws.extract_compact(raw, registry=registry)
        header = dict(token.headers())
    except (JoseError, ValueError, TypeError, UnicodeError, RecursionError) as exc:
        raise _bad(f"the body is not a JWS in compact serialisation: {type(exc).__name__}") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in JWS_ALGORITHMS:
        raise _bad(f"JWS alg {str(alg)[:32]!r} is not accepted: use one of {', '.join(JWS_ALGORITHMS)}")
    extra = sorted(set(header) - JWS_HEADERS)
    if extra:
        raise _bad(f"JWS header parameter(s) not accepted: {', '.join(repr(e)[:40] for e in extra[:5])}; "
                   "the certificate's key is the only key")
    payload = _json_object(KEY_REVOKE_FIELDS, tuple(KEY_REVOKE_FIELDS), raw=token.payload, what="the JWS payload")
    serial = _serial(payload["serial"])
    reason = _reason(payload["reason"])
    jti = payload["jti"]
    if not JTI_RE.fullmatch(jti):
        raise _bad("jti must be 8-64 characters of A-Z a-z 0-9 _ -")
    sandbox = state().sandbox
    record = search.certificate(sandbox, serial)  # 404 for an unknown serial
    issuer_id = record.issuer_id
    assert record.certificate is not None  # a single certificate comes with its DER
    key = _jose_key(record.certificate.public_key(), alg)
    try:
        valid = key is not None and jws.validate_compact(token, key, registry=registry)
    except (JoseError, ValueError, TypeError):
        valid = False
    if not valid:
        raise ApiProblem(403, "forbidden", f"the JWS is not signed with the private key of certificate {serial}")
    now = utcnow()
    iat = payload["iat"]
    if abs(int(now.timestamp()) - iat) > IAT_WINDOW.total_seconds():  # int arithmetic: no float overflow
        raise ApiProblem(403, "forbidden", f"iat is not within {int(IAT_WINDOW.total_seconds() // 60)} minutes of the "
                                           "server's time; sign a fresh request")
    expected = sandbox.config.base + request.path
    if payload["aud"] != expected:
        raise ApiProblem(403, "forbidden", f"aud must be {expected}, the URL this request is sent to; the JWS was "
                                           "signed for another endpoint or another QTSP")
    actor = KEY_ACTOR + jti
    seen = search.first_event_by(sandbox, actor)
    if seen is not None:
        raise ApiProblem(409, "replay", f"jti {jti} has been used already (audit event {seen})")
    result = revocation.revoke(sandbox, serial, reason, actor=actor, issuer_id=issuer_id, now=now)
    return _revocation_json(result)


# --- the simulator: responder behaviours (issue 7) -------------------------------------------------

BEHAVIOUR_FIELDS: dict[str, tuple[type, ...]] = {
    "ca": (str,), "serial": (str, type(None)), "target": (str, type(None)), "behaviour": (str,),
    "delay_seconds": (int, float, type(None)),
}


BEHAVIOUR_PARAMETERS: dict[str, query.Parser] = {
    "ca": query.text(64, CA_ID, "a CA id such as qwac-ca"), "target": query.one_of(simulator.OCSP, simulator.CRL),
    **query.PAGING_PARSERS,
}


@bp.get("/simulator/behaviours")
def list_behaviours() -> Response:
    """Oldest first, paged by offset: behaviours are few (every worker holds them all), and a new one
    joins the end, so an offset page does not shift while a client walks them."""
    params = query.parse(request.args, BEHAVIOUR_PARAMETERS)
    page = query.Page.of(params)
    sandbox = state().sandbox
    result = search.behaviours(sandbox, issuer_id=params.get("ca"), target=params.get("target"),
                               limit=page.limit, offset=page.offset, scope=_scope())
    rows = [b.as_dict() for b in result.items if isinstance(b, simulator.Behaviour)]
    next_offset = result.offset + len(rows) if result.more else None
    return jsonify({"behaviours": rows, "time_travel": sandbox.config.time_travel, "total": result.total,
                    "limit": page.limit, "offset": result.offset, "next_offset": next_offset,
                    "next": None if next_offset is None else query.next_link(limit=page.limit, offset=next_offset)})


@bp.put("/simulator/behaviours")
def set_behaviour() -> Response:
    body = _json_object(BEHAVIOUR_FIELDS, ("ca", "behaviour"))
    behaviour = simulator.set_behaviour(state().sandbox, body["behaviour"], body["ca"], serial=body.get("serial"),
                                        target=body.get("target"), delay_seconds=body.get("delay_seconds"), actor=_actor(),
                                        scope=_scope())
    return jsonify(behaviour.as_dict())


@bp.delete("/simulator/behaviours/<behaviour_id>")
def clear_behaviour(behaviour_id: str) -> Response:
    if not re.fullmatch(r"[1-9][0-9]{0,9}", behaviour_id) or int(behaviour_id) > MAX_BEHAVIOUR_ID:
        raise _bad(f"a behaviour id is an integer from 1 to {MAX_BEHAVIOUR_ID}")
    return jsonify(simulator.clear_by_id(state().sandbox, int(behaviour_id), actor=_actor(), scope=_scope()).as_dict())


# --- NCA credentials: withdrawn by the operator (issue 15) -------------------------------------------

WITHDRAW_FIELDS: dict[str, tuple[type, ...]] = {"reason": (str,)}


@bp.post("/nca-credentials/<fingerprint>/withdraw")
def withdraw_nca_credential(fingerprint: str) -> Response:
    """Make an NCA's request-signing credential unusable at once (its certificate, if the sandbox's NCA CA
    issued it, is revoked with it). The full SHA-256 fingerprint, as ``qtsp nca list --json`` shows it."""
    if not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        raise _bad("a credential is named by its SHA-256 fingerprint: 64 lower-case hex digits")
    body = _json_object(WITHDRAW_FIELDS, ("reason",))
    done = nca_identity.withdraw_credential(state().sandbox, fingerprint, reason=_reason(body["reason"]), actor=_actor(),
                                            scope=_scope())
    return jsonify({"nca_id": done.nca_id, "fingerprint": done.fingerprint, "withdrawn_at": done.withdrawn_at.isoformat(),
                    "revoked_serial": done.revoked_serial})


# --- the description ----------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi() -> Response:
    from .openapi import document

    return jsonify(document())

