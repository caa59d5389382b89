"""Property tests: PSD2 attributes and organizationIdentifiers survive encode -> decode;
serials are unique and in range; the audit chain catches every single-event change."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings, strategies as st

from qtsp.core.audit import GENESIS, ChainEvent, event_hash, verify_chain
from qtsp.core.names import parse_org_id
from qtsp.core.ncas import EBA_NCAS
from qtsp.core.psd2 import NA_ROLES, ROLES, PSD2Attributes, QCStatement, decode_statement, encode_statement
from qtsp.core.serials import MIN_SERIAL, new_serial

NCA_ROLES = [r for r in ROLES if r not in NA_ROLES and r != "Unspecified"]
nca_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=256).filter(str.strip)


@st.composite
def psd2_attributes(draw: st.DrawFn) -> PSD2Attributes:
    kind = draw(st.sampled_from(["nca", "unspecified", "na"]))
    if kind == "na":
        roles = tuple(draw(st.lists(st.sampled_from(sorted(NA_ROLES)), min_size=1, max_size=2, unique=True)))
        return PSD2Attributes(roles, "NA", "NA")
    roles = ("Unspecified",) if kind == "unspecified" else tuple(
        draw(st.lists(st.sampled_from(NCA_ROLES), min_size=1, max_size=len(NCA_ROLES), unique=True))
    )
    nca_id = draw(st.one_of(st.sampled_from(sorted(EBA_NCAS)), st.from_regex(r"\A[A-Z]{2}-[A-Z]{2,8}\Z")))
    return PSD2Attributes(roles, draw(nca_names), nca_id)


@given(psd2_attributes())
@settings(max_examples=300)
def test_psd2_statement_round_trip(attrs: PSD2Attributes) -> None:
    der = encode_statement(attrs).dump()
    assert decode_statement(QCStatement.load(der)) == attrs


@given(
    country=st.sampled_from(["BE", "NL", "DE", "FR", "ES", "IT", "SE", "NO"]),
    nca=st.from_regex(r"\A[A-Z]{2,8}\Z"),
    number=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9./_-]{0,40}\Z"),
)
def test_org_id_round_trip_and_nca_agreement(country: str, nca: str, number: str) -> None:
    text = f"PSD{country}-{nca}-{number}"
    parsed = parse_org_id(text)
    assert parsed.value == text
    assert parsed.nca_id == f"{country}-{nca}"
    assert parsed.authorisation_number == number
    assert parse_org_id(parsed.value) == parsed


@given(st.integers(min_value=100, max_value=2000))
@settings(max_examples=20, deadline=None)
def test_serials_unique_and_in_range(count: int) -> None:
    serials = [new_serial() for _ in range(count)]
    assert len(set(serials)) == count
    for serial in serials:
        assert MIN_SERIAL <= serial < 1 << 127  # >= 64 random bits significant, <= 16 octets, positive


def test_serial_generator_rejects_short_draws() -> None:
    draws = iter([5, 1 << 63, (1 << 64) + 7])
    assert new_serial(lambda bits: next(draws)) == (1 << 64) + 7


def _chain(n: int) -> list[ChainEvent]:
    events, prev = [], GENESIS
    at = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)
    for seq in range(1, n + 1):
        h = event_hash(prev, seq, at, "cli", "certificate.issue", f"S{seq}", "{}")
        events.append(ChainEvent(seq, at, "cli", "certificate.issue", f"S{seq}", "{}", prev, h))
        prev = h
    return events


@given(st.data())
def test_audit_chain_reports_first_tampered_event(data: st.DataObject) -> None:
    events = _chain(data.draw(st.integers(2, 12)))
    head = (events[-1].seq, events[-1].hash)
    assert verify_chain(events, head=head) is None
    i = data.draw(st.integers(0, len(events) - 1))
    action = data.draw(st.sampled_from(["change", "remove", "swap"]))
    tampered = list(events)
    if action == "change":
        e = tampered[i]
        tampered[i] = ChainEvent(e.seq, e.at, e.actor, e.action, e.subject + "x", e.details, e.prev_hash, e.hash)
        expected = e.seq
    elif action == "remove":
        del tampered[i]
        expected = i + 1
    else:
        j = i + 1 if i + 1 < len(events) else i - 1
        a, b = sorted((i, j))
        tampered[a], tampered[b] = tampered[b], tampered[a]
        expected = a + 1
    problem = verify_chain(tampered, head=head)
    assert problem is not None and problem.seq == expected
