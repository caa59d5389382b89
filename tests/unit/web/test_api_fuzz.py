"""Fuzzing the REST API: random bytes and JSON at every endpoint with an operator token; never a 500,
and the store never changes (stress/fuzz.py runs it with more examples)."""

from __future__ import annotations

import json
import string
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.api import DOMAIN, PROBLEM, SAMPLE_ORG, Api, b64url, csr_pem, store_state

GOOD_CSR = csr_pem(ec.generate_private_key(ec.SECP256R1()))

# --- fuzzing: random bytes and JSON at every endpoint with an operator token ------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
# Plausible values, but never a complete valid request: the CSR's signature is broken and the
# reasons are near misses, so no example can legitimately issue or revoke anything.
_BROKEN_CSR = (lambda der: x509.load_der_x509_csr(der[:-1] + bytes([der[-1] ^ 1])).public_bytes(serialization.Encoding.PEM)
               .decode())(x509.load_pem_x509_csr(GOOD_CSR.encode()).public_bytes(serialization.Encoding.DER))
_field_values = st.one_of(_json_values, st.sampled_from(["qwac", "qsealc", SAMPLE_ORG, DOMAIN, "PSP_AI", "keyCompromise",
                                                         "certificate-hold", "Superseded", "remove-from-crl"]),
                          st.just(_BROKEN_CSR), st.lists(st.sampled_from([DOMAIN, "x", ""]), max_size=3))
_known_fields = ("kind", "org_id", "csr", "domains", "roles", "qscd", "browser", "reason", "serial", "iat", "jti", "aud")


def _jws_like(payloads: Any) -> st.SearchStrategy[bytes]:
    part = st.one_of(_json_values.map(lambda v: b64url(json.dumps(v).encode())), st.text(string.ascii_letters + "-_", max_size=20))
    header = st.fixed_dictionaries({"alg": st.sampled_from(["ES256", "RS256", "none", "HS256", "EdDSA", ""])},
                                   optional={"typ": st.text(max_size=5), "b64": st.booleans(), "crit": st.lists(st.text(max_size=4))}
                                   ).map(lambda h: b64url(json.dumps(h).encode()))
    return st.tuples(header | part, payloads.map(lambda v: b64url(json.dumps(v).encode())) | part, part) \
        .map(lambda t: ".".join(t).encode())


_fields = st.dictionaries(st.sampled_from(_known_fields), _field_values, max_size=6)
_bodies = {  # mostly what the endpoint expects, sometimes anything
    "json": st.one_of(_fields.map(lambda v: json.dumps(v).encode()), _fields.map(lambda v: json.dumps(v).encode()),
                      _json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=600)),
    "jose": st.one_of(_jws_like(_fields), _jws_like(_fields), st.binary(max_size=600),
                      _json_values.map(lambda v: json.dumps(v).encode())),
}
_other_types = st.sampled_from([None, "application/json; charset=utf-8", "application/jose", "application/json",
                                "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"])
_query = st.dictionaries(st.sampled_from(["org_id", "profile", "status", "limit", "offset", "kind", "issuer",
                                          "expiring_before", "cursor", "ca", "target", "x"]),
                         st.text(max_size=12) | st.integers(-5, 2000).map(str)
                         | st.sampled_from(["good", "revoked", "valid", "expired", "qwac", "qwac-ca", "ocsp", "2027-06-01",
                                            "YmVmb3JlOjU"]),  # the last: a cursor (before:5)
                         max_size=4)
_path_text = st.text(string.ascii_letters + string.digits + ":-_.~", min_size=1, max_size=50)


def test_fuzz_every_endpoint_never_500_and_never_changes_the_store(api: Api) -> None:
    issued, _ = api.issue()
    serial = issued["serial"]
    targets = []
    for rule in api.app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                targets.append((method, rule.rule))
    assert len(targets) == 10  # the six certificate endpoints, the three of the simulator, the NCA credential withdrawal
    before = store_state(api.data_dir)
    operator = api.headers("operator")
    seen: set[tuple[str, str]] = set()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(target=st.sampled_from(targets), data=st.data(), query=_query,
           serial_text=st.one_of(st.just(serial), st.just(serial), _path_text),
           method_override=st.sampled_from([None, None, None, None, "GET", "POST"]))
    def run(target: tuple[str, str], data: st.DataObject, query: dict[str, str], serial_text: str,
            method_override: str | None) -> None:
        method, rule = target
        method = method_override or method
        url = rule.replace("<serial>", serial_text).replace("<fingerprint>", serial_text)
        seen.add(target)
        kwargs: dict[str, Any] = {"headers": operator, "query_string": query}
        if method == "POST":
            kind = "jose" if rule.endswith("/revoke-by-key") else "json"
            kwargs["data"] = data.draw(_bodies[kind], label="body")
            content_type = data.draw(st.one_of(st.just(f"application/{kind}"), st.just(f"application/{kind}"), _other_types),
                                     label="content_type")
            if content_type:
                kwargs["content_type"] = content_type
        response = api.client.open(url, method=method, **kwargs)
        assert response.status_code < 500, (method, url, response.status_code, response.get_data(as_text=True)[:300])
        if response.status_code >= 400:
            assert response.mimetype == PROBLEM
        assert store_state(api.data_dir) == before

    run()
    assert len(seen) >= 4  # the sampling reached most endpoints
