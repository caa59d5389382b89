"""Issuance, one pipeline (the order of Boulder's docs/ISSUANCE-CYCLE.md):

1. **prepare**: the request checked (kind, CSR signature or the key to generate, key policy, domain
   names) against the simulated NCA register (active, roles authorised, NCAId matches), and the
   issuing CA chosen (the newest generation of the profile's role);
2. **lint**: the profile's template signed with a throwaway key and linted (pkilint + our own
   PSD2 checks); an error stops issuance: nothing is signed with the CA key before lint passes;
3. **record intent**: the serial (>= 64 CSPRNG bits) reserved per issuer, committed;
4. **sign** with the issuing CA's Signer;
5. **store** the certificate in the transaction that marks its intent done;
6. **publish**, in that same transaction: its pre-signed "good" OCSP responses and its audit event.

``issue`` runs one request through ``Batch.run``; ``bulk`` runs many, with steps 2 and 4 in worker
processes (``lint_step`` and ``sign_step``, the same functions) and 3, 5, 6 through ``Batch``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_store import repositories as repo
from ca_store.models import Certificate, IssuanceIntent

from ..core import builder, oids
from ..core import two_qwac as two_qwac_rules
from ..core.errors import Kind, QTSPError
from ..core.keys import KeyType, PrivateKey, PublicKey, check_subscriber_key, generate_private_key, load_csr
from ..core.names import check_domain, parse_org_id
from ..core.profiles import Hierarchy, Profile
from ..core.psd2 import PSD2Attributes, PspRole, roles_text
from ..core.qcstatements import QcSpec
from ..core.serials import new_serial
from ..core.types import IssuerId, OrgId, Serial, SerialHex, serial_hex
from ..signers import Signer
from . import authorities, browser_hierarchy, ocsp, register, signing, two_qwac
from .access import EVERYTHING, Scope
from .context import Sandbox
from .generation import ISSUED, Generation
from ..clock import time_travelling, utcnow
from .issue_request import KINDS, MAX_DOMAINS, IssueRequest, parse_issue_request
from .register import PSPView

__all__ = ["KINDS", "MAX_DOMAINS", "Batch", "IssueRequest", "Issued", "IssuingCA", "Prepared", "authorised_attributes",
           "issue", "issuer_for", "lint_step", "parse_issue_request", "prepare", "sign_step", "template"]

# Subscriber keys generated here (BR 6.1.5; Ed25519 only where a profile allows it, none of ours does).
GENERATED_KEY_TYPES: tuple[str, ...] = tuple(t.value for t in KeyType if t is not KeyType.ED25519)


@dataclass
class Prepared:
    """Step 1 done: everything the template needs, checked, and the issuing CA chosen."""

    request: IssueRequest
    profile: Profile
    psp: PSPView
    attrs: PSD2Attributes
    domains: tuple[str, ...]
    issuer_id: IssuerId
    public_key: PublicKey | None  # the CSR's; None: a key of ``key_type`` is generated
    key_type: KeyType | None = None

    def certified_key(self, generated: PrivateKey | None) -> PublicKey:
        """The key the certificate certifies: the one generated for the subscriber, or the CSR's."""
        if generated is not None:
            return generated.public_key()
        if self.public_key is None:
            raise ValueError("a key was to be generated for this request")
        return self.public_key


@dataclass
class Issued:
    certificate: x509.Certificate
    chain: list[x509.Certificate]  # issuing CA, then root
    private_key: PrivateKey | None = None
    issuer_id: IssuerId = IssuerId("")
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def serial(self) -> SerialHex:
        return serial_hex(self.certificate.serial_number)


# --- 1. prepare ---------------------------------------------------------------------------------------


def _key_policy(request: IssueRequest, profile: Profile, key_type: str | None) -> PublicKey | None:
    """The CSR's key, if its signature and the key policy allow it; None for a key generated here."""
    if request.csr is not None:
        csr = load_csr(request.csr)
        key = check_subscriber_key(csr.public_key(), allow_ed25519=profile.allow_ed25519)
        if profile.is_two_qwac and not two_qwac_rules.binding_key_ok(key):
            raise QTSPError(Kind.POLICY, _TWO_QWAC_KEYS)
        return key
    if profile.is_two_qwac and key_type == KeyType.ECDSA_P384:
        raise QTSPError(Kind.POLICY, _TWO_QWAC_KEYS)
    if key_type not in GENERATED_KEY_TYPES:
        raise QTSPError(Kind.POLICY, f"cannot generate a {key_type!r} key for {profile.name}: use ecdsa-p256, ecdsa-p384 "
                                     "or rsa-2048/3072/4096")
    return None


_TWO_QWAC_KEYS = ("a 2-QWAC key is P-256 or RSA >= 2048: browsers verify its bindings with ES256, RS256 or PS256 only "
                  "(Chromium net/cert/two_qwac.cc; TS 119 411-5 Annex B asks alg to agree with the key)")


def _domains(request: IssueRequest, profile: Profile) -> tuple[str, ...]:
    if not profile.san:
        return ()
    if not request.domains:
        raise QTSPError(Kind.MALFORMED, "a QWAC needs at least one domain name")
    if len(request.domains) > MAX_DOMAINS:
        raise QTSPError(Kind.MALFORMED, f"at most {MAX_DOMAINS} domains per certificate")
    return tuple(check_domain(d) for d in request.domains)


def _not_in_register(org_id: str) -> QTSPError:
    return QTSPError(Kind.POLICY, f"PSP {org_id} is not in the NCA register: its NCA must authorise it before "
                                  "a certificate is issued")


def _psp(sandbox: Sandbox, org_id: OrgId, psps: dict[str, PSPView] | None, scope: Scope = EVERYTHING) -> PSPView:
    if not scope.allows_org(org_id):  # outside the caller's scope: as if the register did not have it
        raise _not_in_register(org_id)
    if psps is not None and org_id in psps:
        return psps[org_id]
    try:
        psp = register.get_psp(sandbox, org_id)
    except QTSPError as exc:
        if exc.kind is Kind.NOT_FOUND:
            raise _not_in_register(org_id) from None
        raise
    if psps is not None:
        psps[org_id] = psp
    return psp


def prepare(sandbox: Sandbox, request: IssueRequest, *, psps: dict[str, PSPView] | None = None,
            issuers: dict[str, IssuerId] | None = None, scope: Scope = EVERYTHING, actor: str = "cli") -> Prepared:
    """Step 1. ``psps`` and ``issuers`` cache the register and the CA choice across a batch. ``scope``: the
    caller's (access.Scope); a PSP outside it is answered as one not in the register, a kind or CA outside
    it as a CA that does not exist. ``actor`` is named in the audit events if the browser hierarchy has to
    be made first."""
    profile = request.profile()
    key_type = request.key_type(sandbox.config.subscriber_key_type)
    if (request.csr is None) == (key_type is None):
        raise QTSPError(Kind.MALFORMED, "give exactly one of a CSR or --generate-key")
    org_id = parse_org_id(request.org_id).value
    public_key = _key_policy(request, profile, key_type)
    domains = _domains(request, profile)
    psp = _psp(sandbox, org_id, psps, scope)
    attrs = authorised_attributes(psp, request.roles)
    role = issuer_role(profile)
    if not scope.allows_profile(profile.name):
        raise QTSPError(Kind.NOT_FOUND, f"no {role} CA in this sandbox")
    issuer_id = issuers.get(role) if issuers is not None else None
    if issuer_id is None:
        issuer_id = issuer_for(sandbox, profile, actor=actor)
        if issuers is not None:
            issuers[role] = issuer_id
    if not scope.allows_ca(issuer_id):
        raise QTSPError(Kind.NOT_FOUND, f"no {role} CA in this sandbox")
    return Prepared(request, profile, psp, attrs, domains, issuer_id, public_key,
                    None if key_type is None else KeyType(key_type))  # _key_policy allowed it


def authorised_attributes(psp: PSPView, narrow: tuple[PspRole, ...] | None) -> PSD2Attributes:
    """TS 119 495 6.2.3 / reference 7: the PSP is active and every requested role is authorised."""
    if psp.status != "active":
        raise QTSPError(Kind.POLICY, f"PSP {psp.org_id} is {psp.status} in the NCA register; no certificate can be issued")
    roles = psp.roles
    if narrow is not None:
        requested = narrow
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


def issuer_role(profile: Profile) -> str:
    """The role of the CA that issues this profile: the QSealC CA, the browser QWAC CA (its own root), or
    the non-browser (mutual-TLS) QWAC CA."""
    if profile.qc_type == oids.QCT_ESEAL:
        return "qseal"
    if profile.is_two_qwac:
        return two_qwac.TWO_QWAC_ROLE
    return authorities.QWAC_BROWSER_ROLE if profile.hierarchy is Hierarchy.BROWSER else "qwac"


def issuer_for(sandbox: Sandbox, profile: Profile, *, actor: str = "cli") -> IssuerId:
    """The newest generation of the issuing CA for this profile (after a rollover, the new one). The browser
    hierarchy is made on first need in a data dir from before it existed (``browser_hierarchy``)."""
    role = issuer_role(profile)
    if role == authorities.QWAC_BROWSER_ROLE:
        return browser_hierarchy.browser_ca(sandbox, actor=actor)
    if role == two_qwac.TWO_QWAC_ROLE:
        return two_qwac.two_qwac_ca(sandbox, actor=actor)
    with sandbox.transaction() as session:
        ca = repo.ca_for_role(session, role)
        revoked = authorities.revocation_of(session, ca)
        if revoked is not None:
            # Every relying party refuses what a revoked CA signs: issue nothing from it.
            raise QTSPError(Kind.POLICY, f"the {role} CA {ca.id} was revoked ({revoked.reason}, "
                            f"{revoked.revoked_at:%Y-%m-%d %H:%M:%S}Z): roll it over (`qtsp keys rotate --ca {ca.id}`) first")
        return ca.id


# --- 2 and 4: lint and sign (also run in bulk's worker processes) --------------------------------------


@dataclass(frozen=True)
class IssuingCA:
    """What lint and sign need of the issuing CA, loaded once per batch (or per worker)."""

    ca_id: IssuerId
    info: builder.IssuerInfo
    signer: Signer


def subscriber_key(p: Prepared) -> PrivateKey | None:
    """The key generated for the subscriber (written 0600 for them, never stored), or None for a CSR."""
    return None if p.key_type is None else generate_private_key(p.key_type)


def template(cfg: Any, issuer: builder.IssuerInfo, p: Prepared, public_key: PublicKey, serial: Serial,
             now: dt.datetime) -> x509.CertificateBuilder:
    """The profile's template for this subject (``cfg``: the sandbox configuration)."""
    org = parse_org_id(p.psp.org_id)
    data = builder.SubjectData(
        organization=p.psp.legal_name,
        country=p.psp.country,
        org_id=org,
        locality=p.psp.locality,
        registration_number=p.psp.registration_number or p.psp.authorisation_number,
        business_category="Government Entity" if p.psp.nca_id == "NA" else "Private Organization",
        # EN 319 412-3 4.2.1 (pkilint's QNCP-w-gen legal-person type): a commonName; the site it binds, as in SAN.
        common_name=p.domains[0] if p.profile.is_two_qwac else None,
    )
    qc = QcSpec(qc_type=p.profile.qc_type or oids.QCT_WEB, pds=cfg.pds, psd2=p.attrs, sscd=p.profile.qc_sscd)
    if p.profile.hierarchy is Hierarchy.NON_BROWSER:
        profile = p.profile.with_validity(cfg.qwac_mtls_validity_days)  # its own limit, not the CA/B schedule
    elif p.profile.validity_days is None or p.profile.is_two_qwac:
        profile = p.profile  # the browser QWAC: the CA/B schedule by issuance date; the 2-QWAC: its own days
    else:
        profile = p.profile.with_validity(cfg.qsealc_validity_days)
    return builder.build(profile, subject=builder.subject_name(profile.shape, data), public_key=public_key,
                         serial=serial, now=now, issuer=issuer, dns_names=p.domains, org_id=org, qc=qc)


def lint_step(sandbox: Sandbox, ca: IssuingCA, p: Prepared, public_key: PublicKey, serial: Serial,
              now: dt.datetime) -> x509.CertificateBuilder:
    """Step 2: the template, refused (QTSPError LINT) unless its throwaway-key copy lints clean."""
    tbs = template(sandbox.config, ca.info, p, public_key, serial, now)
    signing.lint(tbs, ca.signer, p.profile, sandbox.linter)
    return tbs


def sign_step(tbs: x509.CertificateBuilder, ca: IssuingCA) -> x509.Certificate:
    """Step 4: the real signature, by the issuing CA's Signer (file, Vault Transit, PKCS#11)."""
    return signing.sign(tbs, ca.signer)


# --- 3, 5 and 6: in the parent, through the store --------------------------------------------------------


def new_serials(count: int) -> list[Serial]:
    """``count`` fresh serials, distinct among themselves (the store refuses a batch with a repeat)."""
    seen: set[int] = set()
    serials: list[Serial] = []
    while len(serials) < count:
        serial = new_serial()
        if serial not in seen:
            seen.add(serial)
            serials.append(serial)
    return serials


def certificate_row(cert: x509.Certificate, p: Prepared, now: dt.datetime) -> Certificate:
    der = cert.public_bytes(Encoding.DER)
    return Certificate(
        issuer_id=p.issuer_id, serial=serial_hex(cert.serial_number), profile=p.profile.name,
        subject=cert.subject.rfc4514_string(), org_id=p.psp.org_id, nca_id=p.attrs.nca_id, roles=roles_text(p.attrs.roles),
        dns_names=",".join(p.domains) or None, not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(), der=der, status="good", created_at=now,
    )


@dataclass
class Batch:
    """The pipeline over prepared requests: issuing CAs and OCSP responders loaded once per batch."""

    sandbox: Sandbox
    now: dt.datetime
    actor: str
    audit_extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"bulk": True} on every audit event
    _cas: dict[IssuerId, IssuingCA] = field(default_factory=dict)
    _responders: dict[IssuerId, ocsp.IssuerEntry] | None = None

    def ca(self, issuer_id: IssuerId) -> IssuingCA:
        if issuer_id not in self._cas:
            loaded = authorities.load(self.sandbox, issuer_id)
            info = authorities.issuer_info(self.sandbox.config, issuer_id, loaded.cert)
            self._cas[issuer_id] = IssuingCA(issuer_id, info, loaded.signer)
        return self._cas[issuer_id]

    def record(self, items: list[tuple[Prepared, Serial]], label: str | None = None) -> list[IssuanceIntent]:
        """Step 3 for ``items``, in one committed transaction; intents in the order of ``items``.

        Each intent is labelled with its profile, or ``label`` (bulk labels its reservations "bulk")."""
        groups: dict[tuple[IssuerId, str], list[int]] = {}
        for index, (p, _) in enumerate(items):
            groups.setdefault((p.issuer_id, label or p.profile.name), []).append(index)
        intents: dict[int, IssuanceIntent] = {}
        with self.sandbox.transaction() as session:
            for (issuer_id, profile), indexes in groups.items():
                serials = [serial_hex(items[i][1]) for i in indexes]
                intents.update(zip(indexes, repo.reserve_serials(session, issuer_id, serials, profile, self.now), strict=True))
        return [intents[i] for i in range(len(items))]

    def abandon(self, intents: list[IssuanceIntent]) -> None:
        """Reservations that will never be signed: their serials are never used."""
        if intents:
            with self.sandbox.transaction() as session:
                repo.abandon_intents(session, [i.id for i in intents])

    def finish(self, signed: Sequence[tuple[Prepared, x509.Certificate, IssuanceIntent]],
               refused: Sequence[IssuanceIntent] = ()) -> list[Certificate]:
        """Steps 5 and 6 in one transaction: the certificates stored, their intents done (``refused``
        ones abandoned), their OCSP responses pre-signed, one audit event each."""
        with self.sandbox.transaction() as session:
            rows = [certificate_row(cert, p, self.now) for p, cert, _ in signed]
            if rows:
                repo.complete_intents(session, [intent for _, _, intent in signed], rows)
                self._publish(session, rows)
            if refused:
                repo.abandon_intents(session, [i.id for i in refused])
        if rows:
            Generation(self.sandbox.data_dir, ISSUED).bump()  # OCSP workers on this host know them from now on
        return rows

    def _publish(self, session: Any, rows: list[Certificate]) -> None:
        # The responders are loaded once per batch; not at all when acting as of another time (--at), where
        # presign stores nothing (clients on the real clock would be served those answers).
        if self._responders is None and not time_travelling():
            self._responders = ocsp.issuer_entries(self.sandbox, session)
        # A pre-signed "good" before anyone is told of the certificate (RFC 6960; RFC 5019 responders).
        ocsp.presign(self.sandbox, session, rows, self.now, self._responders)
        repo.append_audit_many(session, self.now, [
            (self.actor, "certificate.issue", row.serial,
             {"issuer": row.issuer_id, "profile": row.profile, "org_id": row.org_id, "roles": row.roles,
              "dns_names": row.dns_names, "sha256": row.fingerprint_sha256, **self.audit_extra})
            for row in rows])

    def run(self, prepared: list[Prepared]) -> list[Issued]:
        """Steps 2-6 in this process, in order; a lint refusal stops the batch before any serial is reserved."""
        keys = [subscriber_key(p) for p in prepared]
        serials = new_serials(len(prepared))
        linted = []
        for p, key, serial in zip(prepared, keys, serials, strict=True):
            public_key = p.certified_key(key)
            linted.append(lint_step(self.sandbox, self.ca(p.issuer_id), p, public_key, serial, self.now))
        intents = self.record(list(zip(prepared, serials, strict=True)))
        try:
            certs = [sign_step(tbs, self.ca(p.issuer_id)) for p, tbs in zip(prepared, linted, strict=True)]
        except BaseException:
            self.abandon(intents)
            raise
        self.finish(list(zip(prepared, certs, intents, strict=True)))
        return [Issued(cert, authorities.chain(self.sandbox, p.issuer_id), key, p.issuer_id)
                for p, cert, key in zip(prepared, certs, keys, strict=True)]


def issue(sandbox: Sandbox, request: IssueRequest, *, actor: str = "cli", now: dt.datetime | None = None,
          scope: Scope = EVERYTHING) -> Issued:
    """One certificate: a batch of one, within the caller's ``scope``."""
    now = now or utcnow()
    prepared = prepare(sandbox, request, scope=scope, actor=actor)
    return Batch(sandbox, now, actor).run([prepared])[0]
