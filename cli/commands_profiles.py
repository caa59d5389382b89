"""``qtsp profiles list``, ``qtsp profiles show NAME`` and ``qtsp profiles rules``: the certificate
profiles and the rules (clause and edition of each) our own checks apply to them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from .output import common, emit, table


def _now() -> dt.datetime:
    from qtsp.clock import utcnow

    return utcnow()


def _rule_data(rule: Any) -> dict[str, Any]:
    return {"code": rule.code, "document": rule.source.document, "edition": rule.source.edition,
            "clause": rule.clause, "rule": rule.text, "applies_to": sorted(rule.applies_to),
            "effective": rule.effective.date().isoformat() if rule.effective else None,
            "until": rule.until.date().isoformat() if rule.until else None}


def _in_force(rule: dict[str, Any]) -> str:
    if rule["effective"] and rule["until"]:
        return f"{rule['effective']} to {rule['until']}"
    if rule["effective"]:
        return f"from {rule['effective']}"
    return f"until {rule['until']}" if rule["until"] else "always"


def _profile(name: str) -> Any:
    from qtsp.core.errors import Kind, QTSPError
    from qtsp.core.profiles import PROFILES

    if name not in PROFILES:
        raise QTSPError(Kind.NOT_FOUND, f"no profile {name!r}; one of: {', '.join(sorted(PROFILES))}")
    return PROFILES[name]


@click.group()
def profiles() -> None:
    """Certificate profiles and the rules (clause and edition) each is checked against."""


@profiles.command("list")
@common
def list_profiles() -> None:
    """Every profile: name, what it is for, its validity."""
    from qtsp.core.profiles import PROFILES
    from qtsp.core.rules import validity_rule

    now = _now()
    rows: list[dict[str, Any]] = []
    for p in PROFILES.values():
        rule = validity_rule(p.rule_tags, now) if p.validity_days is None else None
        rows.append({"name": p.name, "description": p.description,
                     "validity_days": p.validity_days if rule is None else rule.max_days})
    emit(rows, lambda: table([[r["name"], str(r["validity_days"]), r["description"]] for r in rows],
                             ["PROFILE", "DAYS", "DESCRIPTION"]))


@profiles.command("show")
@click.argument("name")
@common
def show(name: str) -> None:
    """One profile: its fields, and the rules in force for a certificate issued now (or --at)."""
    from qtsp.core.rules import NON_BROWSER_QWAC, for_tags, validity_rule

    profile = _profile(name)
    now = _now()
    rules = for_tags(profile.rule_tags, now)
    validity = validity_rule(profile.rule_tags, now) if profile.validity_days is None else None
    if validity is not None and validity.max_days is not None:
        days = validity.max_days
        if NON_BROWSER_QWAC in profile.rule_tags:
            validity_text = f"at most {days} days (the sandbox's qwac_mtls_validity_days: {validity.cite})"
        else:
            validity_text = f"{days} days (the CA/B schedule: {validity.cite})"
    else:
        days = profile.validity_days
        validity_text = f"{days} days"
    data = {"name": profile.name, "description": profile.description, "as_of": now.isoformat(),
            "validity_days": days, "key_usage": sorted(profile.key_usage),
            "extended_key_usage": [o.dotted_string for o in profile.ext_key_usage],
            "policies": [o.dotted_string for o in profile.policies], "qc_type": profile.qc_type,
            "qc_sscd": profile.qc_sscd, "is_ca": profile.is_ca, "rules": [_rule_data(r) for r in rules]}
    emit(data, lambda: "\n".join([
        f"profile:     {profile.name}: {profile.description}",
        f"as of:       {now:%Y-%m-%d %H:%M}Z",
        f"validity:    {validity_text}",
        f"key usage:   {', '.join(data['key_usage'])}",
        f"EKU:         {', '.join(data['extended_key_usage']) or '(none)'}",
        f"policies:    {', '.join(data['policies']) or '(none)'}",
        f"QcType:      {profile.qc_type or '(no QCStatements)'}{' + QcSSCD' if profile.qc_sscd else ''}",
        "",
        table([[r.code, f"{r.source} {r.clause}", r.text] for r in rules], ["RULE", "SOURCE", "REQUIRES"])
        if rules else "(no rules of our own beyond pkilint's for this profile)",
    ]))


@profiles.command("rules")
@common
def rules_table() -> None:
    """The whole rules table, with the dates from and until which a rule applies."""
    from qtsp.core.rules import ALL_RULES

    rows = [_rule_data(r) for r in ALL_RULES]
    emit(rows, lambda: table([[r["code"], f"{r['document']} {r['edition']} {r['clause']}",
                               _in_force(r), r["rule"]]
                              for r in rows], ["RULE", "SOURCE", "IN FORCE", "REQUIRES"]))
