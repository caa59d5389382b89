"""RFC 9421 HTTP Message Signatures with an RFC 9530 ``Content-Digest``: the scheme newer Berlin Group
(openFinance) and FAPI-style specifications move to from draft-cavage.

    Content-Digest: sha-256=:<base64>:
    Signature-Input: tpp=("@method" "@target-uri" "content-digest" "x-request-id" "date"
                          "tpp-signature-certificate");created=1765000000;keyid="SN=..,CA=..";alg="rsa-v1_5-sha256"
    Signature: tpp=:<base64>:

The signature base is RFC 9421 2.5; the algorithms are those of its registry (6.2.2) that a QSealC key can
make: rsa-v1_5-sha256, rsa-pss-sha512, ecdsa-p256-sha256, ecdsa-p384-sha384 (ECDSA as r||s, 3.3.4). The
key is the QSealC sent in TPP-Signature-Certificate, as the draft-cavage scheme sends it; keyid names it
the Berlin Group way. Only components without parameters are supported, which is all this profile uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from .cavage import prepare, with_present
from .common import (ALGORITHMS, DIGESTS, SIGNATURE_CERT_HEADER, Request, SealKey, SignatureProblem,
                     algorithm_for_key, certificate_from_header, der_to_raw, key_id, key_id_names, raw_to_der,
                     verify_raw)
from .sfv import InnerList, Item, SFVError, Token, parse_dictionary, serialize_bare, serialize_inner_list
from .verified import Verified

__all__ = ["DEFAULT_COMPONENTS", "LABEL", "NAMES", "REQUIRED", "content_digest", "signature_base", "sign", "verify"]

NAMES = {"rsa-v1_5-sha256": "RS256", "rsa-pss-sha512": "PS512", "ecdsa-p256-sha256": "ES256",
         "ecdsa-p384-sha384": "ES384"}
LABEL = "tpp"
DEFAULT_COMPONENTS = ("@method", "@target-uri", "content-digest", "x-request-id", "date", SIGNATURE_CERT_HEADER)
REQUIRED = ("@method", "@target-uri", "content-digest", "x-request-id")


def content_digest(body: bytes, algorithm: str = "sha-256") -> str:
    """RFC 9530 2: ``sha-256=:<base64>:``."""
    return f"{algorithm}={serialize_bare(DIGESTS[algorithm](body).digest())}"


def _component(request: Request, name: str) -> str:
    if name == "@method":
        return request.method.upper()
    if name == "@target-uri":
        return request.target_uri
    if name == "@authority":
        return request.authority.lower()
    if name == "@scheme":
        return request.scheme.lower()
    if name == "@request-target":
        return request.target
    if name == "@path":
        return request.target.split("?", 1)[0]
    if name == "@query":
        return "?" + (request.target.split("?", 1)[1] if "?" in request.target else "")
    if name.startswith("@"):
        raise SignatureProblem("SIGNATURE_INVALID", f"derived component {name!r} is not supported")
    value = request.get(name)
    if value is None:
        raise SignatureProblem("SIGNATURE_INVALID", f"the signature covers {name!r}, which the request does not have")
    return value


def signature_base(request: Request, components: Sequence[str], params_line: str) -> bytes:
    """RFC 9421 2.5: one ``"<component>": <value>`` line per component, then ``"@signature-params"``."""
    lines = [f'"{name}": {_component(request, name)}' for name in components]
    lines.append(f'"@signature-params": {params_line}')
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise SignatureProblem("FORMAT_ERROR", "a covered component is not ASCII") from None


def _name_for(jose: str) -> str:
    for name, alg in NAMES.items():
        if alg == jose:
            return name
    raise SignatureProblem("SIGNATURE_INVALID", f"{jose} has no RFC 9421 algorithm name (6.2.2)")


def sign(request: Request, key: SealKey, *, now: dt.datetime, components: Iterable[str] = DEFAULT_COMPONENTS,
         digest: str = "sha-256", label: str = LABEL) -> Request:
    """Sign ``request`` in place (and return it): Content-Digest, Signature-Input and Signature."""
    alg = ALGORITHMS[key.algorithm]
    name = _name_for(alg.jose)
    prepare(request, key, now)
    request.set("Content-Digest", content_digest(request.body, digest))
    covered = with_present(request, components)
    params = {"created": int(now.timestamp()), "keyid": key_id(key.certificate), "alg": name}
    inner = serialize_inner_list(InnerList([Item(c) for c in covered], params))  # type: ignore[arg-type]
    signature = der_to_raw(key.sign(signature_base(request, covered, inner)), alg)
    request.set("Signature-Input", f"{label}={inner}")
    request.set("Signature", f"{label}={serialize_bare(signature)}")
    return request


def _digest_matches(value: str, body: bytes) -> bool:
    try:
        members = parse_dictionary(value)
    except SFVError:
        raise SignatureProblem("FORMAT_ERROR", "Content-Digest is not a structured dictionary (RFC 9530 2)") from None
    checked = False
    for algorithm, member in members.items():
        hasher = DIGESTS.get(algorithm)
        if hasher is None:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes) or member.value != hasher(body).digest():
            return False
        checked = True
    return checked


def _pick(inputs: dict[str, Item | InnerList]) -> str:
    if len(inputs) == 1:
        return next(iter(inputs))
    if LABEL in inputs:
        return LABEL
    raise SignatureProblem("FORMAT_ERROR", f"several signatures and none labelled {LABEL!r}")


def verify(request: Request, *, allowed: Iterable[str]) -> Verified:
    """Check Signature-Input/Signature's form, the algorithm (``allowed``: JOSE names), Content-Digest
    against the body, and the signature with the TPP-Signature-Certificate's key. The caller checks policy."""
    raw_input, raw_signature = request.get("signature-input"), request.get("signature")
    if raw_input is None or raw_signature is None:
        raise SignatureProblem("SIGNATURE_MISSING", "Signature-Input without Signature, or the other way round")
    try:
        inputs, signatures = parse_dictionary(raw_input), parse_dictionary(raw_signature)
    except SFVError as exc:
        raise SignatureProblem("FORMAT_ERROR", f"Signature-Input or Signature is not a structured dictionary "
                               f"(RFC 9421 4.1, 4.2): {exc}") from None
    label = _pick(inputs)
    sig_input, signature = inputs[label], signatures.get(label)
    if not isinstance(sig_input, InnerList) or not isinstance(signature, Item) or not isinstance(signature.value, bytes):
        raise SignatureProblem("FORMAT_ERROR", f"signature {label!r}: Signature-Input must be an inner list and "
                               "Signature a byte sequence (RFC 9421 4.1, 4.2)")
    components = []
    for item in sig_input.items:
        if not isinstance(item.value, str) or isinstance(item.value, Token) or item.params:
            raise SignatureProblem("SIGNATURE_INVALID", "covered components must be plain strings without parameters")
        components.append(item.value)
    if len(set(components)) != len(components):
        raise SignatureProblem("FORMAT_ERROR", "a component is covered twice (RFC 9421 2.5)")
    certificate = certificate_from_header(request.get(SIGNATURE_CERT_HEADER))
    alg_name = sig_input.params.get("alg")
    if alg_name is None:
        alg = algorithm_for_key(certificate.public_key())
        if alg.kind != "ec":
            raise SignatureProblem("FORMAT_ERROR", "no alg parameter, and an RSA key does not say which RSA scheme")
    elif isinstance(alg_name, str) and alg_name in NAMES:
        alg = ALGORITHMS[NAMES[alg_name]]
    else:
        raise SignatureProblem("SIGNATURE_INVALID", f"signature algorithm {alg_name!r} is not supported (accepted: "
                               f"{', '.join(NAMES)})")
    if alg.jose not in set(allowed):
        raise SignatureProblem("SIGNATURE_INVALID", f"signature algorithm {alg_name!r} is not accepted by this bank")
    keyid = sig_input.params.get("keyid")
    if isinstance(keyid, str) and not key_id_names(keyid, certificate):
        raise SignatureProblem("SIGNATURE_INVALID", "keyid does not name the TPP-Signature-Certificate")
    created = sig_input.params.get("created")
    if created is not None and (not isinstance(created, int) or isinstance(created, bool)):
        raise SignatureProblem("FORMAT_ERROR", "created must be an integer (RFC 9421 2.3)")
    expires = sig_input.params.get("expires")
    digest = request.get("content-digest")
    if digest is not None and not _digest_matches(digest, request.body):
        raise SignatureProblem("SIGNATURE_INVALID", "Content-Digest does not match the body (RFC 9530)")
    base = signature_base(request, components, serialize_inner_list(sig_input))
    try:
        der = raw_to_der(signature.value, alg)
    except ValueError:
        raise SignatureProblem("SIGNATURE_INVALID", "the ECDSA signature is not r||s of the curve's size") from None
    if not verify_raw(certificate.public_key(), alg, der, base):
        raise SignatureProblem("SIGNATURE_INVALID", "the signature does not verify with the key of the "
                               "TPP-Signature-Certificate")
    signed_at = dt.datetime.fromtimestamp(created, dt.timezone.utc) if isinstance(created, int) else None
    verified = Verified("rfc9421", certificate, alg.jose, [c.lower() for c in components], signed_at,
                        body_covered="content-digest" in components and digest is not None)
    if isinstance(expires, int) and not isinstance(expires, bool):
        verified.expires = dt.datetime.fromtimestamp(expires, dt.timezone.utc)
    return verified
