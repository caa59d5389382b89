"""Bank models: how much of the reference validator's verdict a real relying party acts on.

Real banks check less than the standard. A model is the set of the validator's reason codes that make it
reject; everything else the validator found is ignored, as that bank's code would never have looked:

- ``strict``: every error the validator finds (the standard; the default);
- ``chain-only``: path and expiry, what an nginx or Java PKIX gateway with revocation off concludes;
- ``chain+revocation``: the same plus OCSP/CRL status, what the same gateway does with ``ssl_ocsp on``
  or ``PKIXRevocationChecker``;
- ``psd2-role``: the chain plus "a PSD2 statement with a role I recognise", what onboarding code that
  reads the roles and nothing else concludes.

``judge(verdict, model)`` gives accept/reject and the finding that decided: the first of the verdict's
reasons (in the validator's order: time, path, revocation, qualified content, usage) the model counts.
The chain codes are stable (``CHAIN``); so are the revocation and PSD2 ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..core.errors import Kind, QTSPError

__all__ = ["CHAIN", "DEFAULT_MODEL", "MODELS", "MODEL_NAMES", "PSD2_ROLE", "REVOCATION", "Model", "counted", "judge",
           "model"]

CHAIN = frozenset({"expired", "not-yet-valid", "no-path", "bad-signature", "issuer-not-trusted", "ca-invalid",
                   "unknown-critical-extension", "malformed"})
REVOCATION = frozenset({"revoked", "revocation-unknown"})
# "a PSD2 statement with a role I recognise": present, decodable, a role in it, each name its OID's.
PSD2_ROLE = frozenset({"missing-psd2-statement", "psd2-statement-malformed", "psd2-roles-empty", "role-not-authorised",
                       "role-oid-mismatch"})


@dataclass(frozen=True)
class Model:
    name: str
    description: str
    codes: frozenset[str] | None  # the reason codes that reject; None: every error
    checks_revocation: bool  # False: the model never looks at OCSP/CRLs (a caller may skip fetching them)

    def counts(self, code: str) -> bool:
        return self.codes is None or code in self.codes


MODELS: dict[str, Model] = {m.name: m for m in (
    Model("strict", "every finding of the reference validator: the standards (the default)", None, True),
    Model("chain-only", "path to a trusted CA and expiry: an nginx or Java PKIX gateway with revocation off",
          CHAIN, False),
    Model("chain+revocation", "the chain plus OCSP/CRL status: a gateway with ssl_ocsp on or PKIXRevocationChecker",
          CHAIN | REVOCATION, True),
    Model("psd2-role", "the chain plus a PSD2 statement whose roles are read: onboarding code that checks roles "
          "and nothing else", CHAIN | PSD2_ROLE, False),
)}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
DEFAULT_MODEL = "strict"


def model(name_or_model: str | Model) -> Model:
    if isinstance(name_or_model, Model):
        return name_or_model
    try:
        return MODELS[name_or_model]
    except KeyError:
        raise QTSPError(Kind.MALFORMED, f"no bank model {name_or_model!r}; known: {', '.join(MODEL_NAMES)}") from None


def _code(reason: Any) -> str:
    """A verdict's reason (``Reason.code``) or finding (``Finding.rule``)."""
    code = getattr(reason, "code", None) or getattr(reason, "rule", None)
    if not isinstance(code, str):
        raise QTSPError(Kind.MALFORMED, f"not a reason or a finding: {type(reason).__name__}")
    return code


def _is_error(reason: Any) -> bool:
    """Reasons are errors; a finding with a severity rejects only if it is an error (warnings never decide)."""
    return getattr(reason, "severity", "error") == "error"


def counted(reasons: Iterable[Any], chosen: str | Model) -> list[Any]:
    """The reasons ``chosen`` acts on, in the order given."""
    m = model(chosen)
    return [r for r in reasons if _is_error(r) and m.counts(_code(r))]


def judge(verdict: Any, chosen: str | Model = DEFAULT_MODEL) -> tuple[bool, Any | None]:
    """(accepted, the deciding reason or None) of ``verdict`` (a ``validator.Verdict``: its ``reasons``) under
    the model. Accepted when no reason the model counts is there; the deciding reason is the first that is."""
    deciding = counted(verdict.reasons, chosen)
    return (not deciding, deciding[0] if deciding else None)
