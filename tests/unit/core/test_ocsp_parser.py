"""The hand-written OCSP request parser agrees with asn1crypto, and fails only with MALFORMED."""

from __future__ import annotations

import hashlib

from asn1crypto import ocsp as aocsp
from hypothesis import given, settings, strategies as st

from qtsp.core.errors import Kind, QTSPError
from qtsp.core.ocsp import MAX_CERT_IDS, CertID, parse_request

cert_ids = st.builds(
    lambda alg, name, key, serial: (alg, name, key, serial),
    st.sampled_from(["sha1", "sha256"]),
    st.binary(min_size=1, max_size=64),
    st.binary(min_size=1, max_size=64),
    st.integers(min_value=0, max_value=(1 << 159) - 1),
)


def _encode(ids: list[tuple[str, bytes, bytes, int]], nonce: bytes | None, with_null: bool) -> bytes:
    items = []
    for alg, name, key, serial in ids:
        size = hashlib.new(alg).digest_size
        algorithm = {"algorithm": alg} if with_null else {"algorithm": alg, "parameters": None}
        items.append({"req_cert": {"hash_algorithm": algorithm, "issuer_name_hash": hashlib.new(alg, name).digest()[:size],
                                   "issuer_key_hash": hashlib.new(alg, key).digest(), "serial_number": serial}})
    tbs: dict = {"request_list": items}  # type: ignore[type-arg]
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": nonce}]
    return aocsp.OCSPRequest({"tbs_request": tbs}).dump()


@given(st.lists(cert_ids, min_size=1, max_size=MAX_CERT_IDS), st.one_of(st.none(), st.binary(min_size=1, max_size=128)),
       st.booleans())
@settings(max_examples=300)
def test_parser_agrees_with_asn1crypto(ids: list[tuple[str, bytes, bytes, int]], nonce: bytes | None, with_null: bool) -> None:
    der = _encode(ids, nonce, with_null)
    parsed = parse_request(der)
    reference = aocsp.OCSPRequest.load(der)
    expected = tuple(
        CertID(item["req_cert"]["hash_algorithm"]["algorithm"].native, item["req_cert"]["issuer_name_hash"].native,
               item["req_cert"]["issuer_key_hash"].native, item["req_cert"]["serial_number"].native)
        for item in reference["tbs_request"]["request_list"]
    )
    assert parsed.cert_ids == expected
    assert parsed.nonce == nonce


@given(st.lists(cert_ids, min_size=1, max_size=3), st.data())
@settings(max_examples=400)
def test_mutations_fail_only_as_malformed(ids: list[tuple[str, bytes, bytes, int]], data: st.DataObject) -> None:
    der = bytearray(_encode(ids, b"\x01\x02", True))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, len(der) - 1))
        if action == "flip":
            der[pos] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del der[pos:]
        else:
            der[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        if not der:
            der = bytearray(b"\x30")
    try:
        request = parse_request(bytes(der))
    except QTSPError as exc:
        assert exc.kind is Kind.MALFORMED
    else:
        assert 1 <= len(request.cert_ids) <= MAX_CERT_IDS


def test_limits() -> None:
    ids = [("sha1", b"n", b"k", i + 1) for i in range(MAX_CERT_IDS + 1)]
    for bad in (_encode(ids, None, True), _encode(ids[:1], b"", True), _encode(ids[:1], b"x" * 129, True), b"", b"\x30\x00"):
        try:
            parse_request(bad)
        except QTSPError as exc:
            assert exc.kind is Kind.MALFORMED
        else:
            raise AssertionError(f"accepted {bad[:20]!r}")
