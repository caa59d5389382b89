"""``qtsp init``: a new data dir and database holding the sandbox root, the QWAC and QSealC issuing
CAs and their OCSP responders (made by ``authorities``), committed only once everything else worked."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from dataclasses import replace
from pathlib import Path
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ca_store import db, repositories as repo

from .. import config as config_mod, files
from ..core.errors import Kind, QTSPError
from ..core.keys import KeyType
from ..signers.vault import VaultTransit
from . import authorities
from .authorities import QSEAL_CA_ID, QWAC_CA_ID, ROOT_ID
from .context import Sandbox, check_writable, secure_data_dir
from ..clock import utcnow

__all__ = ["QSEAL_CA_ID", "QWAC_CA_ID", "ROOT_ID", "init_sandbox", "remove_created"]
ACTOR_CLI = "cli"


def init_sandbox(data_dir: Path, *, key_type: KeyType | None = None, config_file: Path | None = None,
                 keystore: str | None = None, base_url: str | None = None, actor: str = ACTOR_CLI) -> Sandbox:
    """Create the hierarchy. Refuses, changing nothing, if a sandbox is already there."""
    check_writable(data_dir)
    cfg = _config(config_file, key_type=key_type, keystore=keystore, base_url=base_url)
    cfg_path = data_dir / config_mod.CONFIG_NAME
    if cfg_path.exists() or (data_dir / "keys").exists():
        raise QTSPError(Kind.CONFLICT, f"{data_dir} already holds a sandbox; refusing to overwrite it")
    url = config_mod.database_url(data_dir)
    made_dir = not data_dir.exists()
    if not made_dir:
        secure_data_dir(data_dir, url)  # before the database is looked at (and its file made, 0600)
    engine = db.make_engine(url)
    try:
        # No directory, so no SQLite file: nothing to look at (and nothing created by looking).
        if not (url.startswith("sqlite") and made_dir):
            _refuse_existing(engine)
    except BaseException:
        engine.dispose()
        raise
    files.ensure_dir(data_dir, private=True, own=False)
    secure_data_dir(data_dir, url)
    ours = [p for p in (data_dir / "keys", data_dir / "ca", data_dir / "secrets", cfg_path) if not p.exists()]
    try:
        db.migrate(engine)
        sandbox = Sandbox(data_dir, cfg, engine)
        backend = sandbox.backend()
        if isinstance(backend, VaultTransit):
            backend.ensure_mount()  # the Transit backend's own extra
        # Everything that can fail on disk happens before the one commit that makes the sandbox real.
        now = utcnow()
        commit = _create_hierarchy(sandbox, now, actor)
        files.write_new(cfg_path, config_mod.render(cfg).encode(), private=True)
        commit()
    except BaseException:
        # Leave nothing half-made, and remove only what this call created (an operator's
        # secrets/ or keys/ that were there before stay untouched).
        remove_created(ours, data_dir if made_dir else None)
        engine.dispose()
        raise
    # After the commit: the sandbox exists whatever happens here (the scheduler signs what is missing).
    authorities.presign_status(sandbox, now)  # the issuing CAs' OCSP answers, by the root's responder
    return sandbox


def _config(config_file: Path | None, *, key_type: KeyType | None, keystore: str | None,
            base_url: str | None) -> config_mod.Config:
    """The configuration file given (or the defaults), with the command line's choices over it."""
    cfg = config_mod.load(config_file) if config_file else config_mod.Config()
    if base_url:
        cfg = replace(cfg, base_url=base_url)  # validated again by __post_init__
    if key_type:
        cfg = replace(cfg, ca_key_type=key_type)  # validated again by __post_init__
    if keystore:
        cfg = replace(cfg, key_backend={"file": "file", "vault": "vault-transit"}.get(keystore, keystore))
    if cfg.key_backend == "vault-transit" and cfg.vault_key_prefix == config_mod.Config.vault_key_prefix:
        cfg = replace(cfg, vault_key_prefix=f"qtsp-{secrets.token_hex(4)}-")
    return cfg


def _refuse_existing(engine: Engine) -> None:
    try:
        existing = db.is_initialised(engine)
    except Exception as exc:  # driver errors: unreachable server, bad credentials
        raise QTSPError(Kind.STORAGE, f"cannot reach the database: {type(exc).__name__}") from None
    if existing:
        with db.transaction(db.session_factory(engine)) as session:
            if repo.list_cas(session):
                raise QTSPError(Kind.CONFLICT, "the database already holds a sandbox hierarchy; refusing to overwrite it")


def remove_created(paths: list[Path], made_dir: Path | None) -> None:
    """Undo a failed set-up: delete the files and directories it created, and the data dir if it made it."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    if made_dir is not None:
        shutil.rmtree(made_dir, ignore_errors=True)


def _create_hierarchy(sandbox: Sandbox, now: dt.datetime, actor: str) -> Callable[[], None]:
    """Make keys, certificates and CA files; return the function that commits the rows."""
    cas = authorities.make_hierarchy(sandbox, now)
    authorities.publish(sandbox, {new.ca_id: new.cert for new in cas})

    def commit() -> None:
        try:
            with sandbox.transaction() as session:
                authorities.insert_hierarchy(session, cas, now, actor=actor)
        except IntegrityError:
            # Another init won the race on the same database between our check and this commit.
            raise QTSPError(Kind.CONFLICT, "the database already holds a sandbox hierarchy; refusing to overwrite it") from None

    return commit
