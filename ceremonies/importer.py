"""``qtsp ceremony import``: a hierarchy made by ceremonies becomes a qtsp data dir that serves it.

Every transcript must verify first (chain, signature, output hashes). From their closing lines
come the root (its key may stay offline on the token: the service never needs it while the ARL
is fresh), the issuing CAs and their OCSP responders (online keys: file or Vault Transit), and
the newest ARL. The rows are written the way ``qtsp init`` writes them, the CA files published, and ``qtsp.toml`` written to match the
certificates' URLs; anything that does not hang together is refused before the first write.
The store is written through ``qtsp.services.authorities`` (the same insert as ``qtsp init``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from qtsp import config as config_mod, files
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import CA_KEY_TYPES, KeyType, key_name, supported_public_key
from qtsp.core.types import IssuerId, KeyRef
from qtsp.services import authorities, ca_revocation
from qtsp.services.context import Sandbox, check_writable, secure_data_dir
from qtsp.services.generation import Generation
from qtsp.services.hierarchy import remove_created
from qtsp.signers import backend_for

from . import transcript
from .transcript import fingerprint
from .checks import read_certificate


@dataclass
class _CA:
    result: dict[str, Any]
    cert: x509.Certificate
    key_ref: KeyRef
    ocsp: tuple[x509.Certificate, KeyRef] | None = None

    @property
    def responder(self) -> tuple[x509.Certificate, KeyRef]:
        """An issuing CA's OCSP responder (certificate, key reference); ``_check_hierarchy`` requires one."""
        if self.ocsp is None:
            raise QTSPError(Kind.MALFORMED, f"{self.result['ca_id']} has no OCSP responder: run an ocsp-signer ceremony for it")
        return self.ocsp


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _final_hash(path: Path) -> str:
    """The final hash of a transcript that verifies (refused otherwise): what the import records."""
    checked = transcript.verify(path)
    if not checked.ok or checked.final_hash is None:
        raise QTSPError(Kind.INTEGRITY, f"{path} does not verify: {'; '.join(checked.problems) or 'no final hash'}")
    return checked.final_hash


def _file_dirs(lines: list[dict[str, Any]]) -> list[Path]:
    """The file-backend directories a ceremony named (where its file keys are)."""
    config = lines[0]["details"]["config"]
    return [Path(spec["backend"]["dir"]) for spec in (config.get("key"), config.get("signing-key"))
            if isinstance(spec, dict) and spec["backend"]["type"] == "file"]


def _gather(paths: list[Path]) -> tuple[dict[IssuerId, _CA], list[tuple[int, bytes]], dict[str, KeyRef], list[Path],
                                       list[str]]:
    """The transcripts' closing results (each verified first), read into typed ids and key references."""
    cas: dict[IssuerId, _CA] = {}
    ocsp: dict[IssuerId, tuple[x509.Certificate, KeyRef]] = {}
    crls: list[tuple[int, bytes]] = []
    restored: dict[str, KeyRef] = {}
    dirs: list[Path] = []
    notes: list[str] = []
    for path in paths:
        lines = transcript.load(path)  # refuses a transcript that does not verify
        result, base = lines[-1]["result"], path.parent
        dirs += _file_dirs(lines)
        kind = result["kind"]
        if kind == "ca":
            if result["ca_id"] in cas:
                raise QTSPError(Kind.CONFLICT, f"two ceremonies made CA {result['ca_id']!r}")
            if not result.get("key_ref"):
                raise QTSPError(Kind.MALFORMED, f"{path}: CA {result['ca_id']} has no key reference (give key-ref)")
            cas[IssuerId(result["ca_id"])] = _CA(result, read_certificate(base / result["certificate"], str(path)),
                                                 KeyRef(result["key_ref"]))
        elif kind == "ocsp":
            if not result.get("key_ref"):
                raise QTSPError(Kind.MALFORMED, f"{path}: the responder has no key reference (give key-ref)")
            if result["for_ca"] in ocsp:
                notes.append(f"a newer responder for {result['for_ca']} replaces the one before it")
            ocsp[IssuerId(result["for_ca"])] = (read_certificate(base / result["certificate"], str(path)),
                                                KeyRef(result["key_ref"]))
        elif kind == "crl":
            if result["issuer_id"] != "root":
                raise QTSPError(Kind.POLICY, f"{path}: only the root's CRL (the ARL) comes from a ceremony; "
                                             "the service publishes the issuing CAs' CRLs itself")
            crls.append((int(result["number"]), (base / result["crl"]).read_bytes()))
        elif kind == "key":
            restored[result["fingerprint"]] = KeyRef(result["key_ref"])
        elif kind == "backup":
            notes.append(f"backup of {result['key_ref']} noted ({result['threshold']} of {result['shares']})")
        else:
            raise QTSPError(Kind.POLICY, f"{path}: a {kind} ceremony is not imported into a new data dir")
    for ca_id, (cert, ref) in ocsp.items():
        if ca_id not in cas:
            raise QTSPError(Kind.MALFORMED, f"an OCSP responder names CA {ca_id!r}, which no transcript made")
        cas[ca_id].ocsp = (cert, ref)
    return cas, crls, restored, dirs, notes


def _names_ocsp(cert: x509.Certificate) -> bool:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return False
    return any(d.access_method == x509.AuthorityInformationAccessOID.OCSP for d in aia)


def _check_hierarchy(cas: dict[IssuerId, _CA], crls: list[tuple[int, bytes]]) -> tuple[_CA, bytes | None]:
    roots = [ca for ca in cas.values() if ca.result["parent_id"] is None]
    if len(roots) != 1 or roots[0].result["ca_id"] != "root":
        raise QTSPError(Kind.MALFORMED, "import needs exactly one root, with ca-id root")
    root = roots[0]
    if len(cas) < 2:
        raise QTSPError(Kind.MALFORMED, "import needs at least one issuing CA beside the root")
    for ca_id, ca in cas.items():
        parent = cas.get(ca.result["parent_id"] or ca_id)
        if parent is None:
            raise QTSPError(Kind.MALFORMED, f"{ca_id}'s issuer {ca.result['parent_id']!r} is not among the transcripts")
        try:
            ca.cert.verify_directly_issued_by(parent.cert)
        except Exception as exc:  # InvalidSignature, ValueError, TypeError: one answer
            raise QTSPError(Kind.INTEGRITY, f"{ca_id} is not issued by {parent.result['ca_id']}: {type(exc).__name__}") from None
        if ca is not root:
            if ca.ocsp is None:
                raise QTSPError(Kind.MALFORMED, f"{ca_id} has no OCSP responder: run an ocsp-signer ceremony for it")
            if root.ocsp is None and _names_ocsp(ca.cert):
                # Its AIA names an OCSP URL for its own status: the root-delegated responder answers there.
                raise QTSPError(Kind.MALFORMED, f"{ca_id}'s certificate names an OCSP URL, and no responder of the root "
                                "answers it: import the root's ocsp-signer transcript too (ocsp-signer-root.yaml)")
            try:
                ca.ocsp[0].verify_directly_issued_by(ca.cert)
            except Exception:
                raise QTSPError(Kind.INTEGRITY, f"the OCSP responder of {ca_id} is not issued by it") from None
    arl = None
    if crls:
        number, arl = max(crls)
        crl = x509.load_der_x509_crl(arl)
        if not crl.is_signature_valid(supported_public_key(root.cert.public_key())):
            raise QTSPError(Kind.INTEGRITY, f"ARL number {number} is not signed by the root")
    return root, arl


def _copy_file_keys(data_dir: Path, dirs: list[Path], refs: Sequence[str], created: list[Path]) -> None:
    """File keys made in another directory move into the data dir (with their passphrase)."""
    for ref in refs:
        if not ref.startswith("file:"):
            continue
        name = ref.split(":", 1)[1] + ".p8"
        target = data_dir / "keys" / name
        if target.exists():
            continue
        source = next((d / "keys" / name for d in dirs if (d / "keys" / name).exists()), None)
        if source is None:
            raise QTSPError(Kind.NOT_FOUND, f"no key file for {ref} in the data dir or the ceremonies' key dirs")
        passphrase_src = source.parent.parent / "secrets" / "key-passphrase"
        passphrase_dst = data_dir / "secrets" / "key-passphrase"
        if passphrase_src.exists():
            if passphrase_dst.exists() and passphrase_dst.read_bytes() != passphrase_src.read_bytes():
                raise QTSPError(Kind.CONFLICT, f"{ref} is encrypted under another passphrase than {passphrase_dst}")
            if not passphrase_dst.exists():
                files.ensure_dir(passphrase_dst.parent, private=True)
                files.write_new(passphrase_dst, passphrase_src.read_bytes(), private=True, sync=True)
                created.append(passphrase_dst)
        files.ensure_dir(target.parent, private=True)
        files.write_new(target, source.read_bytes(), private=True, sync=True)
        created.append(target)


def _config(root: _CA, cas: dict[IssuerId, _CA]) -> config_mod.Config:
    def attr(oid: x509.ObjectIdentifier) -> str:
        return str(root.cert.subject.get_attributes_for_oid(oid)[0].value)

    def ca_config(ca: _CA | None, default: config_mod.CAConfig) -> config_mod.CAConfig:
        if ca is None:
            return default
        days = (ca.cert.not_valid_after_utc - ca.cert.not_valid_before_utc + dt.timedelta(seconds=1)).days
        return config_mod.CAConfig(str(ca.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value), days)

    issuing = [ca for ca in cas.values() if ca is not root]
    urls = {ca.result.get("base_url") for ca in issuing}
    if len(urls) != 1:
        raise QTSPError(Kind.MALFORMED, f"the issuing CAs name different base URLs: {sorted(map(str, urls))}")
    base_url = urls.pop()
    if not isinstance(base_url, str):
        raise QTSPError(Kind.MALFORMED, "the issuing CAs' transcripts name no base URL")
    schemes = {ref.split(":", 1)[0] for ca in issuing for ref in (ca.key_ref, ca.responder[1])}
    ca_type = key_name(supported_public_key(issuing[0].cert.public_key()))
    by_role = {ca.result["role"]: ca for ca in issuing}
    defaults = config_mod.Config()
    try:
        return config_mod.Config(
            organization=attr(NameOID.ORGANIZATION_NAME), country=attr(NameOID.COUNTRY_NAME),
            organization_identifier=attr(NameOID.ORGANIZATION_IDENTIFIER), base_url=base_url,
            key_backend="vault-transit" if schemes == {"vault-transit"} else "file",
            ca_key_type=KeyType(ca_type) if ca_type in CA_KEY_TYPES else defaults.ca_key_type,
            ocsp_key_type=key_name(supported_public_key(issuing[0].responder[0].public_key())),  # type: ignore[arg-type]  # a name: Config reads it, or refuses it by name
            root=ca_config(root, defaults.root), qwac_ca=ca_config(by_role.get("qwac"), defaults.qwac_ca),
            qseal_ca=ca_config(by_role.get("qseal"), defaults.qseal_ca))
    except QTSPError as exc:
        raise QTSPError(exc.kind, f"the ceremonies' hierarchy does not fit qtsp's configuration: {exc.detail}") from None


def _check_online_keys(data_dir: Path, root: _CA, cas: dict[IssuerId, _CA]) -> None:
    """The service must reach every online key, and it must be the key of its certificate."""
    for ca in cas.values():
        pairs = [(ca.key_ref, ca.cert)] if ca is not root else []
        pairs += [(ca.ocsp[1], ca.ocsp[0])] if ca.ocsp else []
        for ref, cert in pairs:
            public = backend_for(ref, data_dir).public_key(ref)
            if public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) != _spki(cert):
                raise QTSPError(Kind.INTEGRITY, f"{ref} is not the key of {cert.subject.rfc4514_string()}")


def _new_cas(root: _CA, cas: dict[IssuerId, _CA]) -> list[authorities.NewCA]:
    return [authorities.from_ceremony(ca_id, parent_id=ca.result["parent_id"], role=ca.result["role"],
                                      profile=ca.result["profile"], cert=ca.cert, key_ref=ca.key_ref, responder=ca.ocsp)
            for ca_id, ca in sorted(cas.items(), key=lambda item: item[1] is not root)]


def import_hierarchy(data_dir: Path, paths: list[Path], now: dt.datetime, *, actor: str = "cli") -> dict[str, Any]:
    check_writable(data_dir)
    cfg_path = data_dir / config_mod.CONFIG_NAME
    if cfg_path.exists():
        raise QTSPError(Kind.CONFLICT, f"{data_dir} already holds a sandbox; refusing to import over it")
    cas, crls, restored, dirs, notes = _gather(paths)
    root, arl = _check_hierarchy(cas, crls)
    fp = fingerprint(root.cert.public_key())
    if fp in restored:
        notes.append(f"the root key is used from its restored copy {restored[fp]}")
        root.key_ref = restored[fp]
    cfg = _config(root, cas)
    db_file = data_dir / "qtsp.db"
    ours = (data_dir / "ca", cfg_path, db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm"))
    created: list[Path] = [p for p in ours if not p.exists()]
    made_dir = not data_dir.exists()
    files.ensure_dir(data_dir, private=True, own=False)
    secure_data_dir(data_dir)
    sandbox = None
    try:
        online = [ref for ca in cas.values() if ca is not root for ref in (ca.key_ref, ca.responder[1])]
        online += [root.ocsp[1]] if root.ocsp else []  # the root-delegated responder's key is online too
        _copy_file_keys(data_dir, dirs, online, created)
        _check_online_keys(data_dir, root, cas)
        sandbox = authorities.new_store(data_dir, cfg)
        authorities.publish(sandbox, {ca_id: ca.cert for ca_id, ca in cas.items()})
        files.write_new(cfg_path, config_mod.render(cfg).encode(), private=True)
        authorities.store_hierarchy(sandbox, _new_cas(root, cas), now, arl=None if arl is None else (max(crls)[0], arl),
                                    transcripts={str(p): _final_hash(p) for p in paths}, actor=actor)
        authorities.presign_status(sandbox, now)  # the issuing CAs' answers, by the root's responder
    except BaseException:
        remove_created(created, data_dir if made_dir else None)
        raise
    finally:
        if sandbox is not None:
            sandbox.engine.dispose()
    if arl is None:
        notes.append("no ARL imported: the service will sign one with the root key when asked for /crl/root.crl")
    return {"data_dir": str(data_dir), "cas": {ca_id: {"key": ca.key_ref, "ocsp_key": ca.ocsp[1] if ca.ocsp else None,
                                                       "subject": ca.cert.subject.rfc4514_string()}
                                               for ca_id, ca in cas.items()},
            "arl_number": max(crls)[0] if crls else None, "notes": notes}


def import_arl(data_dir: Path, path: Path, now: dt.datetime, *, actor: str = "cli") -> dict[str, Any]:
    """A newer ARL from a ``crl`` ceremony into a data dir that serves the hierarchy: how an
    offline root keeps its ARL fresh without the service ever touching the root key."""
    result = transcript.load(path)[-1]["result"]
    if result.get("kind") != "crl":
        raise QTSPError(Kind.MALFORMED, f"{path} is not the transcript of a crl ceremony")
    der = (path.parent / result["crl"]).read_bytes()
    issuer_id = IssuerId(result["issuer_id"])
    revoked: list[str] = []

    def record(sandbox: Sandbox, session: Session, crl: x509.CertificateRevocationList) -> None:
        # The CAs the ARL lists are revoked for OCSP too (the root-delegated responder), in the same commit.
        revoked.extend(ca_revocation.record_arl_revocations(sandbox, session, issuer_id, crl, now, actor=actor))

    next_update = authorities.store_arl(data_dir, issuer_id, int(result["number"]), der, now,
                                        {"transcript": str(path), "final_hash": _final_hash(path)}, actor=actor, also=record)
    if revoked:
        Generation(data_dir).bump()  # OCSP workers drop their caches
    return {"issuer": result["issuer_id"], "number": result["number"],
            "next_update": next_update.isoformat() if next_update else None, "revoked_cas": revoked}
