"""CRLs and the ARL at the URLs certificates carry (filled in by the CRL work)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("crl", __name__)
