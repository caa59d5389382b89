"""Bank models (qtsp/relying_party/models.py): which of the validator's reasons make each model reject, and
the reason that decides; then ``qtsp scenarios matrix`` over the whole catalogue in process (the sandbox's
own responder through Flask's test client), checked against the manifest and against what each model is
meant to let through. Over HTTP against ``qtsp serve``, and with --manifest: tests/system/relying_party/
test_models_matrix.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from qtsp.core.errors import QTSPError
from qtsp.relying_party import Reason, Verdict
from qtsp.relying_party.findings import Finding
from qtsp.relying_party.models import CHAIN, MODEL_NAMES, MODELS, PSD2_ROLE, REVOCATION, judge

AT = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def verdict(*codes: str) -> Verdict:
    return Verdict(not codes, "qwac", AT, [Reason(code, f"because {code}") for code in codes])


@pytest.mark.parametrize("codes, expected", [
    ((), {"strict": None, "chain-only": None, "chain+revocation": None, "psd2-role": None}),
    (("expired",), {m: "expired" for m in MODEL_NAMES}),
    (("revoked",), {"strict": "revoked", "chain-only": None, "chain+revocation": "revoked", "psd2-role": None}),
    (("revocation-unknown",), {"strict": "revocation-unknown", "chain-only": None,
                               "chain+revocation": "revocation-unknown", "psd2-role": None}),
    (("role-oid-mismatch",), {"strict": "role-oid-mismatch", "chain-only": None, "chain+revocation": None,
                              "psd2-role": "role-oid-mismatch"}),
    (("psd2-roles-empty",), {"strict": "psd2-roles-empty", "chain-only": None, "chain+revocation": None,
                             "psd2-role": "psd2-roles-empty"}),  # a statement without a role: no role present
    (("ncaid-mismatch", "key-usage"), {"strict": "ncaid-mismatch", "chain-only": None, "chain+revocation": None,
                                       "psd2-role": None}),
    # The first reason a model counts decides, in the validator's order.
    (("qctype-mismatch", "revoked", "missing-psd2-statement"),
     {"strict": "qctype-mismatch", "chain-only": None, "chain+revocation": "revoked",
      "psd2-role": "missing-psd2-statement"}),
])
def test_each_model_counts_its_codes(codes: tuple[str, ...], expected: dict[str, str | None]) -> None:
    v = verdict(*codes)
    for name in MODEL_NAMES:
        accepted, deciding = judge(v, name)
        assert accepted is (expected[name] is None), name
        assert (deciding.code if deciding else None) == expected[name], name
        if deciding is not None:
            assert deciding.message == f"because {deciding.code}"


def test_the_code_sets_are_the_stable_ones() -> None:
    assert CHAIN == {"expired", "not-yet-valid", "no-path", "bad-signature", "issuer-not-trusted", "ca-invalid",
                     "unknown-critical-extension", "malformed"}
    assert REVOCATION == {"revoked", "revocation-unknown"}
    assert PSD2_ROLE == {"missing-psd2-statement", "psd2-statement-malformed", "psd2-roles-empty", "role-not-authorised",
                         "role-oid-mismatch"}
    assert MODELS["strict"].codes is None and MODELS["chain-only"].codes == CHAIN
    assert [m for m in MODEL_NAMES if MODELS[m].checks_revocation] == ["strict", "chain+revocation"]


def test_findings_with_severities_decide_only_as_errors() -> None:
    """A verdict whose reasons are findings (rule, source, severity): warnings never reject, in any model."""
    class FindingsVerdict:
        reasons = [Finding("qcpds-not-english", "ETSI EN 319 412-5 V2.4.1 4.3.4", "warning", "no English PDS"),
                   Finding("expired", "RFC 5280 6.1.3", "error", "expired")]
    assert judge(FindingsVerdict(), "strict")[1].rule == "expired"
    FindingsVerdict.reasons = FindingsVerdict.reasons[:1]
    assert judge(FindingsVerdict(), "strict") == (True, None)


def test_an_unknown_model_is_refused() -> None:
    with pytest.raises(QTSPError) as info:
        judge(verdict(), "lenient")
    assert "strict" in info.value.detail and info.value.exit_code == 2


# --- the matrix, in process ---------------------------------------------------------------------------

def run_matrix(data_dir: Path, *args: Any) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["scenarios", "matrix", "--data-dir", str(data_dir), "--json", *map(str, args)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_matrix_over_the_whole_catalogue(data_dir: Path, tmp_path: Path) -> None:
    from qtsp.services import scenarios

    matrix = run_matrix(data_dir, "--html", tmp_path / "matrix.html")
    rows = {r["name"]: r for r in matrix["scenarios"]}
    assert list(rows) == list(scenarios.CATALOGUE)
    assert list(matrix["models"]) == list(MODEL_NAMES)
    verdicts = {name: {m: r["results"][m]["verdict"] for m in MODEL_NAMES} for name, r in rows.items()}
    deciding = {name: {m: (r["results"][m]["deciding"] or {}).get("code") for m in MODEL_NAMES} for name, r in rows.items()}
    # Strict is the reference validator: the manifest's verdict, with exactly its reasons, for every scenario.
    assert [n for n, r in rows.items() if not r["strict_as_expected"]] == []
    # The valid ones pass every model; what breaks the chain fails every model.
    for name in ("valid-qwac", "valid-qsealc"):
        assert set(verdicts[name].values()) == {"accept"}
    for name, code in (("expired", "expired"), ("not-yet-valid", "not-yet-valid"), ("wrong-signature", "bad-signature"),
                       ("missing-intermediate", "no-path"), ("issuer-not-in-tl", "issuer-not-trusted")):
        assert set(verdicts[name].values()) == {"reject"} and set(deciding[name].values()) == {code}, name
    # Revoked: only the models that look at revocation see it.
    for name in [n for n in rows if n.startswith("revoked-") and n != "revoked-after-expiry"]:
        assert verdicts[name] == {"strict": "reject", "chain-only": "accept", "chain+revocation": "reject",
                                  "psd2-role": "accept"}, name
        assert deciding[name]["chain+revocation"] == "revoked"
    # PSD2 defects: chain-only lets them through; psd2-role catches the role ones, not the NCA ones.
    assert verdicts["role-oid-mismatch"] == {"strict": "reject", "chain-only": "accept", "chain+revocation": "accept",
                                             "psd2-role": "reject"}
    assert deciding["role-oid-mismatch"]["strict"] == "role-oid-mismatch"
    assert verdicts["missing-psd2-statement"]["psd2-role"] == "reject"
    for name in ("ncaid-malformed", "ncaid-mismatch", "qctype-eseal-on-tls", "wrong-key-usage", "qwac-no-clientauth-mtls"):
        assert verdicts[name] == {"strict": "reject", "chain-only": "accept", "chain+revocation": "accept",
                                  "psd2-role": "accept"}, name
    page = (tmp_path / "matrix.html").read_text()
    assert "<script" not in page.lower() and page.count("<tr>") == len(rows) + 1
    assert page.count('class="slip"') == sum(1 for r in verdicts.values() for m in MODEL_NAMES
                                            if r["strict"] == "reject" and r[m] == "accept")
