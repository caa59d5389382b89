"""Typed models. Key material is never stored: only key references (``file:root`` ...)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from qtsp.core.types import IssuerId, KeyRef, OrgId, SerialHex


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware UTC datetimes; SQLite drops the zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class KeyReference(Base):
    __tablename__ = "key_references"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[KeyRef] = mapped_column(String(255), unique=True)
    key_type: Mapped[str] = mapped_column(String(32))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    purpose: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CertificateAuthority(Base):
    __tablename__ = "certificate_authorities"

    id: Mapped[IssuerId] = mapped_column(String(64), primary_key=True)  # "root", "qwac-ca"
    parent_id: Mapped[IssuerId | None] = mapped_column(ForeignKey("certificate_authorities.id"))
    role: Mapped[str] = mapped_column(String(32))  # root | qwac | qseal
    profile: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    key_id: Mapped[int] = mapped_column(ForeignKey("key_references.id"))
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)
    serial: Mapped[SerialHex] = mapped_column(String(42))
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ocsp_responder_der: Mapped[bytes | None] = mapped_column(LargeBinary)
    ocsp_key_id: Mapped[int | None] = mapped_column(ForeignKey("key_references.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    key: Mapped[KeyReference] = relationship(foreign_keys=[key_id], lazy="joined")
    ocsp_key: Mapped[KeyReference | None] = relationship(foreign_keys=[ocsp_key_id], lazy="joined")


class RetiredOcspResponder(Base):
    """A CA's delegated OCSP responder that a key rotation replaced: its certificate and its key (kept by
    the custodian, which keeps old keys). An answer as of a time within its validity (time travel) is
    signed by it, so that a relying party checking at that time finds a responder valid then."""

    __tablename__ = "retired_ocsp_responders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[IssuerId] = mapped_column(ForeignKey("certificate_authorities.id"), index=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("key_references.id"))
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    key: Mapped[KeyReference] = relationship(lazy="joined")


class IssuanceIntent(Base):
    """Step 5 of the issuance cycle: the serial is reserved before the CA key signs."""

    __tablename__ = "issuance_intents"
    __table_args__ = (UniqueConstraint("issuer_id", "serial", name="uq_intent_issuer_serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[IssuerId] = mapped_column(ForeignKey("certificate_authorities.id"))
    serial: Mapped[SerialHex] = mapped_column(String(42))
    profile: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # reserved | done | abandoned
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Certificate(Base):
    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("issuer_id", "serial", name="uq_cert_issuer_serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[IssuerId] = mapped_column(ForeignKey("certificate_authorities.id"), index=True)
    serial: Mapped[SerialHex] = mapped_column(String(42), index=True)  # upper-case hex
    profile: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    org_id: Mapped[OrgId | None] = mapped_column(String(128), index=True)
    nca_id: Mapped[str | None] = mapped_column(String(16))
    roles: Mapped[str | None] = mapped_column(String(255))
    dns_names: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="good")  # good | revoked
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    revocation: Mapped[Revocation | None] = relationship(back_populates="certificate", uselist=False)


class Revocation(Base):
    __tablename__ = "revocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), unique=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(128))

    certificate: Mapped[Certificate] = relationship(back_populates="revocation")


class NationalCompetentAuthority(Base):
    __tablename__ = "ncas"

    nca_id: Mapped[str] = mapped_column(String(16), primary_key=True)  # "BE-NBB"
    name: Mapped[str] = mapped_column(String(256))
    country: Mapped[str] = mapped_column(String(2))


class PSPAuthorisation(Base):
    """A PSP in the simulated NCA register."""

    __tablename__ = "psp_authorisations"

    org_id: Mapped[OrgId] = mapped_column(String(128), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(256))
    nca_id: Mapped[str] = mapped_column(ForeignKey("ncas.nca_id"))
    authorisation_number: Mapped[str] = mapped_column(String(64))
    roles: Mapped[str] = mapped_column(String(255))  # comma-separated role names
    status: Mapped[str] = mapped_column(String(16))  # active | withdrawn
    country: Mapped[str] = mapped_column(String(2))
    locality: Mapped[str | None] = mapped_column(String(128))
    registration_number: Mapped[str | None] = mapped_column(String(64))
    business_category: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    nca: Mapped[NationalCompetentAuthority] = relationship(lazy="joined")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the chain's last seq and hash. Updating it serialises appends (row lock)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class OcspResponse(Base):
    """A pre-signed OCSP response for one certificate and one CertID hash (SHA-1 or SHA-256)."""

    __tablename__ = "ocsp_responses"
    __table_args__ = (UniqueConstraint("issuer_key_hash", "serial", name="uq_ocsp_keyhash_serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    issuer_id: Mapped[IssuerId] = mapped_column(ForeignKey("certificate_authorities.id"))
    hash_algorithm: Mapped[str] = mapped_column(String(8))  # sha1 | sha256
    issuer_key_hash: Mapped[str] = mapped_column(String(64))  # hex, of the issuer's public key
    serial: Mapped[SerialHex] = mapped_column(String(42))
    status: Mapped[str] = mapped_column(String(16))  # good | revoked
    der: Mapped[bytes] = mapped_column(LargeBinary)
    produced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    this_update: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    next_update: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class CrlRecord(Base):
    """Every CRL ever published: full (delta_base NULL) and delta. Numbers rise per issuer."""

    __tablename__ = "crls"
    __table_args__ = (UniqueConstraint("issuer_id", "number", name="uq_crl_issuer_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[IssuerId] = mapped_column(ForeignKey("certificate_authorities.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    delta_base: Mapped[int | None] = mapped_column(Integer)
    entries: Mapped[int] = mapped_column(Integer)
    this_update: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    next_update: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    der: Mapped[bytes] = mapped_column(LargeBinary)


class PublicationState(Base):
    """Per issuer: whether its CRL is behind the revocations (set on revoke, cleared on publish)."""

    __tablename__ = "publication_state"

    issuer_id: Mapped[IssuerId] = mapped_column(ForeignKey("certificate_authorities.id"), primary_key=True)
    crl_dirty_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """Operator API tokens; only a SHA-256 of the secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))  # operator | auditor
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # refused from then on
    # canonical JSON {"org_ids": [...], "kinds": [...], "cas": [...]}; None: every PSP, kind and CA
    scope: Mapped[str | None] = mapped_column(Text)


class SchedulerLease(Base):
    """A lease per job group: the holder runs the jobs until it expires (several replicas, one runner)."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NcaCredential(Base):
    """A certificate an NCA signs its requests with (registered, or issued by the sandbox's NCA CA)."""

    __tablename__ = "nca_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nca_id: Mapped[str] = mapped_column(ForeignKey("ncas.nca_id"), index=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # also the JWS "kid"
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # withdrawn: refused from then on
    # The chain checked on every request: the intermediates (PEM, may be empty) up to the anchor, which is
    # the sandbox's NCA CA when None, or the anchor certificate given when the credential was added.
    intermediates_pem: Mapped[str | None] = mapped_column(Text)
    anchor_der: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The certificate's row when the sandbox's NCA CA issued it (so that revoke and the nca-ca CRL work).
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))


class NcaStatusQuery(Base):
    """The jti of every signed status query (GET /nca/v1/revocation-requests/<id>): each is good once.
    Rows older than twice the request window are pruned (their iat is refused anyway)."""

    __tablename__ = "nca_status_queries"
    __table_args__ = (UniqueConstraint("nca_id", "jti", name="uq_nca_status_query"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nca_id: Mapped[str] = mapped_column(ForeignKey("ncas.nca_id"))
    jti: Mapped[str] = mapped_column(String(128))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class NcaRequest(Base):
    """Every NCA request acted on, with the signed JWS kept verbatim as evidence."""

    __tablename__ = "nca_requests"
    __table_args__ = (UniqueConstraint("nca_id", "request_id", name="uq_nca_request"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nca_id: Mapped[str] = mapped_column(ForeignKey("ncas.nca_id"), index=True)
    request_id: Mapped[str] = mapped_column(String(128))  # the JWS "jti"
    kind: Mapped[str] = mapped_column(String(32))  # authorisation | revocation
    body_sha256: Mapped[str] = mapped_column(String(64))
    jws: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status_code: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(Text)  # JSON
    receipt: Mapped[str] = mapped_column(Text)  # the QTSP's signed receipt (compact JWS)


class ResponderBehaviour(Base):
    """A simulated fault of the OCSP responder or the CRL publisher (issue 7), off unless set.

    ``serial`` None means every certificate of the CA; CRL behaviours are always per CA."""

    __tablename__ = "responder_behaviours"
    __table_args__ = (UniqueConstraint("issuer_id", "target", "scope", name="uq_responder_behaviour"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[IssuerId] = mapped_column(ForeignKey("certificate_authorities.id"), index=True)
    target: Mapped[str] = mapped_column(String(8))  # ocsp | crl
    scope: Mapped[str] = mapped_column(String(42))  # "*" (the whole CA) or a serial in upper-case hex
    behaviour: Mapped[str] = mapped_column(String(32))
    delay_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))


class TrustedListRecord(Base):
    """Each sandbox Trusted List (ETSI TS 119 612) ever published, signed, by sequence number."""

    __tablename__ = "trusted_lists"

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    services_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 over the listed services
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    next_update: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    xml: Mapped[bytes] = mapped_column(LargeBinary)


class TrustedListSigner(Base):
    """The key and self-signed certificate that sign the sandbox Trusted List (the pin for relying parties).

    Made on first need and kept; the newest row valid at the time signs. Key material stays with its custodian."""

    __tablename__ = "trusted_list_signers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key_id: Mapped[int] = mapped_column(ForeignKey("key_references.id"))
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    key: Mapped[KeyReference] = relationship(lazy="joined")


class PortalAccount(Base):
    """A sign-in of the browser portal (issue 20): a PSP developer or the sandbox operator.

    Only a scrypt hash of the password is kept (salt and parameters in the string); never the password."""

    __tablename__ = "portal_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # psp | operator
    status: Mapped[str] = mapped_column(String(16))  # active | suspended
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PortalAccountOrg(Base):
    """Which portal account registered (and so owns) a PSP of the register: one owner per organisation."""

    __tablename__ = "portal_account_orgs"

    org_id: Mapped[OrgId] = mapped_column(ForeignKey("psp_authorisations.org_id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("portal_accounts.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PortalSession(Base):
    """A signed-in browser: the cookie carries a random id, the store its SHA-256 only.

    Either an account or an API token (signed in with its secret, never kept) stands behind it; ended by
    signing out, by its expiry, or when its account is suspended or its token revoked or expired."""

    __tablename__ = "portal_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("portal_accounts.id"), index=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
