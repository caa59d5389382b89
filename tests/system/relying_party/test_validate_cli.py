"""``qtsp validate`` end to end, as a bank's developer runs it: a separate process each time, certificates of a
foreign QTSP judged against its root as the trust anchor (no Trusted List, no sandbox), its own OCSP
responder and CRLs on loopback; and the sandbox's own certificates against a served ``qtsp serve``.
Exit 0 accept, 1 reject, 2 unusable input; --json lines for a directory; every --at form."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from support import ROOT
from support.foreign_pki import VALID, VARIANT, ForeignPKI, Spec
from support.foreign_responder import ForeignResponder
from support.server import free_port, running_server


def qtsp(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> tuple[ForeignPKI, Path]:
    work = tmp_path_factory.mktemp("foreign")
    pki = ForeignPKI()
    pki.write_cas(work)
    certs = work / "certs"
    certs.mkdir()
    for name in ("qwac", "qsealc", "two-qwac"):
        pki.write(certs, name, pki.issue(VALID[name]))
    for name in ("empty-roles-of-psp", "qsealc-with-psd2-website-policy"):
        pki.write(certs, name, pki.issue(VARIANT[name].spec))
    key = pki.keys[next(iter(pki.keys))]  # a key file beside the certificates, as issuing tools leave them
    (certs / "qwac-key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return pki, work


def anchored(work: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return qtsp("validate", *args, "--trust-anchor", work / "foreign-root.pem", "--chain", work / "foreign-ca.pem")


def test_foreign_certificates_against_a_trust_anchor(foreign: tuple[ForeignPKI, Path]) -> None:
    _, work = foreign
    good = anchored(work, work / "certs/qwac.pem", "--revocation", "off", "--at", "2026-12-01")
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith(f"ACCEPT  {work / 'certs/qwac.pem'} as qwac at 2026-12-01T00:00:00Z")
    bad = anchored(work, work / "certs/empty-roles-of-psp.pem", "--revocation", "off", "--at", "2026-12-01", "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    verdict = json.loads(bad.stdout)
    assert verdict["verdict"] == "reject" and verdict["certificate_type"] == "qwac"
    [ours] = [f for f in verdict["findings"] if f["severity"] == "error" and not f["source"].startswith("pkilint")]
    assert ours["rule"] == "psd2-roles-empty" and ours["source"] == "ETSI TS 119 495 V1.8.1 5.2.2 (GEN-5.2.2-1)"
    # pkilint underneath (the default) says the same, and is named as the source of its finding
    assert any(f["rule"] == "etsi.ts_119_495.gen-5.2.2-1.roles_of_psp_empty" and f["source"].startswith("pkilint 0.13.3")
               for f in verdict["findings"])
    seal = anchored(work, work / "certs/qsealc-with-psd2-website-policy.pem", "--revocation", "off", "--at", "2026-12-01",
                    "--no-pkilint", "--json")
    assert seal.returncode == 1 and [r["code"] for r in json.loads(seal.stdout)["reasons"]] == ["qcp-w-psd2-on-seal"]


def test_a_directory_gives_json_lines(foreign: tuple[ForeignPKI, Path]) -> None:
    _, work = foreign
    result = anchored(work, work / "certs", "--revocation", "off", "--at", "2026-12-01", "--json")
    assert result.returncode == 1, result.stderr  # two of the five are broken
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    got = {Path(v["file"]).stem: (v["verdict"], v["certificate_type"]) for v in lines}
    assert got == {"qwac": ("accept", "qwac"), "qsealc": ("accept", "qsealc"), "two-qwac": ("accept", "2-qwac"),
                   "empty-roles-of-psp": ("reject", "qwac"), "qsealc-with-psd2-website-policy": ("reject", "qsealc")}
    assert "skipped" in result.stderr and "qwac-key.pem" in result.stderr  # the key file, named and left out
    only_good = anchored(work, work / "certs/qwac.pem", work / "certs/two-qwac.pem", "--revocation", "off", "--at",
                         "2026-12-01", "--json")
    assert only_good.returncode == 0 and len(only_good.stdout.splitlines()) == 2


@pytest.mark.parametrize("at,expected", [("2026-12-01", "2026-12-01T00:00:00+00:00"),
                                         ("2026-12-01T10:30", "2026-12-01T10:30:00+00:00"),
                                         ("2026-12-01T10:30:00+02:00", "2026-12-01T08:30:00+00:00"),
                                         ("2026-12-01T10:30Z", "2026-12-01T10:30:00+00:00")])
def test_at_takes_a_date_or_a_time_with_or_without_a_zone(foreign: tuple[ForeignPKI, Path], at: str, expected: str) -> None:
    _, work = foreign
    result = anchored(work, work / "certs/qsealc.pem", "--revocation", "off", "--no-pkilint", "--at", at, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["at"] == expected


def test_time_and_unusable_input(foreign: tuple[ForeignPKI, Path], tmp_path: Path) -> None:
    _, work = foreign
    later = anchored(work, work / "certs/qsealc.pem", "--revocation", "off", "--no-pkilint", "--at", "2029-01-01", "--json")
    assert later.returncode == 1 and [r["code"] for r in json.loads(later.stdout)["reasons"]] == ["expired"]
    text = tmp_path / "notes.pem"
    text.write_text("not a certificate\n")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes((work / "foreign-root.pem").read_bytes() + (work / "foreign-ca.pem").read_bytes())
    for args, said in (((work / "certs/missing.pem",), "cannot read certificate"),
                       ((text,), "not a PEM or DER certificate"),
                       ((bundle,), "holds 2 certificates"),
                       ((work / "certs/qwac.pem", "--at", "01/12/2026"), "not an ISO 8601 time"),
                       ((work / "certs/qwac.pem", "--require-role", "PSP_XX"), "unknown PSD2 role"),
                       ((tmp_path,), "no certificate to judge")):
        result = anchored(work, *args, "--revocation", "off")
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert said in result.stderr and result.stdout == ""
    leaf_anchor = qtsp("validate", work / "certs/qwac.pem", "--trust-anchor", work / "certs/qwac.pem", "--revocation", "off")
    assert leaf_anchor.returncode == 2 and "not a CA certificate" in leaf_anchor.stderr


@pytest.fixture
def responder(foreign: tuple[ForeignPKI, Path]) -> Iterator[ForeignResponder]:
    with ForeignResponder(foreign[0]) as running:
        yield running


def test_revocation_against_the_foreign_responder(foreign: tuple[ForeignPKI, Path], responder: ForeignResponder,
                                                  tmp_path: Path) -> None:
    pki, work = foreign
    cert = pki.issue(Spec.qwac())
    path = pki.write(tmp_path, "qwac", cert)
    args = (path, "--at", "2026-12-01", "--connect-to", responder.address, "--no-pkilint")
    for mode in ("auto", "ocsp", "crl"):
        result = anchored(work, *args, "--revocation", mode, "--json")
        assert result.returncode == 0, (mode, result.stdout, result.stderr)
        assert {r["source"] for r in json.loads(result.stdout)["revocation"]} == {"ocsp" if mode == "auto" else mode}
    responder.revoked.add(cert.serial_number)
    revoked = anchored(work, *args, "--revocation", "auto")
    assert revoked.returncode == 1 and "- revoked:" in revoked.stdout
    off = anchored(work, *args, "--revocation", "off")
    assert off.returncode == 0, off.stdout  # the profile and path alone: a revoked certificate passes, as asked


def test_the_sandbox_certificates_with_revocation_auto(tmp_path: Path) -> None:
    """The sandbox's own QWAC and QSealC, served: by its Trusted List (the default) and by its root as the
    trust anchor, OCSP and CRLs answered by `qtsp serve`; pkilint underneath finds nothing to refuse."""
    port = free_port()
    data_dir = tmp_path / "qtsp-data"
    made = qtsp("sandbox", "--data-dir", data_dir, "--port", port, "--json", timeout=300)
    assert made.returncode == 0, made.stderr
    with running_server(data_dir, port=port):
        for kind in ("qwac", "qsealc"):
            cert, chain = data_dir / f"samples/{kind}/cert.pem", data_dir / f"samples/{kind}/chain.pem"
            by_list = qtsp("validate", cert, "--chain", chain, "--data-dir", data_dir, "--json")
            assert by_list.returncode == 0, by_list.stdout + by_list.stderr
            verdict = json.loads(by_list.stdout)
            assert verdict["certificate_type"] == kind and [f for f in verdict["findings"] if f["severity"] == "error"] == []
            assert all(r["status"] == "good" and r["source"] == "ocsp" for r in verdict["revocation"])
            by_anchor = qtsp("validate", cert, "--chain", chain, "--trust-anchor", data_dir / "ca/root.pem",
                             "--revocation", "crl", "--json")
            assert by_anchor.returncode == 0, by_anchor.stdout + by_anchor.stderr
            assert {r["source"] for r in json.loads(by_anchor.stdout)["revocation"]} == {"crl"}
