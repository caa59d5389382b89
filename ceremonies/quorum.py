"""Custodian quorum: the backup's wrapping secret split into SLIP-39 mnemonic shares (M of N).

SLIP-39 (shamir-mnemonic, the reference implementation by SatoshiLabs) gives each share a
15-bit identifier common to one split and an RS1024 checksum, so a share from another backup
and a mistyped word are told apart from a wrong combination. We add a key check value (KCV)
kept in the backup file: the restored secret must reproduce it before the token sees it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from collections.abc import Sequence

from qtsp.core.errors import Kind, QTSPError

SECRET_BYTES = 32  # AES-256 key-wrapping key
MAX_SHARES = 16  # SLIP-39 allows 16 members per group
ITERATION_EXPONENT = 1  # SLIP-39 PBKDF2: 20000 iterations per Feistel round


@dataclass(frozen=True)
class Split:
    identifier: int
    threshold: int
    shares: list[str]  # one mnemonic per custodian, in order


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def kcv(secret: bytes) -> str:
    """Key check value: lets a restore confirm the secret without revealing it."""
    return hmac.new(secret, b"qtsp key backup check value", hashlib.sha256).hexdigest()[:16]


def split(secret: bytes, threshold: int, count: int) -> Split:
    import shamir_mnemonic
    from shamir_mnemonic.share import Share

    if not 2 <= threshold <= count <= MAX_SHARES:
        raise QTSPError(Kind.POLICY, f"a quorum is M of N with 2 <= M <= N <= {MAX_SHARES}; got {threshold} of {count}")
    groups = shamir_mnemonic.generate_mnemonics(1, [(threshold, count)], secret, b"", extendable=False,
                                                iteration_exponent=ITERATION_EXPONENT)
    shares = groups[0]
    return Split(Share.from_mnemonic(shares[0]).identifier, threshold, shares)


def parse_share(words: str, who: str, identifier: int) -> tuple[int, str]:
    """(member index, normalised mnemonic); refuses a mistyped share or one from another backup."""
    from shamir_mnemonic.share import Share
    from shamir_mnemonic.utils import MnemonicError

    normalised = " ".join(words.lower().split())
    try:
        share = Share.from_mnemonic(normalised)
    except MnemonicError as exc:
        raise QTSPError(Kind.MALFORMED, f"the share of {who} is mistyped or damaged ({exc}); nothing was restored") from None
    if share.identifier != identifier:
        raise QTSPError(Kind.POLICY, f"the share of {who} belongs to another backup (identifier {share.identifier}, "
                                     f"this backup is {identifier}); nothing was restored")
    return share.index, normalised


def combine(shares: Sequence[tuple[str, str]], identifier: int, threshold: int, expected_kcv: str) -> bytes:
    """The secret from ``(custodian, words)`` pairs, after checking each share and the count."""
    import shamir_mnemonic
    from shamir_mnemonic.utils import MnemonicError

    seen: dict[int, str] = {}
    mnemonics = []
    for who, words in shares:
        index, normalised = parse_share(words, who, identifier)
        if index in seen:
            raise QTSPError(Kind.POLICY, f"{who} and {seen[index]} brought the same share; nothing was restored")
        seen[index] = who
        mnemonics.append(normalised)
    if len(mnemonics) < threshold:
        raise QTSPError(Kind.POLICY, f"{len(mnemonics)} shares given, {threshold} are needed; nothing was restored")
    try:
        secret = shamir_mnemonic.combine_mnemonics(mnemonics[:threshold], b"")
    except MnemonicError as exc:
        raise QTSPError(Kind.POLICY, f"the shares do not combine: {exc}; nothing was restored") from None
    if not hmac.compare_digest(kcv(secret), expected_kcv):
        raise QTSPError(Kind.INTEGRITY, "the shares do not reconstruct this backup's secret (check value differs)")
    return secret
