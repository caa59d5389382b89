"""The transcript: JSON lines, each holding the hash of the one before, the last one signed.

Line hash: SHA-256 of the line's canonical JSON (sorted keys, no spaces) without its ``hash``
and ``signature`` members. The first line's ``prev`` is 64 zeros (as the audit log's chain,
``qtsp.core.audit.GENESIS``). The closing line is signed with the ceremony's key, over the
closing line's hash; the public key that signs must be one an earlier line introduced as the
ceremony key. Its hash is the final hash the witnesses write down.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from qtsp import files
from qtsp.core.audit import GENESIS
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import signature_hash

FORMAT = "qtsp-ceremony-transcript/1"


def fingerprint(public: Any) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, hex: how transcripts and reports name a key."""
    return hashlib.sha256(public.public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def line_hash(line: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in line.items() if k not in ("hash", "signature")})).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def sign_hash(signer: Any, digest_hex: str) -> dict[str, str]:
    public = signer.public_key()
    data = digest_hex.encode()
    if isinstance(public, ec.EllipticCurvePublicKey):
        hash_alg = signature_hash(public)
        value, alg = signer.sign(data, ec.ECDSA(hash_alg)), f"ecdsa-{hash_alg.name}"
    elif isinstance(public, rsa.RSAPublicKey):
        hash_alg = signature_hash(public)
        value, alg = signer.sign(data, padding.PKCS1v15(), hash_alg), f"rsa-pkcs1v15-{hash_alg.name}"
    else:
        raise QTSPError(Kind.POLICY, "a ceremony key is ECDSA or RSA")
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"algorithm": alg, "public_key": base64.b64encode(spki).decode(), "value": base64.b64encode(value).decode()}


class Writer:
    """Appends lines, each flushed and fsynced before the next step starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        files.ensure_dir(path.parent)
        fd = files.create_new(path)  # never overwrite a transcript, never write through a symlink
        self._handle = os.fdopen(fd, "w", encoding="utf-8")
        self.prev, self.seq = GENESIS, 0

    def relative(self, path: Path) -> str:
        """Output paths relative to the transcript's directory, so the bundle can move as a whole."""
        try:
            return os.path.relpath(path, self.path.parent)
        except ValueError:
            return str(path)

    def append(self, line: dict[str, Any], signer: Any = None) -> dict[str, Any]:
        self.seq += 1
        line = {"seq": self.seq, **line, "prev": self.prev}
        line["hash"] = line_hash(line)
        if signer is not None:
            line["signature"] = sign_hash(signer, line["hash"])
        self._handle.write(json.dumps(line, sort_keys=True, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.prev = line["hash"]
        return line

    def close(self) -> None:
        self._handle.close()


@dataclass
class Verification:
    path: Path
    lines: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    first_bad_line: int | None = None
    final_hash: str | None = None
    signed: bool = False
    outputs_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"transcript": str(self.path), "ok": self.ok, "lines": len(self.lines), "final_hash": self.final_hash,
                "signed": self.signed, "first_bad_line": self.first_bad_line, "outputs_checked": self.outputs_checked,
                "problems": self.problems}


def verify(path: Path, *, expect_hash: str | None = None, check_outputs: bool = True) -> Verification:
    """Recompute the chain, check the closing signature and every output file's SHA-256."""
    result = Verification(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QTSPError(Kind.NOT_FOUND, f"no transcript {path}") from None
    prev, ceremony_keys = GENESIS, set()
    for number, raw in enumerate(text.splitlines(), start=1):
        problem = None
        try:
            line = json.loads(raw)
            if not isinstance(line, dict):
                raise ValueError
        except ValueError:
            problem = "is not a JSON object (edited)"
            line = {}
        if problem is None and line.get("seq") != number:
            problem = (f"holds step {line.get('seq')} where step {number} belongs: a line was removed, "
                       "added or reordered here")
        elif problem is None and line.get("prev") != prev:
            problem = "does not follow the line before it: that line was edited, or lines were removed or reordered"
        elif problem is None and line_hash(line) != line.get("hash"):
            problem = "was edited after it was written (its hash does not match its content)"
        if problem is not None:
            result.first_bad_line = number
            result.problems.append(f"line {number} {problem}")
            break
        result.lines.append(line)
        prev = line["hash"]
        ceremony_keys |= {k["fingerprint"] for k in line.get("keys", []) if k.get("ceremony_key")}
    if result.first_bad_line is None:
        _check_end(result, ceremony_keys)
    if expect_hash is not None and result.final_hash != expect_hash.strip().lower():
        result.problems.append(f"the final hash is {result.final_hash}, not the {expect_hash} the witnesses wrote down")
    if check_outputs:
        _check_outputs(result)
    return result


def _check_end(result: Verification, ceremony_keys: set[str]) -> None:
    if not result.lines:
        result.problems.append("the transcript is empty")
        return
    last = result.lines[-1]
    result.final_hash = last["hash"]
    if last.get("step") == "abort":
        result.problems.append(f"the ceremony was aborted at line {last['seq']}: {last.get('details', {}).get('error')}")
        return
    if last.get("step") != "close":
        result.problems.append(f"the transcript ends at line {last['seq']} without its closing line "
                               "(lines were removed from the end)")
        return
    signature = last.get("signature")
    if signature is None:
        if ceremony_keys:
            result.problems.append("the closing line carries no signature though the ceremony has a key")
        return
    try:
        public = serialization.load_der_public_key(base64.b64decode(signature["public_key"]))
        value = base64.b64decode(signature["value"])
        data = last["hash"].encode()
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(value, data, ec.ECDSA(signature_hash(public)))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(value, data, padding.PKCS1v15(), signature_hash(public))
        else:
            raise ValueError("unsupported key")
    except (InvalidSignature, ValueError, KeyError, TypeError):
        result.problems.append("the closing line's signature does not verify")
        return
    if fingerprint(public) != last.get("signed_by") or last.get("signed_by") not in ceremony_keys:
        result.problems.append("the closing line is signed by a key that is not this ceremony's key")
        return
    result.signed = True


def _check_outputs(result: Verification) -> None:
    base = result.path.parent
    for line in result.lines:
        for out in line.get("outputs", []):
            target = base / out["path"]
            result.outputs_checked += 1
            if not target.exists():
                result.problems.append(f"output {out['name']} ({out['path']}) is missing")
            elif file_sha256(target) != out["sha256"]:
                result.problems.append(f"output {out['name']} ({out['path']}) changed: its SHA-256 is no longer "
                                       f"{out['sha256']}")


def load(path: Path) -> list[dict[str, Any]]:
    """The lines of a transcript that verifies; raises INTEGRITY otherwise."""
    checked = verify(path)
    if not checked.ok:
        raise QTSPError(Kind.INTEGRITY, f"{path} does not verify: " + "; ".join(checked.problems))
    return checked.lines
