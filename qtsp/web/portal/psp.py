"""PSP pages: sign in, organisations, request, list, one certificate (downloads, revoke), bundles."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Response, flash, redirect, render_template, request, session, url_for

from ...core.errors import Kind, QTSPError
from ...core.keys import MAX_CSR_BYTES
from ...services import portal, portal_certs
from ..state import state
from . import security
from .blueprint import bp
from .forms import EmptyForm, OrganisationForm, RequestForm, RevokeForm, SignInForm, TokenSignInForm, field_for
from .security import current, signed_in


def _download(body: bytes, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- signing in and out ----------------------------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    form, token_form = SignInForm(prefix="account"), TokenSignInForm(prefix="token")
    status = 200
    if request.method == "POST":
        status = 401
        if "token-token" in request.form and token_form.validate_on_submit():
            key = "token"
            wait = security.limited(key)
            if wait:
                token_form.token.errors = [f"Too many failed sign-ins: try again in {wait} s."]
                return render_template("sign_in.html", form=form, token_form=token_form), 429, {"Retry-After": str(wait)}
            try:
                session_id, _who = portal.sign_in_with_token(state().sandbox, token_form.token.data or "")
            except QTSPError as exc:
                if exc.kind is not Kind.UNAUTHORISED:
                    raise
                security.record_failure(key)
                token_form.token.errors = ["This token is invalid, expired or revoked."]
            else:
                security.start_session(session_id)
                return redirect(security.safe_next(request.args.get("next")), 303)
        elif "account-username" in request.form and form.validate_on_submit():
            key = (form.username.data or "").lower()[:64]
            wait = security.limited(key)
            if wait:
                form.password.errors = [f"Too many failed sign-ins: try again in {wait} s."]
                return render_template("sign_in.html", form=form, token_form=token_form), 429, {"Retry-After": str(wait)}
            try:
                session_id, _who = portal.sign_in(state().sandbox, form.username.data or "", form.password.data or "")
            except QTSPError as exc:
                if exc.kind is not Kind.UNAUTHORISED:
                    raise
                security.record_failure(key)
                form.password.errors = [exc.detail]
            else:
                security.record_success(key)
                security.start_session(session_id)
                return redirect(security.safe_next(request.args.get("next")), 303)
        else:
            status = 400
    return render_template("sign_in.html", form=form, token_form=token_form), status


@bp.post("/sign-out")
def sign_out() -> Any:
    if EmptyForm().validate_on_submit():
        portal.sign_out(state().sandbox, session.get(security.SESSION_KEY))
    session.clear()
    return redirect(url_for("portal.sign_in"), 303)


# --- home: organisations and certificates ------------------------------------------------------------------


@bp.get("/")
@signed_in
def home() -> Any:
    who = current()
    sandbox = state().sandbox
    args = request.args
    kind = args.get("kind", "") if args.get("kind", "") in {k.kind for k in portal.PORTAL_KINDS} else ""
    status = args.get("status", "") if args.get("status", "") in portal_certs.STATUS_FILTERS else ""
    sort = args.get("sort", "newest") if args.get("sort") in portal_certs.SORTS else "newest"
    orgs = portal.organisations(sandbox, who)
    org = args.get("org", "") if args.get("org", "") in {o.org_id for o in orgs} else ""
    text = args.get("q", "")[:64]
    listing = portal_certs.certificates(sandbox, who, org_id=org or None, kind=kind or None, status=status or None,
                                        sort=sort, text=text or None)
    return render_template("home.html", orgs=orgs if not who.is_operator else [], listing=listing,
                           filters={"kind": kind, "status": status, "sort": sort, "org": org, "q": text},
                           all_orgs=orgs, kinds=portal.PORTAL_KINDS, sorts=list(portal_certs.SORTS),
                           statuses=portal_certs.STATUS_FILTERS, sign_out=EmptyForm())


@bp.route("/organisations/new", methods=["GET", "POST"])
@signed_in
def new_organisation() -> Any:
    who = current()
    form = OrganisationForm()
    if not who.can_register:
        raise QTSPError(Kind.UNAUTHORISED, "organisations are registered by PSP accounts (sign in with one)")
    if form.validate_on_submit():
        try:
            view = portal.register_organisation(
                state().sandbox, who, nca_id=form.nca.data or "", legal_name=(form.legal_name.data or "").strip(),
                roles=",".join(form.roles.data or []), authorisation_number=form.authorisation_number.data or None,
                locality=(form.locality.data or "").strip())
        except QTSPError as exc:
            if exc.kind in (Kind.UNAUTHORISED, Kind.UNAUTHENTICATED):
                raise
            target = form.legal_name if "name" in exc.detail.lower() else form.authorisation_number \
                if "already" in exc.detail.lower() or "number" in exc.detail.lower() else form.roles
            target.errors = [*target.errors, exc.detail]
        else:
            flash(f"Registered {view.org_id} ({view.legal_name}).", "ok")
            return redirect(url_for("portal.request_certificate", org=view.org_id), 303)
    return render_template("organisation_new.html", form=form), 200 if request.method == "GET" else 400


# --- requesting a certificate ----------------------------------------------------------------------------


def _csr_bytes(form: RequestForm) -> bytes | None:
    upload: Any = form.csr_file.data
    if upload is not None and hasattr(upload, "read") and upload.filename:
        data = upload.read(MAX_CSR_BYTES + 1)
        if len(data) > MAX_CSR_BYTES:
            raise QTSPError(Kind.MALFORMED, f"the CSR file is larger than {MAX_CSR_BYTES} bytes")
        return bytes(data)
    text = (form.csr_text.data or "").strip()
    return text.encode("utf-8") if text else None


@bp.route("/request", methods=["GET", "POST"])
@signed_in
def request_certificate() -> Any:
    who = current()
    sandbox = state().sandbox
    orgs: list[tuple[str, str]] = [(str(o.org_id), f"{o.legal_name} ({o.org_id})") for o in portal.organisations(sandbox, who) if o.status == "active"]
    form = RequestForm(orgs)
    if request.method == "GET" and request.args.get("org") in {o for o, _ in orgs}:
        form.org_id.data = request.args["org"]
    if not orgs:
        return render_template("request.html", form=form, no_orgs=True)
    if form.validate_on_submit():
        generate = form.key_source.data == "generate"
        password = form.p12_password.data or ""
        try:
            csr = None if generate else _csr_bytes(form)
            if generate and not password:
                form.p12_password.errors = ["Choose a password for the PKCS#12 file (8 characters or more)."]
                raise _Stop()
            if not generate and csr is None:
                form.csr_text.errors = ["Paste a CSR or upload one."]
                raise _Stop()
            domains = tuple(d.strip() for d in (form.domains.data or "").splitlines() if d.strip())
            issued = portal_certs.request_certificate(
                sandbox, who, kind=form.kind.data or "", org_id=form.org_id.data or "", domains=domains, csr=csr,
                generate_key=form.key_type.data if generate else None, roles=",".join(form.roles.data or []) or None,
                purpose=form.purpose.data, qscd=bool(form.qscd.data))
        except _Stop:
            pass
        except QTSPError as exc:
            if exc.kind in (Kind.UNAUTHORISED, Kind.UNAUTHENTICATED, Kind.SIGNER_UNAVAILABLE, Kind.STORAGE):
                raise
            name = field_for(exc.detail)
            target = getattr(form, name) if name else None
            if target is not None:
                target.errors = [*target.errors, exc.detail]
            else:
                form.form_errors.append(exc.detail)
        else:
            if generate:
                # The key exists only in this response: encrypted with the password the form carried, never kept.
                return _download(portal_certs.pkcs12(issued, password), f"{issued.serial}.p12", "application/x-pkcs12")
            flash(f"Issued certificate {issued.serial}.", "ok")
            return redirect(url_for("portal.certificate", serial=issued.serial), 303)
    return render_template("request.html", form=form, no_orgs=False), 200 if request.method == "GET" else 400


class _Stop(Exception):
    """A field error found here: show the form again."""


# --- one certificate ---------------------------------------------------------------------------------------


@bp.get("/certificates/<serial>")
@signed_in
def certificate(serial: str) -> Any:
    who = current()
    record = portal_certs.certificate(state().sandbox, who, serial)
    assert record.certificate is not None
    cert_pem = record.certificate.public_bytes(Encoding.PEM).decode("ascii")
    chain_pem = portal_certs.pem(portal_certs.chain_of(state().sandbox, record)).decode("ascii")
    return render_template("certificate.html", record=record, cert_pem=cert_pem, chain_pem=chain_pem,
                           revoke_form=RevokeForm(), can_write=who.role != "auditor")


@bp.get("/certificates/<serial>/<any(cert, chain, fullchain):part>.pem")
@signed_in
def certificate_pem(serial: str, part: str) -> Response:
    sandbox = state().sandbox
    record = portal_certs.certificate(sandbox, current(), serial)
    assert record.certificate is not None
    certs = {"cert": [record.certificate], "chain": portal_certs.chain_of(sandbox, record),
             "fullchain": [record.certificate, *portal_certs.chain_of(sandbox, record)]}[part]
    return _download(portal_certs.pem(certs), f"{record.serial}-{part}.pem", "application/x-pem-file")


@bp.post("/certificates/<serial>/revoke")
@signed_in
def revoke(serial: str) -> Any:
    form = RevokeForm()
    if not form.validate_on_submit():
        raise QTSPError(Kind.MALFORMED, "choose one of the listed reasons")
    result = portal_certs.revoke(state().sandbox, current(), serial, form.reason.data or "")
    flash(f"Revoked {result.serial} ({result.reason}); OCSP already answers revoked, the CRL follows within seconds.", "ok")
    return redirect(url_for("portal.certificate", serial=result.serial), 303)


# --- bundles -----------------------------------------------------------------------------------------------


@bp.get("/downloads")
@signed_in
def downloads() -> Any:
    sandbox = state().sandbox
    return render_template("downloads.html", cas=sorted(portal_certs.trust_ids(sandbox)), bundle_form=EmptyForm(),
                           base=sandbox.config.base, tl_url=sandbox.config.trusted_list_url)


@bp.get("/downloads/trust-store.zip")
@signed_in
def trust_store() -> Response:
    return _download(portal_certs.trust_store_zip(state().sandbox), "qtsp-trust-store.zip", "application/zip")


@bp.post("/downloads/scenarios.zip")
@signed_in
def scenario_bundle() -> Response:
    if not EmptyForm().validate_on_submit():
        raise QTSPError(Kind.MALFORMED, "the form was not complete")
    who = current()
    wait = security.bundles.retry_after(who.actor)
    if wait:
        return Response(render_template("error.html", status=429, title="Not so fast",
                                        message=f"A scenario bundle is made at most 3 times an hour; try again in {wait} s."),
                        429, {"Retry-After": str(wait)})
    body = portal_certs.scenario_bundle(state().sandbox, who)
    security.bundles.failed(who.actor)  # counted once made
    return _download(body, "qtsp-scenarios.zip", "application/zip")
