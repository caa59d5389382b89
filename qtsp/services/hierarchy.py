"""``qtsp init``: the sandbox root, the QWAC and QSealC issuing CAs, and their OCSP responders."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.exc import IntegrityError

from ca_store import db, repositories as repo
from ca_store.models import CertificateAuthority, KeyReference, NationalCompetentAuthority

from .. import config as config_mod
from ..clock import utcnow
from ..core import builder, profiles
from ..core.errors import Kind, QTSPError
from ..core.names import parse_org_id
from ..core.ncas import EBA_NCAS
from ..core.profiles import Profile
from ..core.serials import new_serial
from ..core.types import serial_hex
from ..signers import KeyInfo, Signer
from .context import Sandbox, check_writable
from .signing import sign_after_lint

ROOT_ID, QWAC_CA_ID, QSEAL_CA_ID = "root", "qwac-ca", "qseal-ca"
ACTOR_CLI = "cli"


@dataclass(frozen=True)
class CAPlan:
    ca_id: str
    role: str
    profile: Profile
    ca_config: config_mod.CAConfig


def _plans(cfg: config_mod.Config) -> list[CAPlan]:
    return [
        CAPlan(ROOT_ID, "root", profiles.ROOT_CA, cfg.root),
        CAPlan(QWAC_CA_ID, "qwac", profiles.QWAC_ISSUING_CA, cfg.qwac_ca),
        CAPlan(QSEAL_CA_ID, "qseal", profiles.QSEAL_ISSUING_CA, cfg.qseal_ca),
    ]


def issuer_info(cfg: config_mod.Config, ca_id: str, cert: x509.Certificate, *, ocsp: bool = True) -> builder.IssuerInfo:
    return builder.IssuerInfo(
        name=cert.subject,
        public_key=cert.public_key(),  # type: ignore[arg-type]
        not_after=cert.not_valid_after_utc,
        ca_issuers_url=cfg.ca_issuers_url(ca_id),
        ocsp_url=None if ca_id == ROOT_ID or not ocsp else cfg.ocsp_url,
        crl_url=cfg.crl_url(ca_id),
    )


def _key_row(info: KeyInfo, purpose: str, now: dt.datetime) -> KeyReference:
    der = info.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return KeyReference(ref=info.ref, key_type=info.key_type, public_key_der=der, purpose=purpose, created_at=now)


def _qtsp_subject(cfg: config_mod.Config, common_name: str) -> x509.Name:
    data = builder.SubjectData(
        organization=cfg.organization,
        country=cfg.country,
        org_id=parse_org_id(cfg.organization_identifier),
        common_name=common_name,
    )
    return builder.subject_name(profiles.SubjectShape.CA, data)


def key_label(cfg: config_mod.Config, name: str) -> str:
    """File keys are numbered per rotation (root-1, root-2); Transit keys carry versions instead,
    under a per-sandbox prefix so that two sandboxes can share one Vault."""
    return f"{cfg.vault_key_prefix}{name}" if cfg.key_backend == "vault-transit" else f"{name}-1"


def init_sandbox(data_dir: Path, *, key_type: str | None = None, config_file: Path | None = None,
                 keystore: str | None = None, base_url: str | None = None) -> Sandbox:
    """Create the hierarchy. Refuses, changing nothing, if a sandbox is already there."""
    check_writable(data_dir)
    cfg = config_mod.load(config_file) if config_file else config_mod.Config()
    if base_url:
        cfg = replace(cfg, base_url=base_url)  # validated again by __post_init__
    if key_type:
        cfg = replace(cfg, ca_key_type=key_type)  # validated again by __post_init__
    if keystore:
        cfg = replace(cfg, key_backend={"file": "file", "vault": "vault-transit"}.get(keystore, keystore))
    if cfg.key_backend == "vault-transit" and cfg.vault_key_prefix == config_mod.Config.vault_key_prefix:
        cfg = replace(cfg, vault_key_prefix=f"qtsp-{secrets.token_hex(4)}-")
    cfg_path = data_dir / config_mod.CONFIG_NAME
    if cfg_path.exists() or (data_dir / "keys").exists():
        raise QTSPError(Kind.CONFLICT, f"{data_dir} already holds a sandbox; refusing to overwrite it")
    url = config_mod.database_url(data_dir)
    made_dir = not data_dir.exists()
    engine = db.make_engine(url)
    try:
        if url.startswith("sqlite") and made_dir:
            existing = False  # no directory, so no database file: nothing to look at (and nothing created)
        else:
            try:
                existing = db.is_initialised(engine)
            except Exception as exc:
                raise QTSPError(Kind.STORAGE, f"cannot reach the database: {type(exc).__name__}") from None
        if existing:
            with db.transaction(db.session_factory(engine)) as session:
                if repo.list_cas(session):
                    raise QTSPError(Kind.CONFLICT, "the database already holds a sandbox hierarchy; refusing to overwrite it")
    except BaseException:
        engine.dispose()
        raise
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ours = [p for p in (data_dir / "keys", data_dir / "ca", data_dir / "secrets", cfg_path) if not p.exists()]
    try:
        db.migrate(engine)
        sandbox = Sandbox(data_dir, cfg, engine)
        if cfg.key_backend == "vault-transit":
            sandbox.backend().ensure_mount()  # type: ignore[attr-defined]
        # Everything that can fail on disk happens before the one commit that makes the sandbox real.
        commit = _create_hierarchy(sandbox, utcnow())
        cfg_path.write_text(config_mod.render(cfg))
        commit()
    except BaseException:
        # Leave nothing half-made, and remove only what this call created (an operator's
        # secrets/ or keys/ that were there before stay untouched).
        remove_created(ours, data_dir if made_dir else None)
        engine.dispose()
        raise
    return sandbox


def remove_created(paths: list[Path], made_dir: Path | None) -> None:
    """Undo a failed set-up: delete the files and directories it created, and the data dir if it made it."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    if made_dir is not None:
        shutil.rmtree(made_dir, ignore_errors=True)


def _create_hierarchy(sandbox: Sandbox, now: dt.datetime) -> Callable[[], None]:
    """Make keys, certificates and CA files; return the function that commits the rows."""
    cfg = sandbox.config
    backend = sandbox.backend()
    rows: list[tuple[CertificateAuthority, KeyReference, KeyReference | None]] = []
    certs: dict[str, x509.Certificate] = {}
    signers: dict[str, Signer] = {}
    for plan in _plans(cfg):
        info = backend.generate(key_label(cfg, plan.ca_id), cfg.ca_key_type)
        signer = backend.signer(info.ref)
        subject = _qtsp_subject(cfg, plan.ca_config.common_name)
        profile = plan.profile.with_validity(plan.ca_config.validity_days)
        parent = None if plan.ca_id == ROOT_ID else ROOT_ID
        issuer = None if parent is None else issuer_info(cfg, parent, certs[parent])
        tbs = builder.build(profile, subject=subject, public_key=info.public_key, serial=new_serial(), now=now, issuer=issuer)
        cert = sign_after_lint(tbs, signers.get(parent or "", signer), profile)
        certs[plan.ca_id], signers[plan.ca_id] = cert, signer
        ocsp_cert, ocsp_key = None, None
        if parent is not None:
            ocsp_info = backend.generate(key_label(cfg, f"{plan.ca_id}-ocsp"), cfg.ocsp_key_type)
            ocsp_profile = profiles.OCSP_RESPONDER.with_validity(cfg.ocsp_validity_days)
            ocsp_tbs = builder.build(
                ocsp_profile,
                subject=_qtsp_subject(cfg, f"{plan.ca_config.common_name} OCSP Responder"[:64]),
                public_key=ocsp_info.public_key,
                serial=new_serial(),
                now=now,
                issuer=issuer_info(cfg, plan.ca_id, cert),
            )
            ocsp_cert = sign_after_lint(ocsp_tbs, signer, ocsp_profile)
            ocsp_key = _key_row(ocsp_info, f"ocsp:{plan.ca_id}", now)
        ca = CertificateAuthority(
            id=plan.ca_id,
            parent_id=parent,
            role=plan.role,
            profile=profile.name,
            subject=cert.subject.rfc4514_string(),
            cert_der=cert.public_bytes(Encoding.DER),
            serial=serial_hex(cert.serial_number),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            ocsp_responder_der=None if ocsp_cert is None else ocsp_cert.public_bytes(Encoding.DER),
            created_at=now,
        )
        rows.append((ca, _key_row(info, f"ca:{plan.ca_id}", now), ocsp_key))

    publish_ca_files(sandbox, certs)

    def commit() -> None:
        _store_hierarchy(sandbox, rows, now)

    return commit


CARows = list[tuple[CertificateAuthority, KeyReference, KeyReference | None]]


def _store_hierarchy(sandbox: Sandbox, rows: CARows, now: dt.datetime) -> None:
    try:
        with sandbox.transaction() as session:
            insert_hierarchy(session, rows, now)
    except IntegrityError:
        # Another init won the race on the same database between our check and this commit.
        raise QTSPError(Kind.CONFLICT, "the database already holds a sandbox hierarchy; refusing to overwrite it") from None


def insert_hierarchy(session, rows: CARows, now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """The NCA seed, the CA rows with their key references, and one audit event per CA, in the caller's
    transaction (``qtsp init`` and ``qtsp ceremony import`` both use it)."""
    for nca_id, name in EBA_NCAS.items():
        repo.add_nca(session, NationalCompetentAuthority(nca_id=nca_id, name=name, country=nca_id[:2]))
    repo.add_nca(session, NationalCompetentAuthority(nca_id="NA", name="NA", country="XX"))
    for ca, key, ocsp_key in rows:
        ca.key_id = repo.add_key(session, key).id
        if ocsp_key is not None:
            ca.ocsp_key_id = repo.add_key(session, ocsp_key).id
        repo.add_ca(session, ca)
        repo.append_audit(
            session,
            at=now,
            actor=ACTOR_CLI,
            action="ca.create",
            subject=ca.id,
            details={"serial": ca.serial, "subject": ca.subject, "key": key.ref, "profile": ca.profile},
        )


def publish_ca_files(sandbox: Sandbox, certs: dict[str, x509.Certificate]) -> None:
    """Write each CA certificate as PEM and DER into ``<data dir>/ca`` (what AIA will serve)."""
    sandbox.ca_dir.mkdir(parents=True, exist_ok=True)
    for ca_id, cert in certs.items():
        (sandbox.ca_dir / f"{ca_id}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
        (sandbox.ca_dir / f"{ca_id}.der").write_bytes(cert.public_bytes(Encoding.DER))
