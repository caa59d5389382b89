"""``--model`` for commands that judge certificates (``qtsp validate``): the bank model whose reasons decide
(``qtsp.relying_party.models``). Two pieces, so that wiring it in is two lines:

    @model_option                       # on the command
    accepted = apply_model(data, verdict, model)   # after validate(): sets verdict/model/deciding in data

The model names load with the relying-party package when first needed, not at import (``qtsp --help``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from .lazy import LazyChoice


def _names() -> Iterable[str]:
    from qtsp.relying_party.models import MODEL_NAMES

    return MODEL_NAMES


def model_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--model", "model", type=LazyChoice(_names), default="strict", show_default=True,
                        help="the bank model that decides: strict (every finding), chain-only (path and expiry), "
                             "chain+revocation, psd2-role (chain and PSD2 roles); see docs/lint.md")(func)


def apply_model(data: dict[str, Any], verdict: Any, model: str) -> bool:
    """Judge ``verdict`` under ``model`` and record it in ``data`` (the command's JSON): ``verdict``
    accept|reject as the model sees it, ``model``, and ``deciding`` (the reason or finding that decided, or
    None). Every reason stays in ``data`` as the validator reported it. Returns whether the model accepts."""
    from qtsp.relying_party.models import judge

    accepted, deciding = judge(verdict, model)
    data["model"] = model
    data["verdict"] = "accept" if accepted else "reject"
    if deciding is None:
        data["deciding"] = None
    elif hasattr(deciding, "as_dict"):
        data["deciding"] = deciding.as_dict()
    else:
        data["deciding"] = {"code": deciding.code, "message": deciding.message}
    return accepted
