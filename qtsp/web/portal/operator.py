"""Operator pages: the sandbox at a glance with charts, PSPs and accounts (suspend, withdraw), the
service's own certificates and scheduler jobs, NCA requests with receipts, the audit log and its check.
Reading needs the operator or auditor role; changing anything, the operator role (the services check)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from prometheus_client.parser import text_string_to_metric_families

from ...clock import utcnow
from ...core.errors import Kind, QTSPError
from ...services import portal, portal_ops
from .. import metrics
from ..state import state
from . import charts
from .blueprint import bp
from .forms import EmptyForm
from .security import current, readers_only


def _ocsp_counts() -> list[tuple[str, int]]:
    """OCSP requests by method and outcome, from the counters /metrics serves (this server's workers)."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.render(state().sandbox).decode("utf-8")):
        if family.name != "qtsp_ocsp_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                label = f"{sample.labels.get('method', '?')} {sample.labels.get('outcome', '?')}"
                counts[label] = counts.get(label, 0) + sample.value
    return [(label, int(value)) for label, value in counts.items()]


@bp.get("/operator/")
@readers_only
def dashboard() -> Any:
    who = current()
    sandbox = state().sandbox
    now = utcnow()
    days = portal_ops.activity(sandbox, who, now)
    activity = charts.grouped_bars("Certificates issued and revoked per day (UTC), last 30 days",
                                   [d.day.strftime("%m-%d") for d in days],
                                   [("issued", "bar-issued", [d.issued for d in days]),
                                    ("revoked", "bar-revoked", [d.revoked for d in days])])
    ocsp = charts.horizontal_bars("OCSP requests by method and outcome since this server started", _ocsp_counts())
    return render_template("operator/dashboard.html", overview=portal_ops.overview(sandbox, who, now), activity=activity,
                           ocsp=ocsp, days=days)


@bp.get("/operator/psps")
@readers_only
def psps() -> Any:
    who = current()
    sandbox = state().sandbox
    return render_template("operator/psps.html", psps=portal.organisations(sandbox, who), owners=portal.owners(sandbox),
                           accounts=portal.list_accounts(sandbox, who), form=EmptyForm())


@bp.post("/operator/accounts/<int:account_id>/<any(suspend, reactivate):account_action>")
@readers_only
def account_status(account_id: int, account_action: str) -> Any:
    if not EmptyForm().validate_on_submit():
        raise QTSPError(Kind.MALFORMED, "the form was not complete")
    status = "suspended" if account_action == "suspend" else "active"
    view = portal.set_account_status(state().sandbox, current(), account_id, status)
    flash(f"Account {view.username} is {view.status}.", "ok")
    return redirect(url_for("portal.psps"), 303)


@bp.post("/operator/psps/<org_id>/<any(withdraw, restore):psp_action>")
@readers_only
def psp_status(org_id: str, psp_action: str) -> Any:
    if not EmptyForm().validate_on_submit():
        raise QTSPError(Kind.MALFORMED, "the form was not complete")
    view = portal.set_psp_status(state().sandbox, current(), org_id, "withdrawn" if psp_action == "withdraw" else "active")
    flash(f"{view.org_id} is {view.status} in the register.", "ok")
    return redirect(url_for("portal.psps"), 303)


@bp.get("/operator/service")
@readers_only
def service() -> Any:
    who = current()
    sandbox = state().sandbox
    return render_template("operator/service.html", jobs=portal_ops.jobs(sandbox, who),
                           certs=portal_ops.certificates_of_the_service(sandbox, who, utcnow()))


@bp.get("/operator/nca-requests")
@readers_only
def nca_requests() -> Any:
    return render_template("operator/nca.html", requests=portal_ops.nca_requests(state().sandbox, current()))


@bp.get("/operator/audit")
@readers_only
def audit_log() -> Any:
    limit = request.args.get("limit", "100")
    count = int(limit) if limit.isdigit() and 0 < int(limit) <= portal_ops.MAX_EVENTS else 100
    return render_template("operator/audit.html", audit=portal_ops.audit_log(state().sandbox, current(), count))
