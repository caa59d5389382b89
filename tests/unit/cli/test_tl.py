"""``qtsp tl show|export|signer``, in process: the list shown, exported and verified with the exported
signer; no overwrite; a list as of a later time shown without being published."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from qtsp.clock import utcnow
from qtsp.core.trusted_list import GRANTED
from qtsp.relying_party import parse_and_verify_trusted_list

from support.tl import run


def test_cli_show_export_signer(data_dir: Path, tmp_path: Path) -> None:
    shown = run("tl", "show", "--data-dir", data_dir, "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert {s["subject"].split(",")[0] for s in data["services"]} == {"CN=qtsp Sandbox PSD2 QWAC CA",
                                                                      "CN=qtsp Sandbox PSD2 QWAC Browser CA",
                                                                      "CN=qtsp Sandbox PSD2 QSealC CA"}
    assert all(s["status"] == GRANTED for s in data["services"])
    text = run("tl", "show", "--data-dir", data_dir)
    assert text.exit_code == 0 and f"sequence:    {data['sequence']}" in text.output and "ForWebSiteAuthentication" in text.output

    out, pin = tmp_path / "tl.xml", tmp_path / "tl-signer.pem"
    assert run("tl", "export", "--data-dir", data_dir, "--out", out).exit_code == 0
    assert run("tl", "signer", "--data-dir", data_dir, "--out", pin).exit_code == 0
    signer = x509.load_pem_x509_certificate(pin.read_bytes())
    assert signer.fingerprint(hashes.SHA256()).hex() == data["signer_sha256"]
    parsed = parse_and_verify_trusted_list(out.read_bytes(), [signer], utcnow())
    assert parsed.sequence == data["sequence"]
    again = run("tl", "export", "--data-dir", data_dir, "--out", out)
    assert again.exit_code == 5 and "refusing to overwrite" in again.output
    # Time travel past NextUpdate: the CLI makes (and shows) a list as of then, without publishing it.
    later = dt.datetime.fromisoformat(data["next_update"]) + dt.timedelta(days=1)
    travelled = run("tl", "show", "--data-dir", data_dir, "--json", "--at", later.strftime("%Y-%m-%dT%H:%MZ"))
    assert travelled.exit_code == 0, travelled.output
    shown_then = json.loads(travelled.output)
    assert shown_then["sequence"] == data["sequence"] and shown_then["next_update"] > data["next_update"]
    assert json.loads(run("tl", "show", "--data-dir", data_dir, "--json").output)["next_update"] == data["next_update"]
