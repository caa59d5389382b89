"""``cli/bank_model.py``: the ``--model`` option and ``apply_model`` the validate command takes at merge, on a
small click command here (tests/unit/relying_party/test_models.py has the models themselves)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from cli.bank_model import apply_model, model_option
from qtsp.relying_party import Reason, Verdict

AT = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


@click.command()
@model_option
def judge_revoked(model: str) -> None:
    verdict = Verdict(False, "qwac", AT, [Reason("revoked", "revoked by OCSP"), Reason("key-usage", "no digitalSignature")])
    data: dict[str, Any] = verdict.as_dict()
    accepted = apply_model(data, verdict, model)
    click.echo(json.dumps(data))
    if not accepted:
        click.get_current_context().exit(1)


def test_the_option_and_the_judgement() -> None:
    runner = CliRunner()
    strict = runner.invoke(judge_revoked, [])
    assert strict.exit_code == 1
    data = json.loads(strict.stdout)
    assert (data["model"], data["verdict"], data["deciding"]["code"]) == ("strict", "reject", "revoked")
    assert [r["code"] for r in data["reasons"]] == ["revoked", "key-usage"]  # every reason kept
    lenient = runner.invoke(judge_revoked, ["--model", "chain-only"])
    assert lenient.exit_code == 0 and json.loads(lenient.stdout)["deciding"] is None
    wrong = runner.invoke(judge_revoked, ["--model", "lenient"])
    assert wrong.exit_code == 2 and "chain+revocation" in wrong.output


def test_validate_takes_a_bank_model_and_says_what_decided(tmp_path: Path) -> None:
    """`qtsp validate --model`: a QSealC carrying the website policy is rejected by strict and let through by
    chain-only, which names no deciding finding; an expired one is rejected by both, chain-only saying so
    (foreign PKI, no network)."""
    import json
    import subprocess
    import sys

    from support import ROOT
    from support.foreign_pki import VALID, VARIANT, ForeignPKI

    pki = ForeignPKI()
    anchor, chain = pki.write_cas(tmp_path)
    results = {}
    cases = {"qsealc-with-psd2-website-policy": (VARIANT["qsealc-with-psd2-website-policy"].spec, "2026-12-01"),
             "expired": (VALID["qsealc"], "2029-06-01")}  # a correct seal, judged after its two years
    for name, (spec, at) in cases.items():
        cert = pki.write(tmp_path, name, pki.issue(spec))
        for model in ("strict", "chain-only"):
            run = subprocess.run([sys.executable, "-m", "cli.main", "validate", str(cert), "--trust-anchor", str(anchor),
                                  "--chain", str(chain), "--revocation", "off", "--no-pkilint", "--model", model,
                                  "--json", "--at", at], capture_output=True, text=True, timeout=60, cwd=ROOT)
            data = json.loads(run.stdout)
            deciding = data["deciding"] or {}
            results[(name, model)] = (run.returncode, data["verdict"], deciding.get("rule", deciding.get("code")))
    assert results[("qsealc-with-psd2-website-policy", "strict")][:2] == (1, "reject")
    assert results[("qsealc-with-psd2-website-policy", "chain-only")] == (0, "accept", None)
    assert results[("expired", "strict")][:2] == (1, "reject")
    assert results[("expired", "chain-only")] == (1, "reject", "expired")
