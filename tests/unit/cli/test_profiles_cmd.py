"""``qtsp profiles``: the profiles and the rules table, by date (``--at`` shows a rule change)."""

from __future__ import annotations

import json

from support.cli import assert_refused, ok, ok_json, run


def test_show_gives_the_validity_and_rules_in_force_at_the_time_asked() -> None:
    now = ok_json(run("profiles", "show", "qwac-browser", "--json", "--at", "2026-12-06"))
    later = ok_json(run("profiles", "show", "qwac-browser", "--json", "--at", "2027-03-15"))
    assert (now["validity_days"], later["validity_days"]) == (200, 100)
    codes = {r["code"] for r in later["rules"]}
    assert "qtsp.validity.tls_100_days" in codes and "qtsp.validity.tls_200_days" not in codes
    nca = next(r for r in later["rules"] if r["code"] == "qtsp.psd2.nca_id_mismatch")
    assert (nca["document"], nca["edition"], nca["clause"]) == ("ETSI TS 119 495", "V1.8.1", "5.2.1 and 5.2.3")
    seal = ok_json(run("profiles", "show", "qsealc", "--json"))
    assert seal["validity_days"] == 365 and "qtsp.seal.qcp_w_psd2" in {r["code"] for r in seal["rules"]}
    assert not any(r["code"].startswith("qtsp.validity.") for r in seal["rules"])
    # The non-browser (mutual-TLS) QWACs: their own limit, the same whatever the date.
    for name in ("qwac", "qwac-client"):
        shown = [ok_json(run("profiles", "show", name, "--json", "--at", at)) for at in ("2026-12-06", "2029-04-01")]
        assert [s["validity_days"] for s in shown] == [398, 398]
        codes = {r["code"] for r in shown[1]["rules"]}
        assert "qtsp.non_browser.validity" in codes and not any(c.startswith("qtsp.validity.") for c in codes)


def test_text_output_and_the_whole_table() -> None:
    text = ok(run("profiles", "show", "qwac-browser", "--at", "2029-03-15"))
    assert "47 days" in text and "CA/Browser Forum TLS Baseline Requirements" in text and "6.3.2" in text
    table = ok_json(run("profiles", "rules", "--json"))
    validity = [(r["effective"], r["until"]) for r in table if r["code"].startswith("qtsp.validity.")]
    assert validity == [(None, "2026-03-15"), ("2026-03-15", "2027-03-15"), ("2027-03-15", "2029-03-15"), ("2029-03-15", None)]
    listed = {p["name"]: p["validity_days"] for p in ok_json(run("profiles", "list", "--json", "--at", "2027-04-01"))}
    assert listed["qwac-browser"] == 100 and listed["qwac"] == listed["qwac-client"] == 398 and listed["root-ca"] == 20 * 365


def test_an_unknown_profile_is_refused_with_the_names() -> None:
    result = run("profiles", "show", "qwac2")
    assert_refused(result, "no profile 'qwac2'")
    assert result.exit_code == 4 and "qwac-browser" in result.stderr
    assert json.loads(run("profiles", "show", "qwac2", "--json").stderr)["error"] == "not_found"
