"""The portal's forms (flask-wtf: each carries its CSRF token). Only the shape of the input is checked
here; what it means (the register, key policy, the hierarchies) is the services' to decide, and their
refusals are put next to the field they concern (``field_for``)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms.fields.choices import SelectChoice
from wtforms import BooleanField, PasswordField, RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from ...core.keys import MAX_CSR_BYTES
from ...core.ocsp import REASONS
from ...core.profiles import PURPOSES
from ...core.psd2 import PspRole
from ...services import portal
from ...services.issuance import GENERATED_KEY_TYPES

# The roles an NCA authorises (TS 119 495 V1.8.1 5.1); NA roles (PSP_CB, PSP_PA) are for the CLI's register.
ROLE_CHOICES = [SelectChoice(r.value, r.value) for r in (PspRole.PSP_AS, PspRole.PSP_PI, PspRole.PSP_AI, PspRole.PSP_IC)]
PURPOSE_LABELS = {"server": "server: browser hierarchy, serverAuth only (a website)",
                  "client": "client: non-browser hierarchy, clientAuth only (mutual TLS to a bank)",
                  "both": "both: non-browser hierarchy, serverAuth and clientAuth"}


class MultiCheckbox(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SignInForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=portal.MAX_PASSWORD)])


class TokenSignInForm(FlaskForm):
    token = PasswordField("API token", validators=[DataRequired(), Length(max=80)])


class EmptyForm(FlaskForm):
    """A button that changes something (sign out, suspend): only the CSRF token."""


class OrganisationForm(FlaskForm):
    legal_name = StringField("Legal name", validators=[DataRequired(), Length(min=1, max=64)])
    nca = SelectField("National Competent Authority", validators=[DataRequired()])
    authorisation_number = StringField("Authorisation number (empty: generated)", validators=[
        Optional(), Regexp(r"^[A-Za-z0-9][A-Za-z0-9./-]{0,40}$", message="letters, digits and ./-, at most 41")])
    roles = MultiCheckbox("PSD2 roles", choices=ROLE_CHOICES, validators=[DataRequired(message="choose at least one role")])
    locality = StringField("Locality (city)", validators=[DataRequired(), Length(max=64)])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.nca.choices = [SelectChoice(nca_id, f"{nca_id}: {name}") for nca_id, name in sorted(portal.nca_choices().items())]


class RequestForm(FlaskForm):
    org_id = SelectField("Organisation", validators=[DataRequired()])
    kind = RadioField("Certificate", validators=[DataRequired()])
    purpose = SelectField("QWAC purpose (hierarchy)", choices=[SelectChoice(p, PURPOSE_LABELS.get(p, p)) for p in PURPOSES],
                          default="client")
    domains = TextAreaField("DNS names (QWAC; one per line)", validators=[Optional(), Length(max=8000)])
    roles = MultiCheckbox("Roles (empty: every role the register authorises)", choices=ROLE_CHOICES)
    qscd = BooleanField("Key in a QSCD (QSealC only)")
    key_source = RadioField("Key", choices=[SelectChoice("generate", "Generate a key for me (delivered once, as PKCS#12)"),
                                            SelectChoice("csr", "Use my CSR (the key never leaves my machine)")], default="generate")
    key_type = SelectField("Key type", choices=[SelectChoice(t, t) for t in GENERATED_KEY_TYPES], default="ecdsa-p256")
    p12_password = PasswordField("PKCS#12 password (never stored)", validators=[Optional(), Length(min=8, max=128)])
    csr_text = TextAreaField("CSR (PEM)", validators=[Optional(), Length(max=MAX_CSR_BYTES)])
    csr_file = FileField("or upload the CSR (PEM or DER)")

    def __init__(self, orgs: list[tuple[str, str]], *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.org_id.choices = [SelectChoice(value, label) for value, label in orgs]
        self.kind.choices = [SelectChoice(k.kind, k.label) for k in portal.PORTAL_KINDS]
        if not self.kind.data:
            self.kind.data = portal.PORTAL_KINDS[0].kind


class RevokeForm(FlaskForm):
    reason = SelectField("Reason", choices=[SelectChoice(r, r) for r in REASONS], default="unspecified")


def field_for(detail: str) -> str | None:
    """Which request-form field a service's refusal is about (None: the form as a whole)."""
    text = detail.lower()
    for words, name in ((("csr", "pkcs#10", "certificate request", "signature of the request", "proof of possession"),
                         "csr_text"),
                        (("domain", "dns", "dnsname"), "domains"),
                        (("role",), "roles"),
                        (("qscd", "qcsscd"), "qscd"),
                        (("purpose", "browser"), "purpose"),
                        (("key type", "generate a", "rsa", "ecdsa", "key size", "curve"), "key_type"),
                        (("register", "psp ", "organizationidentifier", "withdrawn", "locality"), "org_id")):
        if any(w in text for w in words):
            return name
    return None
