"""Issuance, step by step (README "The issuance cycle"):

1 request -> 2 validate (CSR, key policy, NCA register) -> 3 profile template -> 4 lint with a
throwaway key -> 5 record intent (serial reserved, committed) -> 6 sign with the issuer's
Signer -> 7 store the certificate in the transaction that marks the intent done -> 8 audit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_store import repositories as repo
from ca_store.models import Certificate, CertificateAuthority

from ..clock import utcnow
from ..core import builder, oids, profiles
from ..core.errors import Kind, QTSPError
from ..core.keys import PrivateKey, PublicKey, check_subscriber_key, generate_private_key, load_csr
from ..core.names import check_domain, parse_org_id
from ..core.profiles import Profile
from ..core.psd2 import PSD2Attributes, parse_roles
from ..core.qcstatements import QcSpec
from ..core.serials import new_serial
from ..core.types import Serial, serial_hex
from . import ocsp, signing
from .context import Sandbox
from .hierarchy import ROOT_ID, issuer_info
from .register import PSPView

MAX_DOMAINS = 100

@dataclass(frozen=True)
class IssueRequest:
    kind: str  # "qwac" | "qsealc"
    org_id: str
    domains: tuple[str, ...] = ()
    csr: bytes | None = None
    generate_key: str | None = None  # a key type, e.g. "ecdsa-p256"
    roles: str | None = None  # narrows the register's roles
    qscd: bool = False
    browser: bool = False

    def profile(self) -> Profile:
        if self.kind == "qwac":
            if self.qscd:
                raise QTSPError(Kind.POLICY, "a key in a QSCD (qscd) applies to QSealCs only: QcSSCD must not appear on a QWAC")
            return profiles.QWAC_BROWSER if self.browser else profiles.QWAC
        if self.kind == "qsealc":
            if self.domains:
                raise QTSPError(Kind.MALFORMED, "a QSealC carries no domain names")
            if self.browser:
                raise QTSPError(Kind.MALFORMED, "the browser variant (serverAuth only) applies to QWACs only")
            return profiles.QSEALC_QSCD if self.qscd else profiles.QSEALC
        raise QTSPError(Kind.MALFORMED, f"unknown certificate kind {self.kind!r}: qwac or qsealc")


@dataclass
class Validated:
    """Steps 1-2 done: everything the template needs, checked."""

    request: IssueRequest
    profile: Profile
    psp: PSPView
    attrs: PSD2Attributes
    domains: tuple[str, ...]
    public_key: PublicKey | None  # None: generated later (bulk workers generate their own)


@dataclass
class Issued:
    certificate: x509.Certificate
    chain: list[x509.Certificate]  # issuing CA, then root
    private_key: PrivateKey | None = None
    issuer_id: str = ""
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def serial(self) -> str:
        return serial_hex(self.certificate.serial_number)


def validate(sandbox: Sandbox, request: IssueRequest, psp: PSPView | None = None) -> Validated:
    profile = request.profile()
    if (request.csr is None) == (request.generate_key is None):
        raise QTSPError(Kind.MALFORMED, "give exactly one of a CSR or --generate-key")
    parse_org_id(request.org_id)
    public_key: PublicKey | None = None
    if request.csr is not None:
        csr = load_csr(request.csr)
        public_key = check_subscriber_key(csr.public_key(), allow_ed25519=profile.allow_ed25519)
    elif request.generate_key == "ed25519" or request.generate_key not in ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"):
        raise QTSPError(Kind.POLICY, f"cannot generate a {request.generate_key!r} key for {profile.name}: use ecdsa-p256, ecdsa-p384 or rsa-2048/3072/4096")
    domains: tuple[str, ...] = ()
    if profile.san:
        if not request.domains:
            raise QTSPError(Kind.MALFORMED, "a QWAC needs at least one domain name")
        if len(request.domains) > MAX_DOMAINS:
            raise QTSPError(Kind.MALFORMED, f"at most {MAX_DOMAINS} domains per certificate")
        domains = tuple(check_domain(d) for d in request.domains)
    if psp is None:
        from .register import get_psp

        try:
            psp = get_psp(sandbox, request.org_id)
        except QTSPError as exc:
            if exc.kind is Kind.NOT_FOUND:
                raise QTSPError(Kind.POLICY, f"PSP {request.org_id} is not in the NCA register: its NCA must authorise it before a certificate is issued") from None
            raise
    attrs = authorised_attributes(psp, request.roles)
    return Validated(request, profile, psp, attrs, domains, public_key)


def authorised_attributes(psp: PSPView, narrow: str | None) -> PSD2Attributes:
    """TS 119 495 6.2.3 / reference 7: the PSP is active and every requested role is authorised."""
    if psp.status != "active":
        raise QTSPError(Kind.POLICY, f"PSP {psp.org_id} is {psp.status} in the NCA register; no certificate can be issued")
    roles = psp.roles
    if narrow is not None:
        requested = parse_roles(narrow)
        missing = [r for r in requested if r not in psp.roles]
        if missing:
            raise QTSPError(
                Kind.POLICY,
                f"role {', '.join(missing)} is not authorised for {psp.org_id} by {psp.nca_id} (authorised: {', '.join(psp.roles)})",
            )
        roles = requested
    org = parse_org_id(psp.org_id)
    if org.nca_id is not None and org.nca_id != psp.nca_id:
        raise QTSPError(Kind.POLICY, f"organizationIdentifier {psp.org_id} names NCA {org.nca_id}, the register says {psp.nca_id}")
    return PSD2Attributes(roles, psp.nca_name, psp.nca_id)


def template(
    sandbox_config, ca: CertificateAuthority, v: Validated, public_key: PublicKey, serial: Serial, now: dt.datetime,  # type: ignore[no-untyped-def]
    *, issuer: builder.IssuerInfo | None = None,
) -> x509.CertificateBuilder:
    """Step 3: the profile's template for this subject (``issuer`` may be passed in, cached)."""
    if issuer is None:
        issuer = issuer_info(sandbox_config, ca.id, x509.load_der_x509_certificate(ca.cert_der))
    org = parse_org_id(v.psp.org_id)
    data = builder.SubjectData(
        organization=v.psp.legal_name,
        country=v.psp.country,
        org_id=org,
        locality=v.psp.locality,
        registration_number=v.psp.registration_number or v.psp.authorisation_number,
        business_category="Government Entity" if v.psp.nca_id == "NA" else "Private Organization",
    )
    qc = QcSpec(
        qc_type=v.profile.qc_type or oids.QCT_WEB,
        pds=sandbox_config.pds,
        psd2=v.attrs,
        sscd=v.profile.qc_sscd,
    )
    profile = v.profile if v.profile.validity_days is None else v.profile.with_validity(sandbox_config.qsealc_validity_days)
    return builder.build(
        profile,
        subject=builder.subject_name(profile.shape, data),
        public_key=public_key,
        serial=serial,
        now=now,
        issuer=issuer,
        dns_names=v.domains,
        org_id=org,
        qc=qc,
    )


def issuer_for(sandbox: Sandbox, profile: Profile) -> str:
    """The newest generation of the issuing CA for this profile (after a rollover, the new one)."""
    role = "qseal" if profile.qc_type == oids.QCT_ESEAL else "qwac"
    with sandbox.transaction() as session:
        return repo.ca_for_role(session, role).id


def certificate_row(cert: x509.Certificate, issuer_id: str, v: Validated, now: dt.datetime) -> Certificate:
    der = cert.public_bytes(Encoding.DER)
    return Certificate(
        issuer_id=issuer_id,
        serial=serial_hex(cert.serial_number),
        profile=v.profile.name,
        subject=cert.subject.rfc4514_string(),
        org_id=v.psp.org_id,
        nca_id=v.attrs.nca_id,
        roles=",".join(v.attrs.roles),
        dns_names=",".join(v.domains) or None,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        der=der,
        status="good",
        created_at=now,
    )


def chain_for(sandbox: Sandbox, issuer_id: str) -> list[x509.Certificate]:
    with sandbox.transaction() as session:
        ca = repo.get_ca(session, issuer_id)
        root = repo.get_ca(session, ca.parent_id or ROOT_ID)
        return [x509.load_der_x509_certificate(ca.cert_der), x509.load_der_x509_certificate(root.cert_der)]


def issue(sandbox: Sandbox, request: IssueRequest, *, actor: str = "cli", now: dt.datetime | None = None) -> Issued:
    now = now or utcnow()
    v = validate(sandbox, request)
    issuer_id = issuer_for(sandbox, v.profile)
    private_key: PrivateKey | None = None
    public_key = v.public_key
    if public_key is None:
        private_key = generate_private_key(request.generate_key or "ecdsa-p256")
        public_key = private_key.public_key()
    with sandbox.transaction() as session:
        ca = repo.get_ca(session, issuer_id)
    signer = sandbox.backend(ca.key.ref).signer(ca.key.ref)  # type: ignore[arg-type]
    serial = new_serial()
    tbs = template(sandbox.config, ca, v, public_key, serial, now)
    # Step 4 before step 5: a certificate that fails lint never even reserves a serial.
    signing.lint(tbs, signer, v.profile)
    with sandbox.transaction() as session:
        intents = repo.reserve_serials(session, issuer_id, [serial_hex(serial)], v.profile.name, now)
    try:
        cert = signing.sign(tbs, signer)
    except BaseException:
        with sandbox.transaction() as session:
            repo.abandon_intents(session, [i.id for i in intents])
        raise
    with sandbox.transaction() as session:
        row = certificate_row(cert, issuer_id, v, now)
        repo.complete_intents(session, intents, [row])
        ocsp.presign(sandbox, session, [row], now)  # step 8: a pre-signed "good" before anyone is told
        repo.append_audit(
            session, at=now, actor=actor, action="certificate.issue", subject=row.serial,
            details={"issuer": issuer_id, "profile": row.profile, "org_id": row.org_id, "roles": row.roles,
                     "dns_names": row.dns_names, "sha256": row.fingerprint_sha256},
        )
    return Issued(cert, chain_for(sandbox, issuer_id), private_key, issuer_id)

