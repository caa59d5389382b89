"""The portal's blueprint: templates and static files of its own, under /portal."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("portal", __name__, url_prefix="/portal", template_folder="templates", static_folder="static")
