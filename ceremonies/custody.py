"""Backup and restore under a custodian quorum.

Backup: a fresh 256-bit secret wraps the key (on the token for PKCS#11), the wrapped key and its
metadata go to the backup file, and the secret is split into SLIP-39 shares, one file per
custodian. Restore: any M custodians bring their shares; each share is checked (checksum, that
it belongs to this backup), the secret is rebuilt and checked against the backup's check value,
the key is unwrapped into the target, and a test signature proves it is the same key.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from qtsp import files
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import key_name, signature_hash, supported_public_key

from . import backends, quorum
from .checks import BACKUP_FORMAT, read_backup, share_file_name
from .steps import Run, StepResult, key_entry
from .transcript import fingerprint


def _pem(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def run_backup(run: Run) -> dict[str, Any]:
    cfg = run.cfg
    spec, threshold, count = cfg["key"], cfg["quorum"]["threshold"], cfg["quorum"]["shares"]
    custodians = run.people["custodians"]
    ref = backends.key_ref(spec)
    backend = backends.open_backend(spec["backend"], run.secret, so=spec["backend"]["type"] == "pkcs11")

    def open_key() -> StepResult:
        signer = backend.signer(ref)
        run.ceremony_signer = signer
        attributes = backends.attributes(backend, ref)
        if attributes is not None and not attributes["extractable"]:
            raise QTSPError(Kind.POLICY, f"{ref} was generated without backup: true; it can never leave the token")
        return StepResult(signer.public_key(), keys=[key_entry("backed-up", ref, signer.public_key(), ceremony_key=True,
                                                               attributes=attributes)])

    public = run.step("open-key", f"Open the key {ref} to back up", open_key,
                      show=[f"in {backends.describe(spec['backend'])}"])
    secret = quorum.new_secret()

    def wrap() -> StepResult:
        wrapped = backends.wrap(backend, ref, secret)
        document: dict[str, Any] = {
            "format": BACKUP_FORMAT, "key_ref": ref, "key_type": key_name(public),
            "public_key": _pem(public).decode(), "created": run.now.isoformat(),
            "wrapping": "AES key wrap with padding (RFC 5649) of the PKCS#8 private key",
            # A restored key keeps the protection it had: wrappable by a trusted key only, never readable.
            "extractable_for_backup": True,
            "quorum": {"scheme": "SLIP-39", "threshold": threshold, "shares": count, "identifier": None,
                       "kcv": quorum.kcv(secret), "custodians": custodians},
            "wrapped_key": base64.b64encode(wrapped).decode(),
        }
        return StepResult(document, details={"wrapped_bytes": len(wrapped), "kcv": document["quorum"]["kcv"]})

    document = run.step("wrap-key", "Wrap the key under a new 256-bit secret", wrap,
                        show=["the key leaves the token only wrapped" if spec["backend"]["type"] == "pkcs11"
                              else "the key is decrypted in memory and wrapped at once"])
    split = quorum.split(secret, threshold, count)
    document["quorum"]["identifier"] = split.identifier

    def write_backup() -> StepResult:
        import json

        data = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
        return StepResult(outputs=[run.output("backup", data, mode=0o600)])

    run.step("write-backup", "Write the backup file", write_backup)

    def hand_out() -> StepResult:
        shares_dir = cfg["outputs"]["shares-dir"]
        if os.path.lexists(shares_dir):
            raise QTSPError(Kind.CONFLICT, f"refusing to write shares into {shares_dir}: it exists")
        files.ensure_dir(shares_dir, private=True)
        handed = []
        for index, (custodian, words) in enumerate(zip(custodians, split.shares, strict=True), start=1):
            path = shares_dir / share_file_name(custodian)
            files.write_new(path, (words + "\n").encode(), private=True, sync=True)
            handed.append({"custodian": custodian, "share": index, "file": run.writer.relative(path)})
        # The share files leave with their custodians, so they are not outputs whose hashes
        # `verify` checks; the transcript records who holds which share.
        return StepResult(details={"identifier": split.identifier, "threshold": threshold, "shares": handed})

    run.step("split-secret", f"Split the secret into {count} SLIP-39 shares, {threshold} needed to restore",
             hand_out, show=[f"one share for each of {', '.join(custodians)}"], custodians=custodians)
    return {"kind": "backup", "key_ref": ref, "fingerprint": fingerprint(public),
            "threshold": threshold, "shares": count, "identifier": split.identifier,
            "backup": run.writer.relative(cfg["outputs"]["backup"])}


def _shares(run: Run, backup: dict[str, Any]) -> list[tuple[str, str]]:
    collected = []
    for share in run.cfg["shares"]:
        who = share["custodian"]
        if share.get("file") is not None:
            words = share["file"].read_text()
        else:
            typed = None if run.assume_yes else run.ask(f"{who}, type your share (hidden)")
            if not typed:
                raise QTSPError(Kind.MALFORMED, f"no share from {who} (with --yes every share needs a file)")
            words = typed
        quorum.parse_share(words, who, int(backup["quorum"]["identifier"]))  # refuse a bad share at once
        collected.append((who, words))
    return collected


def run_restore(run: Run) -> dict[str, Any]:
    cfg = run.cfg
    backup = read_backup(cfg["backup"])
    public = supported_public_key(serialization.load_pem_public_key(backup["public_key"].encode()))
    names = [s["custodian"] for s in cfg["shares"]]

    run.step("read-backup", f"Read the backup of {backup['key_ref']}", lambda: StepResult(
        inputs={"backup": run.input_entry(cfg["backup"])},
        keys=[key_entry("backed-up", backup["key_ref"], public)],
        details={"identifier": backup["quorum"]["identifier"], "threshold": backup["quorum"]["threshold"]}))

    def combine() -> StepResult:
        shares = _shares(run, backup)
        secret = quorum.combine(shares, int(backup["quorum"]["identifier"]), int(backup["quorum"]["threshold"]),
                                backup["quorum"]["kcv"])
        return StepResult(secret, details={"custodians": names, "kcv": "matches"})

    secret = run.step("combine-shares", f"Combine the shares of {', '.join(names)}", combine, custodians=names)
    target = cfg["key"]
    backend = backends.open_backend(target["backend"], run.secret)

    def unwrap() -> StepResult:
        info = backends.unwrap(backend, target["label"], base64.b64decode(backup["wrapped_key"]), secret, public,
                               bool(backup.get("extractable_for_backup")))
        if info.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
                public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise QTSPError(Kind.INTEGRITY, "the restored key's public key differs from the backup's")
        run.ceremony_signer = backend.signer(info.ref)
        return StepResult(info.ref, keys=[key_entry("restored", info.ref, info.public_key, ceremony_key=True,
                                                    attributes=backends.attributes(backend, info.ref))])

    ref = run.step("unwrap-key", f"Unwrap the key into {backends.describe(target['backend'])} as {target['label']!r}",
                   unwrap)

    def test_signature() -> StepResult:
        signer = run.ceremony_signer
        message = f"qtsp restore test {run.now.isoformat()} {os.urandom(8).hex()}".encode()
        try:
            if isinstance(public, ec.EllipticCurvePublicKey):
                algorithm = signature_hash(public)
                public.verify(signer.sign(message, ec.ECDSA(algorithm)), message, ec.ECDSA(algorithm))
            elif isinstance(public, rsa.RSAPublicKey):
                hash_alg = signature_hash(public)
                public.verify(signer.sign(message, padding.PKCS1v15(), hash_alg), message, padding.PKCS1v15(), hash_alg)
            else:
                raise QTSPError(Kind.POLICY, "a restored key is ECDSA or RSA (the backends hold no other)")
        except InvalidSignature:
            raise QTSPError(Kind.INTEGRITY, "the restored key's test signature does not verify") from None
        return StepResult(outputs=[run.output("public-key", _pem(public))],
                          details={"test_message": message.decode(), "test_signature": "verifies"})

    run.step("test-signature", "Sign a test message with the restored key and verify it", test_signature)
    return {"kind": "key", "key_ref": ref, "restored_from": backup["key_ref"],
            "fingerprint": fingerprint(public),
            "restored_at": run.now.isoformat()}
