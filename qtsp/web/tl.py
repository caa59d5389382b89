"""GET /tl.xml: the sandbox Trusted List (ETSI TS 119 612)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("tl", __name__)
