"""The load side of the kill -9 test (tests/system/ops/test_crash.py): what every client was told (the
``Ledger``), the run's state (``Run``), API clients issuing and revoking, an OCSP probe, a ``qtsp issue
bulk`` run, and one cycle of load then kill -9. QTSP_CRASH_KILLS sets the number of kills per backend."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from qtsp.core.types import serial_hex
from qtsp.services.context import Sandbox

from support import ROOT
from support.chaos import ORG, Http, Service, csr_pem, ocsp_request, parse_ocsp

KILLS = int(os.environ.get("QTSP_CRASH_KILLS", "5"))
CLIENTS = 3
BULK_REQUESTS = 300
ISSUERS = ("qwac-ca", "qseal-ca")
REASONS = ("superseded", "cessation-of-operation", "affiliation-changed", "privilege-withdrawn", "unspecified")
CRL_WAIT = 25.0  # seconds the scheduler gets to publish the CRL after a restart
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)

Key = tuple[str, int]  # (issuer id, serial)


# --- what the clients were told --------------------------------------------------------------


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: dict[Key, bytes] = field(default_factory=dict)  # DER received (API 201 or bulk cert.pem)
    bulk: set[Key] = field(default_factory=set)
    revoked: dict[Key, tuple[dt.datetime, str]] = field(default_factory=dict)  # acknowledged: time, reason
    revoke_unanswered: set[Key] = field(default_factory=set)  # sent, no answer (killed)
    kc_unanswered: set[Key] = field(default_factory=set)  # change to key-compromise sent, no answer
    claimed: set[Key] = field(default_factory=set)  # a revocation was sent (one per certificate)
    kc_claimed: set[Key] = field(default_factory=set)
    received_serials: list[Key] = field(default_factory=list)  # every serial received, duplicates included
    unexpected: list[str] = field(default_factory=list)  # answers no client should ever see
    in_flight_at_kill: int = 0
    probes: int = 0
    requests: Counter[str] = field(default_factory=Counter)

    def note(self, message: str) -> None:
        with self.lock:
            self.unexpected.append(message)


@dataclass
class Run:
    store: str
    data_dir: Path
    sandbox: Sandbox
    service: Service
    token: str
    ledger: Ledger
    rng: random.Random
    ca_certs: dict[str, x509.Certificate]
    ca_ids_by_name: dict[bytes, str]
    crl_served: dict[tuple[str, bool], int] = field(default_factory=dict)  # (issuer, delta) -> highest number served
    checks: Counter[str] = field(default_factory=Counter)
    crl_waits: list[float] = field(default_factory=list)
    crl_served_max: int = 0


def _parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def as_utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


# --- load --------------------------------------------------------------------------------------


class Client(threading.Thread):
    """Issues certificates and revokes them through the REST API, recording every answer."""

    def __init__(self, run: Run, index: int, killing: threading.Event, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"crash-client-{index}")
        self.run_ = run
        self.rng = random.Random(run.rng.random())
        self.killing, self.stop = killing, stop
        self.index = index
        self.in_flight = False

    def run(self) -> None:
        http = Http(self.run_.service.url, timeout=60)
        ledger = self.run_.ledger
        auth = {"Authorization": f"Bearer {self.run_.token}", "Content-Type": "application/json"}
        n = 0
        while not self.stop.is_set():
            n += 1
            roll = self.rng.random()
            target: Key | None = None
            kc = False
            with ledger.lock:
                if roll < 0.35:
                    candidates = [k for k in ledger.issued if k not in ledger.claimed]
                    if candidates:
                        target = self.rng.choice(candidates)
                        ledger.claimed.add(target)
                elif roll < 0.45:
                    candidates = [k for k in ledger.revoked if k not in ledger.kc_claimed and ledger.revoked[k][1] != "key-compromise"]
                    if candidates:
                        target, kc = self.rng.choice(candidates), True
                        ledger.kc_claimed.add(target)
            try:
                if target is None:
                    self._issue(http, auth, n)
                else:
                    self._revoke(http, auth, target, kc)
            except TRANSPORT_ERRORS as exc:
                if not self.killing.is_set():
                    ledger.note(f"{self.name}: transport error while the service was up: {type(exc).__name__}: {exc}")
                break
        http.close()

    def _issue(self, http: Http, auth: dict[str, str], n: int) -> None:
        ledger = self.run_.ledger
        kind = "qwac" if self.rng.random() < 0.6 else "qsealc"
        body: dict[str, Any] = {"kind": kind, "org_id": ORG, "csr": csr_pem()}
        if kind == "qwac":
            body["domains"] = [f"c{self.index}-{n}-{self.rng.randrange(10**9)}.crash.example.com"]
        self.in_flight = True
        status, _, raw = http.request("POST", "/api/v1/certificates", json.dumps(body).encode(), auth)
        self.in_flight = False
        with ledger.lock:
            ledger.requests[f"issue {status}"] += 1
        if status != 201:
            ledger.note(f"issue answered {status}: {raw[:300]!r}")
            return
        answer = json.loads(raw)
        cert = x509.load_pem_x509_certificate(answer["certificate"].encode())
        assert answer["serial"] == serial_hex(cert.serial_number)
        key = (answer["issuer"], cert.serial_number)
        with ledger.lock:
            ledger.received_serials.append(key)
            ledger.issued[key] = cert.public_bytes(Encoding.DER)

    def _revoke(self, http: Http, auth: dict[str, str], target: Key, kc: bool) -> None:
        ledger = self.run_.ledger
        reason = "key-compromise" if kc else self.rng.choice(REASONS)
        pending = ledger.kc_unanswered if kc else ledger.revoke_unanswered
        with ledger.lock:
            pending.add(target)
        self.in_flight = True
        status, _, raw = http.request("POST", f"/api/v1/certificates/{serial_hex(target[1])}/revoke",
                                      json.dumps({"reason": reason}).encode(), auth)
        self.in_flight = False
        with ledger.lock:
            pending.discard(target)
            ledger.requests[f"{'kc-change' if kc else 'revoke'} {status}"] += 1
            if status != 200:
                ledger.unexpected.append(f"revoke {serial_hex(target[1])} ({reason}) answered {status}: {raw[:300]!r}")
                return
            answer = json.loads(raw)
            if answer["issuer"] != target[0] or answer["reason"] != reason:
                ledger.unexpected.append(f"revoke {serial_hex(target[1])}: answer {answer} does not match the request")
                return
            revoked_at = _parse_time(answer["revoked_at"])
            if kc:
                before = ledger.revoked[target]
                if revoked_at != before[0] or answer["reason_changed_from"] != before[1]:
                    ledger.unexpected.append(f"reason change {serial_hex(target[1])}: answer {answer}, before {before}")
            ledger.revoked[target] = (revoked_at, reason)


class Probe(threading.Thread):
    """Asks OCSP about acknowledged revocations during the load: never ``good``."""

    def __init__(self, run: Run, killing: threading.Event, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="crash-ocsp-probe")
        self.run_, self.killing, self.stop = run, killing, stop
        self.rng = random.Random(run.rng.random())

    def run(self) -> None:
        http = Http(self.run_.service.url, timeout=30)
        ledger = self.run_.ledger
        while not self.stop.is_set():
            with ledger.lock:
                acked = list(ledger.revoked.items())
            if not acked:
                time.sleep(0.05)
                continue
            (issuer, serial), (revoked_at, _reason) = self.rng.choice(acked)
            cert = x509.load_der_x509_certificate(ledger.issued[(issuer, serial)])
            try:
                status, _, body = http.request("POST", "/ocsp", ocsp_request(cert, self.run_.ca_certs[issuer]),
                                               {"Content-Type": "application/ocsp-request"})
            except TRANSPORT_ERRORS as exc:
                if not self.killing.is_set():
                    ledger.note(f"OCSP probe: transport error while the service was up: {exc}")
                break
            if status != 200:
                ledger.note(f"OCSP probe answered HTTP {status}")
                continue
            try:
                answer = parse_ocsp(body, serial)
            except AssertionError as exc:  # not a successful answer about it: a finding, and keep probing
                ledger.note(f"OCSP probe for acknowledged {serial_hex(serial)}: {exc}")
                continue
            with ledger.lock:
                ledger.probes += 1
            if answer.status != "revoked" or answer.revoked_at != revoked_at:
                ledger.note(f"OCSP said {answer} for {serial_hex(serial)}, acknowledged revoked at {revoked_at}")
            time.sleep(0.01)
        http.close()


def start_bulk(run: Run, cycle: int) -> tuple[subprocess.Popen[bytes], Path]:
    requests = run.data_dir / f"bulk-{cycle}.jsonl"
    lines = []
    for i in range(BULK_REQUESTS):
        if i % 3 == 2:
            lines.append({"kind": "qsealc", "org_id": ORG})
        else:
            lines.append({"kind": "qwac", "org_id": ORG, "domains": [f"b{cycle}-{i}.bulk.example.com"]})
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = run.data_dir / f"bulk-out-{cycle}"
    log = open(run.data_dir / f"bulk-{cycle}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "issue", "bulk", str(requests), "--out", str(out),
                             "--workers", "1", "--data-dir", str(run.data_dir)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            cwd=ROOT, env=run.service.env)
    log.close()
    return proc, out


def collect_bulk(run: Run, out: Path) -> int:
    """What the bulk run told its user: every complete cert.pem it wrote."""
    told = 0
    if not out.exists():
        return 0
    for path in sorted(out.glob("*/cert.pem")):
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError:
            continue  # cut off by the kill while being written: never delivered
        issuer = run.ca_ids_by_name[cert.issuer.public_bytes()]
        key = (issuer, cert.serial_number)
        with run.ledger.lock:
            run.ledger.received_serials.append(key)
            run.ledger.issued[key] = cert.public_bytes(Encoding.DER)
            run.ledger.bulk.add(key)
        told += 1
    return told


def load_and_kill(run: Run, cycle: int, bulk: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    killing, stop = threading.Event(), threading.Event()
    clients = [Client(run, i, killing, stop) for i in range(CLIENTS)]
    probe = Probe(run, killing, stop)
    for thread in (*clients, probe):
        thread.start()
    # The bulk run must be writing when the kill comes, or the test proves nothing about it: on a loaded
    # machine its start-up (imports, pkilint, the first batch) can outlast the whole random delay.
    # Wait (bounded) for its first certificate, then kill at a random moment after that.
    writing_by = time.monotonic() + 90
    while time.monotonic() < writing_by and bulk.poll() is None and not any(out.glob("*/cert.pem")):
        time.sleep(0.05)
    delay = run.rng.uniform(0.8, 3.5)
    time.sleep(delay)
    killing.set()
    os.killpg(bulk.pid, signal.SIGKILL)  # the same moment: the bulk run dies with the service
    in_flight = sum(c.in_flight for c in clients)
    processes = run.service.kill9()
    bulk.wait(timeout=15)
    stop.set()
    for thread in (*clients, probe):
        thread.join(timeout=60)
        assert not thread.is_alive(), f"{thread.name} did not stop after the kill"
    run.ledger.in_flight_at_kill += in_flight
    bulk_told = collect_bulk(run, out)
    return {"after_s": round(delay, 2), "processes_killed": processes, "in_flight": in_flight, "bulk_told": bulk_told}
