"""How each scenario certificate is made: a regular certificate of its kind, then changed in exactly one
way (an extension replaced, dropped or added, a validity moved, another signing key), signed by a
simulator CA. Used by ``scenarios.py``, which holds the catalogue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID


from ..core import builder, oids, profiles
from ..core.keys import generate_private_key, signature_hash
from ..core.names import parse_org_id
from ..core.psd2 import PSD2Attributes, PspRole, encode_unchecked
from ..core.qcstatements import QCStatements, QcSpec, build_statements
from ..core.serials import new_serial
from ..core.types import IssuerId, OrgId
from .context import Sandbox
from .authorities import issuer_info
from .scenario_cas import SCENARIOS_CA, SUB_CA, UNLISTED_CA, ScenarioCA



# The fictitious PSP every scenario certificate names.
PROFILE_PREFIX = "scenario:"

# The fictitious PSP every scenario certificate names.
PSP_NAME = "Scenario Payments SA"
PSP_ORG_ID = OrgId("PSDBE-NBB-0999000001")
PSP_NCA = ("National Bank of Belgium", "BE-NBB")
PSP_ROLES = (PspRole.PSP_AI, PspRole.PSP_PI)
UNKNOWN_CRITICAL_OID = x509.ObjectIdentifier("1.3.6.1.4.1.32473.7.1")  # IANA documentation arc (RFC 5612)


@dataclass
class Made:
    cert: x509.Certificate
    key: Any
    issuer_id: IssuerId
    chain: tuple[IssuerId, ...]  # CA ids a relying party is given as intermediates
    revocation: tuple[str, dt.datetime] | None = None  # (reason, revoked_at)




@dataclass(frozen=True)
class Scenario:
    """One entry of the catalogue (``scenarios.CATALOGUE``): what it is, what a validator must conclude,
    and how its certificate is made."""

    name: str
    description: str  # what a correct validator must conclude, and why
    purpose: str  # qwac (TLS server) | qwac-client (mTLS client) | qsealc | 2-qwac (signs TLS certificate bindings)
    verdict: str  # accept | reject
    reasons: tuple[str, ...]  # the reason codes of `qtsp validate` (qtsp.relying_party.validator)
    pkix: str  # what an RFC 5280 validator (revocation on, the purpose's EKU/KU) concludes: accept | reject
    build: Callable[[Context, Scenario], Made] = field(repr=False, compare=False)


class Context:
    def __init__(self, sandbox: Sandbox, now: dt.datetime, cas: dict[IssuerId, ScenarioCA]) -> None:
        self.sandbox, self.now, self.cas = sandbox, now, cas

    def issuer(self, ca_id: IssuerId, *, ca_issuers_url: str | None = None) -> builder.IssuerInfo:
        info = issuer_info(self.sandbox.config, ca_id, self.cas[ca_id].cert)
        if ca_issuers_url is not None:
            info = builder.IssuerInfo(info.name, info.public_key, info.not_after, ca_issuers_url, info.ocsp_url,
                                      info.crl_url)
        return info




# --- building blocks ------------------------------------------------------------------------------


def _qc(qc_type: str, cfg: Any, *, sscd: bool = False) -> QcSpec:
    return QcSpec(qc_type=qc_type, pds=cfg.pds, psd2=PSD2Attributes(PSP_ROLES, *PSP_NCA), sscd=sscd)


def _template(ctx: Context, sc: Scenario, *, issuer_id: IssuerId = SCENARIOS_CA, start: dt.datetime | None = None,
              profile: profiles.Profile | None = None, ca_issuers_url: str | None = None) -> tuple[x509.Certificate, Any]:
    """A regular certificate of the scenario's kind, signed with a throwaway key: the starting point
    every scenario then changes in exactly one way."""
    cfg = ctx.sandbox.config
    if profile is None:
        profile = profiles.QSEALC.with_validity(cfg.qsealc_validity_days) if sc.purpose == "qsealc" else profiles.QWAC
    key = generate_private_key(cfg.subscriber_key_type)
    org = parse_org_id(PSP_ORG_ID)
    dns: tuple[str, ...] = (f"{sc.name}.scenarios.localtest.me",) if profile.san else ()
    data = builder.SubjectData(organization=PSP_NAME, country="BE", org_id=org, locality="Brussels",
                               registration_number="0999000001", common_name=dns[0] if profile.is_two_qwac and dns else None)
    qc = _qc(profile.qc_type or oids.QCT_WEB, cfg, sscd=profile.qc_sscd)
    tbs = builder.build(profile, subject=builder.subject_name(profile.shape, data), public_key=key.public_key(),
                        serial=new_serial(), now=start or ctx.now, issuer=ctx.issuer(issuer_id, ca_issuers_url=ca_issuers_url),
                        dns_names=dns, org_id=org, qc=qc)
    throwaway = generate_private_key(cfg.ca_key_type)
    return tbs.sign(throwaway, signature_hash(throwaway)), key


def _rebuild(template: x509.Certificate, signer: Any, *, replace: dict[x509.ObjectIdentifier, tuple[Any, bool]] | None = None,
             drop: frozenset[x509.ObjectIdentifier] = frozenset(), add: list[tuple[Any, bool]] | None = None) -> x509.Certificate:
    """The template with extensions replaced, dropped or added (in place, order kept), signed by ``signer``."""
    replace = replace or {}
    b = (x509.CertificateBuilder().subject_name(template.subject).issuer_name(template.issuer)
         .public_key(template.public_key()).serial_number(template.serial_number)
         .not_valid_before(template.not_valid_before_utc).not_valid_after(template.not_valid_after_utc))
    for ext in template.extensions:
        if ext.oid in drop:
            continue
        value, critical = replace.get(ext.oid, (ext.value, ext.critical))
        b = b.add_extension(value, critical=critical)
    for value, critical in add or []:
        b = b.add_extension(value, critical=critical)
    return b.sign(signer, signature_hash(signer))


def _statements(template: x509.Certificate, change: Callable[[list[Any]], list[Any]]) -> tuple[Any, bool]:
    extension = template.extensions.get_extension_for_oid(oids.QC_STATEMENTS).value
    assert isinstance(extension, x509.UnrecognizedExtension), "cryptography parses no QCStatements"
    raw = extension.value
    statements = change(list(QCStatements.load(raw)))
    return x509.UnrecognizedExtension(oids.QC_STATEMENTS, QCStatements(statements).dump()), False


def _swap_psd2(statements: list[Any], replacement: Any | None) -> list[Any]:
    out = [s for s in statements if s["statement_id"].dotted != oids.PSD2_STATEMENT]
    return out + ([replacement] if replacement is not None else [])


# --- the builders ---------------------------------------------------------------------------------


def plain(ctx: Context, sc: Scenario) -> Made:
    template, key = _template(ctx, sc)
    return Made(_rebuild(template, ctx.cas[SCENARIOS_CA].signer), key, SCENARIOS_CA, (SCENARIOS_CA,))


def expired(ctx: Context, sc: Scenario) -> Made:
    # QWAC lifetimes are 200 or 398 days by date of issue (BR 6.3.2): 460 days back is past either.
    template, key = _template(ctx, sc, start=ctx.now - dt.timedelta(days=460))
    return Made(_rebuild(template, ctx.cas[SCENARIOS_CA].signer), key, SCENARIOS_CA, (SCENARIOS_CA,))


def not_yet_valid(ctx: Context, sc: Scenario) -> Made:
    template, key = _template(ctx, sc, start=ctx.now + dt.timedelta(days=30))
    return Made(_rebuild(template, ctx.cas[SCENARIOS_CA].signer), key, SCENARIOS_CA, (SCENARIOS_CA,))


def revoked(reason: str) -> Callable[[Context, Scenario], Made]:
    def build(ctx: Context, sc: Scenario) -> Made:
        made = plain(ctx, sc)
        made.revocation = (reason, ctx.now.replace(microsecond=0))
        return made
    return build


def revoked_after_expiry(ctx: Context, sc: Scenario) -> Made:
    made = expired(ctx, sc)
    made.revocation = ("key-compromise", (made.cert.not_valid_before_utc + dt.timedelta(days=30)).replace(microsecond=0))
    return made


def unlisted(ctx: Context, sc: Scenario) -> Made:
    template, key = _template(ctx, sc, issuer_id=UNLISTED_CA)
    return Made(_rebuild(template, ctx.cas[UNLISTED_CA].signer), key, UNLISTED_CA, (UNLISTED_CA,))


def psd2_change(replacement: Callable[[], Any] | None) -> Callable[[Context, Scenario], Made]:
    def build(ctx: Context, sc: Scenario) -> Made:
        template, key = _template(ctx, sc)
        new = replacement() if replacement else None
        ext = _statements(template, lambda st: _swap_psd2(st, new))
        cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, replace={oids.QC_STATEMENTS: ext})
        return Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))
    return build


def qctype_eseal_on_tls(ctx: Context, sc: Scenario) -> Made:
    template, key = _template(ctx, sc)
    eseal = build_statements(_qc(oids.QCT_ESEAL, ctx.sandbox.config))
    by_id = {s["statement_id"].dotted: s for s in eseal}

    def change(statements: list[Any]) -> list[Any]:
        return [by_id[oids.QCS_TYPE] if s["statement_id"].dotted == oids.QCS_TYPE else s for s in statements]

    cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, replace={oids.QC_STATEMENTS: _statements(template, change)})
    return Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))


def server_auth_only(ctx: Context, sc: Scenario) -> Made:
    template, key = _template(ctx, sc)
    eku = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, replace={ExtensionOID.EXTENDED_KEY_USAGE: eku})
    return Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))


def wrong_key_usage(ctx: Context, sc: Scenario) -> Made:
    template, key = _template(ctx, sc)
    ku = x509.KeyUsage(digital_signature=False, content_commitment=True, key_encipherment=False, data_encipherment=False,
                       key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, replace={ExtensionOID.KEY_USAGE: (ku, True)})
    return Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))


def unknown_critical(ctx: Context, sc: Scenario) -> Made:
    template, key = _template(ctx, sc)
    ext = x509.UnrecognizedExtension(UNKNOWN_CRITICAL_OID, b"\x05\x00")  # NULL
    cert = _rebuild(template, ctx.cas[SCENARIOS_CA].signer, add=[(ext, True)])
    return Made(cert, key, SCENARIOS_CA, (SCENARIOS_CA,))


def wrong_signature(ctx: Context, sc: Scenario) -> Made:
    template, key = _template(ctx, sc)
    impostor = generate_private_key(ctx.sandbox.config.ca_key_type)  # the issuer's name and AKI, another key
    return Made(_rebuild(template, impostor), key, SCENARIOS_CA, (SCENARIOS_CA,))


def missing_intermediate(ctx: Context, sc: Scenario) -> Made:
    # caIssuers points nowhere, so that AIA chasing cannot fill the gap either.
    missing = f"{ctx.sandbox.config.base}/ca/not-published.der"
    template, key = _template(ctx, sc, issuer_id=SUB_CA, ca_issuers_url=missing)
    return Made(_rebuild(template, ctx.cas[SUB_CA].signer), key, SUB_CA, ())


def role_mismatch() -> Any:
    return encode_unchecked([(PspRole.PSP_AI.oid, PspRole.PSP_PI.value)], *PSP_NCA)


def ncaid_malformed() -> Any:
    return encode_unchecked([(r.oid, r.value) for r in PSP_ROLES], PSP_NCA[0], "Belgium/NBB")


def ncaid_mismatch() -> Any:
    return encode_unchecked([(r.oid, r.value) for r in PSP_ROLES], "Federal Financial Supervisory Authority", "DE-BAFIN")


