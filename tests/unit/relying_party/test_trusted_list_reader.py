"""The Trusted List reader on hostile documents, with no sandbox: each is refused before any signature
is looked at (so the pin is a throwaway certificate), quickly, and without echoing expanded content.
The reader against the sandbox's real lists (tampered, re-signed, stale, pyhanko's view) is in
tests/unit/services/test_trusted_list.py."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from qtsp.core.errors import Kind, QTSPError
from qtsp.relying_party import parse_and_verify_trusted_list

NOW = dt.datetime(2027, 6, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def pin() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "throwaway TL signer")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=1)).sign(key, hashes.SHA256()))


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#" TSLTag="http://uri.etsi.org/19612/TSLTag">&lol9;</TrustServiceStatusList>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#" TSLTag="http://uri.etsi.org/19612/TSLTag">&xxe;</TrustServiceStatusList>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE TrustServiceStatusList SYSTEM "http://127.0.0.1:9/tsl.dtd">
<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#" TSLTag="http://uri.etsi.org/19612/TSLTag"/>
"""


@pytest.mark.parametrize("xml, fragment", [
    (BOMB, "DTD"), (XXE, "DTD"), (EXTERNAL_DTD, "DTD"),
    (b"not xml at all", "not well-formed"),
    (b"<Other xmlns='urn:x'/>", "not an ETSI TS 119 612"),
    (b"<a>" + b" " * (8 * 1024 * 1024) + b"</a>", "at most"),
], ids=["billion-laughs", "external-entity", "external-dtd", "not-xml", "wrong-root", "oversized"])
def test_hostile_xml_is_refused_without_expanding(pin: x509.Certificate, xml: bytes, fragment: str) -> None:
    started = time.monotonic()
    with pytest.raises(QTSPError) as info:
        parse_and_verify_trusted_list(xml, [pin], NOW)
    assert info.value.kind is Kind.MALFORMED, info.value.detail
    assert fragment in info.value.detail, info.value.detail
    assert time.monotonic() - started < 2.0
    assert "root:" not in info.value.detail and "lollol" not in info.value.detail


def test_a_naive_now_is_refused(pin: x509.Certificate) -> None:
    """Time is the caller's, and it must say which zone: a naive 'now' cannot be compared with NextUpdate."""
    with pytest.raises(QTSPError) as info:
        parse_and_verify_trusted_list(b"<a/>", [pin], NOW.replace(tzinfo=None))
    assert info.value.kind is Kind.MALFORMED and "aware" in info.value.detail
