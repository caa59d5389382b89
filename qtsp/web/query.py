"""Query strings of the API's list endpoints, parsed strictly, and the links to their next page.

Every parameter must be known to the endpoint, given at most once and bounded in length; a bad
one is a 400 problem that names it. Parsers take the text and raise ValueError with what is
wrong; ``parse`` adds the parameter's name.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Mapping

from flask import request, url_for
from werkzeug.datastructures import MultiDict

from ..core.errors import QTSPError
from ..core.instants import parse_instant
from .errors import ApiProblem

Parser = Callable[[str], Any]

DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET = 100, 1000, 2**31 - 1
MAX_ROW_ID = 2**63 - 1
PAGING = ("limit", "offset", "cursor")  # not carried over from one page's link to the next one's filters


def parse(args: MultiDict[str, str], parsers: Mapping[str, Parser]) -> dict[str, Any]:
    """The parameters given, parsed; the ones not given are absent."""
    unknown = sorted(set(args) - set(parsers))
    if unknown:
        names = ", ".join(repr(u)[:80] for u in unknown[:10])
        raise ApiProblem(400, "malformed", f"unknown query parameter(s): {names}; this endpoint takes "
                                           f"{', '.join(parsers) or 'none'}")
    parsed: dict[str, Any] = {}
    for name, parser in parsers.items():
        values = args.getlist(name)
        if len(values) > 1:
            raise ApiProblem(400, "malformed", f"query parameter {name} is given more than once")
        if values:
            try:
                parsed[name] = parser(values[0])
            except ValueError as exc:
                raise ApiProblem(400, "malformed", f"query parameter {name}: {exc}") from None
    return parsed


def integer(low: int, high: int) -> Parser:
    def parser(text: str) -> int:
        if not re.fullmatch(r"[0-9]{1,19}", text) or not low <= int(text) <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return int(text)

    return parser


def one_of(*choices: str) -> Parser:
    def parser(text: str) -> str:
        if text not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return text

    return parser


def text(max_length: int, pattern: str | None = None, what: str = "") -> Parser:
    """1 to ``max_length`` characters; with ``pattern`` (a regex, fully matched), described by ``what``."""

    def parser(value: str) -> str:
        if not 0 < len(value) <= max_length:
            raise ValueError(f"1-{max_length} characters")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise ValueError(what or f"must match {pattern}")
        return value

    return parser


def instant(value: str) -> dt.datetime:
    """A date (that day at 00:00Z) or an ISO 8601 date-time with a zone, as UTC."""
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            value = dt.date.fromisoformat(value).isoformat() + "T00:00Z"
        except ValueError:
            raise ValueError(f"{value!r} is not a date") from None
    try:
        return parse_instant(value)
    except QTSPError as exc:
        raise ValueError(f"a date (2027-06-01) or a date-time with a zone (2027-06-01T12:00Z): {exc.detail}") from None


# --- paging -------------------------------------------------------------------------------------

_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CURSOR_TEXT = re.compile(r"before:([1-9][0-9]{0,18})")


def encode_cursor(row_id: int) -> str:
    """Opaque to clients: where the next page starts (the rows below this id, newest first)."""
    return base64.urlsafe_b64encode(f"before:{row_id}".encode("ascii")).rstrip(b"=").decode("ascii")


def cursor(value: str) -> int:
    if _CURSOR.fullmatch(value):
        try:
            match = _CURSOR_TEXT.fullmatch(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii"))
        except (ValueError, UnicodeError):
            match = None
        if match is not None and int(match.group(1)) <= MAX_ROW_ID:
            return int(match.group(1))
    raise ValueError("not a cursor this API gave out: use the 'next' link of the previous page")


PAGING_PARSERS: dict[str, Parser] = {"limit": integer(1, MAX_LIMIT), "offset": integer(0, MAX_OFFSET)}


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int
    before_id: int | None = None  # keyset paging: only rows with a smaller id

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Page:
        if "cursor" in params and "offset" in params:
            raise ApiProblem(400, "malformed", "query parameters cursor and offset exclude each other: "
                                               "follow the 'next' link, or page by offset")
        return cls(params.get("limit", DEFAULT_LIMIT), params.get("offset", 0), params.get("cursor"))


def next_link(**paging: Any) -> str:
    """This endpoint's URL with the same filters and ``paging`` (limit, and offset or cursor)."""
    filters = {name: value for name, value in request.args.items() if name not in PAGING}
    values: dict[str, Any] = {**filters, **paging}
    return url_for(request.endpoint or "", **values)
