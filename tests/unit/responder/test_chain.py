"""The OCSP chain without a store: Caching -> Guarded -> Simulator -> AsOf -> a fake store.

What each decorator adds, and above all what the cache must never keep."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from qtsp.core import ocsp as core_ocsp
from qtsp.responder.caching import CachingSource
from qtsp.responder.source import Answer, Guarded
from qtsp.responder.simulator import SimulatorSource
from qtsp.responder.store import AsOfSource, OnDemand
from qtsp.services.behaviours import BEHAVIOURS, OCSP, STATUS_ONLY
from qtsp.services.simulator import WHOLE_CA, Behaviour, Behaviours

from .fakes import NOW, OTHER_KEY_HASH, Counter, FakeIndex, FakeStatuses, FakeStore, entry, freshness, request

THEN = NOW - dt.timedelta(days=3)


class Watch:
    def __init__(self, *rows: Behaviour) -> None:
        self.current = Behaviours(rows)


def behaviour(name: str, scope: str = WHOLE_CA, delay_ms: int | None = None) -> Behaviour:
    return Behaviour(1, "qwac-ca", BEHAVIOURS[name].target, scope, name, delay_ms, NOW, "test")


class Chain:
    def __init__(self, tmp_path: Path, *rows: Behaviour, max_delay: float = 10.0) -> None:
        self.index = FakeIndex(entry())
        self.statuses = FakeStatuses(unissued={404})
        self.on_demand = OnDemand(self.index, self.statuses, lambda: NOW)  # type: ignore[arg-type]
        self.store = FakeStore(self.index, self.on_demand)
        self.counter = Counter()
        self.freshness, self.generation = freshness(tmp_path, self.counter)
        self.slept: list[float] = []
        self.watch = Watch(*rows)
        simulated = SimulatorSource(AsOfSource(self.store, self.index, self.on_demand),  # type: ignore[arg-type]
                                    self.watch, self.index, self.statuses, max_delay, lambda: NOW,  # type: ignore[arg-type]
                                    self.slept.append)
        self.source = CachingSource(Guarded(simulated), self.freshness, lambda: NOW)

    def answer(self, der: bytes, at: dt.datetime | None = None) -> Answer:
        return self.source.answer(der, at)


def test_a_presigned_answer_is_cached_until_the_generation_moves(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    der = request(1)
    first = chain.answer(der)
    assert first.outcome == "good" and first.cacheable and first.reusable and not first.no_store
    assert chain.answer(der) is first and chain.store.calls == 1
    chain.generation.bump()  # a revocation on this host
    assert chain.answer(der) is not first and chain.store.calls == 2


def test_a_change_on_another_host_drops_the_cache(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.freshness._interval = 0.0  # read the store's change counter on every request
    der = request(1)
    chain.answer(der)
    chain.answer(der)
    assert chain.store.calls == 1
    chain.counter.value += 1
    chain.answer(der)
    assert chain.store.calls == 2


@pytest.mark.parametrize("kind", ["nonce", "multi"])
def test_answers_signed_for_one_request_are_never_cached(tmp_path: Path, kind: str) -> None:
    chain = Chain(tmp_path)
    der = {"nonce": request(1, nonce=b"n" * 16), "multi": request(1, 2)}[kind]
    for _ in range(3):
        answer = chain.answer(der)
        assert not answer.reusable and not answer.cacheable
    assert chain.store.calls == 3
    if kind != "multi":  # RFC 6960 4.4.1: the nonce comes back
        nonce = ocsp.load_der_ocsp_response(answer.body).extensions.get_extension_for_class(x509.OCSPNonce)
        assert nonce.value.nonce == b"n" * 16


@pytest.mark.parametrize("der", [request(404), request(404, nonce=b"n" * 16), request(1, 404)],
                         ids=["alone", "with-a-nonce", "beside-an-issued-one"])
def test_a_serial_never_issued_gets_the_static_answer_and_nothing_is_kept(tmp_path: Path, der: bytes) -> None:
    """Issue 15, finding 3: each request for a never-issued serial was signed afresh and kept per request
    bytes. Now: the one static unauthorized (BR 4.9.10: never good), nothing signed, nothing kept."""
    chain = Chain(tmp_path)
    for n in range(1, 4):
        answer = chain.answer(der)
        assert answer.outcome == "unused" and answer.body == core_ocsp.UNAUTHORIZED
        assert not answer.reusable and not answer.cacheable and not answer.etag
        assert ocsp.load_der_ocsp_response(answer.body).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
        assert chain.store.calls == n  # not from a cache: there is nothing to keep
    assert len(chain.source._cache) == 0 and chain.source._cache.nbytes == 0


def test_as_of_another_time_a_serial_not_yet_issued_is_unknown(tmp_path: Path) -> None:
    """Time travel keeps its signed "unknown" (never good) as of then: opt-in, and never kept."""
    chain = Chain(tmp_path)
    answer = chain.answer(request(404), THEN)
    assert answer.outcome == "unknown" and answer.no_store
    assert ocsp.load_der_ocsp_response(answer.body).certificate_status == ocsp.OCSPCertStatus.UNKNOWN


def test_an_answer_made_across_a_change_is_not_kept(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    inner_answer = chain.store.answer

    def revoked_meanwhile(der: bytes, at: dt.datetime | None = None) -> Answer:
        answer = inner_answer(der, at)
        chain.generation.bump()
        chain.freshness.poll(0.0)  # another thread saw the change and reloaded while we signed
        return answer

    chain.store.answer = revoked_meanwhile  # type: ignore[method-assign]
    der = request(1)
    chain.answer(der)
    chain.store.answer = inner_answer  # type: ignore[method-assign]
    chain.answer(der)
    assert chain.store.calls == 2


def test_time_travel_is_signed_as_of_then_and_never_kept(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    der = request(1)
    for _ in range(2):
        answer = chain.answer(der, THEN)
        assert answer.no_store and not answer.cacheable and not answer.etag
        parsed = ocsp.load_der_ocsp_response(answer.body)
        assert parsed.produced_at_utc == THEN and parsed.this_update_utc == THEN
    assert chain.store.calls == 0 and chain.index.asked_at == [THEN, THEN]
    # The present is untouched by the visit.
    assert ocsp.load_der_ocsp_response(chain.answer(der).body).produced_at_utc == NOW


@pytest.mark.parametrize("der,outcome", [(b"\x30\x03\x02\x01\x00", "malformed"),
                                         (request(1, key_hash=OTHER_KEY_HASH), "unauthorized")])
def test_refusals_as_of_another_time_are_not_kept_either(tmp_path: Path, der: bytes, outcome: str) -> None:
    chain = Chain(tmp_path)
    assert chain.answer(der, THEN).outcome == outcome and chain.answer(der, THEN).no_store
    assert chain.answer(der).outcome == outcome and not chain.answer(der).no_store


def test_a_failure_below_is_internal_error(tmp_path: Path) -> None:
    chain = Chain(tmp_path)

    def broken(_der: bytes, _at: dt.datetime | None = None) -> Answer:
        raise RuntimeError("the store is gone")

    chain.store.answer = broken  # type: ignore[method-assign]
    answer = chain.answer(request(1))
    assert answer.outcome == "internal_error" and not answer.reusable
    assert ocsp.load_der_ocsp_response(answer.body).response_status == ocsp.OCSPResponseStatus.INTERNAL_ERROR
    assert chain.answer(request(1)).outcome == "internal_error"  # not kept: tried again


# --- the simulator ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n, f in BEHAVIOURS.items() if f.target == OCSP])
def test_every_ocsp_behaviour_is_simulated_and_never_cached(tmp_path: Path, name: str) -> None:
    chain = Chain(tmp_path, behaviour(name, delay_ms=1500 if BEHAVIOURS[name].takes_delay else None))
    der = request(1, nonce=b"n" * 16)
    for at in (None, None, THEN):
        answer = chain.answer(der, at)
        assert answer.outcome == "simulated" and answer.no_store and not answer.cacheable
        ocsp.load_der_ocsp_response(answer.body)
    assert chain.store.calls == 0
    # The statuses are read only by the faults that need them; the delay only where the behaviour takes one.
    assert chain.statuses.reads == (0 if name in STATUS_ONLY else 3)
    assert chain.slept == ([1.5] * 3 if BEHAVIOURS[name].takes_delay else [])


def test_the_delay_is_capped(tmp_path: Path) -> None:
    chain = Chain(tmp_path, behaviour("slow", delay_ms=60_000), max_delay=2.0)
    chain.answer(request(1))
    assert chain.slept == [2.0]


def test_a_behaviour_of_one_certificate_leaves_the_others_alone(tmp_path: Path) -> None:
    chain = Chain(tmp_path, behaviour("try-later", scope="02"))
    assert chain.answer(request(2)).outcome == "simulated"
    assert chain.answer(request(1)).outcome == "good"
    assert chain.answer(request(1, 2)).outcome == "simulated"  # any certificate of the request


def test_a_behaviour_as_of_another_time_is_signed_as_of_then(tmp_path: Path) -> None:
    chain = Chain(tmp_path, behaviour("no-nonce"))
    answer = ocsp.load_der_ocsp_response(chain.answer(request(1, nonce=b"n" * 16), THEN).body)
    assert answer.produced_at_utc == THEN
    with pytest.raises(x509.ExtensionNotFound):
        answer.extensions.get_extension_for_class(x509.OCSPNonce)


def test_without_behaviours_the_simulator_does_not_even_parse(tmp_path: Path, monkeypatch: Any) -> None:
    chain = Chain(tmp_path)
    import qtsp.responder.simulator as module

    monkeypatch.setattr(module, "parse", lambda der: pytest.fail("parsed with no behaviour set"))
    assert chain.answer(request(1)).outcome == "good"
