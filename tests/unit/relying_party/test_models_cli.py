"""``cli/bank_model.py``: the ``--model`` option and ``apply_model`` the validate command takes at merge, on a
small click command here (tests/unit/relying_party/test_models.py has the models themselves)."""

from __future__ import annotations

import datetime as dt
import json
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
