"""Helpers for the tests that kill, starve or flood `qtsp serve` (tests/system/ops/test_crash.py,
tests/system/ops/test_limits.py) and for the soak harness (stress/soak.py).

- ``Service``: `qtsp serve` (granian workers and, optionally, the scheduler) in its own process
  group on a loopback port; ``kill9()`` sends SIGKILL to the whole group and waits until every
  member is gone; ``restart()`` starts it again on the same data dir.
- ``Http``: one keep-alive loopback connection (never through a proxy) that reconnects after
  an error and re-raises it.
- CSRs, OCSP requests (SHA-1 or SHA-256 CertID, optional nonce) and checked OCSP answers.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from support import ROOT
from support.server import free_port

ORG = "PSDBE-NBB-0123456789"  # registered by conftest (and by stress/soak.py) with PSP_AI,PSP_PI


# --- processes ------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgrp) of a live, non-zombie process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2])


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None and info[1] == pgid:
                members.append(int(entry))
    return sorted(members)


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None and info[0] == pid:
                found.append(int(entry))
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Service:
    """`qtsp serve` on a loopback port, in its own process group (service, workers, scheduler)."""

    def __init__(self, data_dir: Path, *, workers: int = 2, scheduler: bool = True, env: dict[str, str] | None = None,
                 port: int | None = None, threads: int | None = None, server: str | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.scheduler = scheduler
        self.env = dict(os.environ if env is None else env)
        self.port = port or free_port()
        self.threads = threads
        self.server = server  # granian (the default of `qtsp serve`) or gunicorn
        self.extra = extra  # more options for `qtsp serve`
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = data_dir / "serve-chaos.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> str:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the service is already running")
        args = [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", str(self.workers)]
        if self.threads:
            args += ["--threads", str(self.threads)]
        if self.server:
            args += ["--server", self.server]
        args += list(self.extra)
        if not self.scheduler:
            args.append("--no-scheduler")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start {self.starts} on port {self.port} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=ROOT, env=self.env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qtsp serve exited early (code {self.proc.returncode}): {self.log_tail()}")
            try:
                status, _, _ = Http(self.url, timeout=2).request("GET", "/healthz")
                if status == 200:
                    return self.url
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"qtsp serve did not become healthy within {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    @property
    def pgid(self) -> int:
        assert self.proc is not None, "the service was never started"
        return self.proc.pid

    def members(self) -> list[int]:
        return group_members(self.pgid)

    def worker_pids(self) -> list[int]:
        """The worker processes (granian's or gunicorn's): children of the serve process that are not the scheduler."""
        return [p for p in children(self.pgid) if " scheduler " not in cmdline(p) + " "]

    def scheduler_pids(self) -> list[int]:
        return [p for p in children(self.pgid) if " scheduler" in cmdline(p)]

    def kill9(self, timeout: float = 15.0) -> int:
        """SIGKILL to every process of the group at once; returns how many there were."""
        assert self.proc is not None
        members = self.members()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while self.members():
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of group {self.pgid} survived SIGKILL: {self.members()}")
            time.sleep(0.02)
        return len(members)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):  # the scheduler or a worker may outlive the parent
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Service:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- HTTP -----------------------------------------------------------------------------------


class Http:
    """One keep-alive HTTP/1.1 connection to a loopback URL; after any error it reconnects next time."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        rest = url.split("://", 1)[1]
        host, _, port = rest.partition(":")
        self.host, self.port, self.timeout = host, int(port.rstrip("/") or 80), timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            data = response.read()
            head = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close:
                self.close()
            return response.status, head, data
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- certificates and OCSP ------------------------------------------------------------------


def csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "replaced by the CA")])
    return (x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM).decode("ascii"))


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, *, sha256: bool = False,
                 nonce: bool = False) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256() if sha256 else hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(secrets.token_bytes(16)), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def ocsp_request_for_serial(serial: int, issuer: x509.Certificate) -> bytes:
    """A SHA-1 CertID for any serial under ``issuer`` (to ask about serials never issued)."""
    from cryptography.x509.ocsp import OCSPRequestBuilder

    digest = hashes.Hash(hashes.SHA1())
    digest.update(issuer.subject.public_bytes())
    name_hash = digest.finalize()
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    from asn1crypto import keys as akeys

    key_bits = akeys.PublicKeyInfo.load(spki)["public_key"].contents[1:]
    digest = hashes.Hash(hashes.SHA1())
    digest.update(key_bits)
    key_hash = digest.finalize()
    return OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1()).build() \
        .public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class OcspAnswer:
    status: str  # good | revoked | unknown
    revoked_at: Any = None  # datetime (UTC) or None
    reason: str | None = None  # a qtsp reason name (key-compromise, ...), None for unspecified / not revoked


_REASON_NAMES = {
    x509.ReasonFlags.key_compromise: "key-compromise",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessation-of-operation",
    x509.ReasonFlags.affiliation_changed: "affiliation-changed",
    x509.ReasonFlags.privilege_withdrawn: "privilege-withdrawn",
    x509.ReasonFlags.unspecified: "unspecified",
}


def reason_name(flag: x509.ReasonFlags | None) -> str:
    """A revocation reason as qtsp names it; no reason code means unspecified (BR 7.2.2)."""
    return "unspecified" if flag is None else _REASON_NAMES[flag]


def parse_ocsp(body: bytes, serial: int) -> OcspAnswer:
    """A successful, correctly signed single answer for ``serial``; AssertionError otherwise."""
    from cryptography.hazmat.primitives.asymmetric import ec as _ec, padding, rsa

    response = ocsp.load_der_ocsp_response(body)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, f"OCSP status {response.response_status}"
    assert response.serial_number == serial, f"OCSP answered serial {response.serial_number:X}, asked {serial:X}"
    assert response.certificates, "no responder certificate in the OCSP response"
    key = response.certificates[0].public_key()
    if isinstance(key, _ec.EllipticCurvePublicKey):
        key.verify(response.signature, response.tbs_response_bytes, _ec.ECDSA(response.signature_hash_algorithm))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm)
    status = {ocsp.OCSPCertStatus.GOOD: "good", ocsp.OCSPCertStatus.REVOKED: "revoked",
              ocsp.OCSPCertStatus.UNKNOWN: "unknown"}[response.certificate_status]
    if status != "revoked":
        return OcspAnswer(status)
    return OcspAnswer(status, response.revocation_time_utc, reason_name(response.revocation_reason))
