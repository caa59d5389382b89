"""The part of RFC 8941 (Structured Field Values for HTTP) that RFC 9421 and RFC 9530 need: parsing a
Dictionary whose members are Items or Inner Lists with Parameters, and serialising Inner Lists and Items.

Strict, as RFC 8941 4.2 asks of a parser: anything it does not recognise fails the whole field.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

__all__ = ["Item", "InnerList", "SFVError", "Token", "parse_dictionary", "serialize_inner_list", "serialize_item"]

MAX_FIELD = 16 * 1024


class SFVError(ValueError):
    pass


class Token(str):
    """An sf-token (unquoted), kept apart from an sf-string."""


BareItem = int | float | str | Token | bytes | bool


@dataclass
class Item:
    value: BareItem
    params: dict[str, BareItem] = field(default_factory=dict)


@dataclass
class InnerList:
    items: list[Item]
    params: dict[str, BareItem] = field(default_factory=dict)


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,3})?")


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FIELD:
            raise SFVError(f"field longer than {MAX_FIELD} characters")
        self.s, self.i = text, 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.i += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.i += 1

    def key(self) -> str:
        m = _KEY.match(self.s, self.i)
        if not m:
            raise SFVError(f"a key expected at {self.i}")
        self.i = m.end()
        return m.group(0)

    def bare_item(self) -> BareItem:
        c = self.peek()
        if c == '"':
            return self.string()
        if c == ":":
            end = self.s.find(":", self.i + 1)
            if end < 0:
                raise SFVError("unterminated byte sequence")
            try:
                value = base64.b64decode(self.s[self.i + 1:end], validate=True)
            except ValueError:
                raise SFVError("byte sequence is not base64") from None
            self.i = end + 1
            return value
        if c == "?":
            if self.s[self.i + 1:self.i + 2] not in ("0", "1"):
                raise SFVError("boolean must be ?0 or ?1")
            self.i += 2
            return self.s[self.i - 1] == "1"
        if c == "-" or c.isdigit():
            m = _NUMBER.match(self.s, self.i)
            if not m:
                raise SFVError("bad number")
            self.i = m.end()
            return float(m.group(0)) if m.group(1) else int(m.group(0))
        m = _TOKEN.match(self.s, self.i)
        if m:
            self.i = m.end()
            return Token(m.group(0))
        raise SFVError(f"an item expected at {self.i}")

    def string(self) -> str:
        self.i += 1
        out = []
        while True:
            c = self.peek()
            if not c:
                raise SFVError("unterminated string")
            self.i += 1
            if c == "\\":
                nxt = self.peek()
                if nxt not in ('"', "\\"):
                    raise SFVError("bad escape in string")
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not (0x20 <= ord(c) <= 0x7E):
                raise SFVError("string with a character outside printable ASCII")
            else:
                out.append(c)

    def params(self) -> dict[str, BareItem]:
        params: dict[str, BareItem] = {}
        while self.peek() == ";":
            self.i += 1
            self.skip_sp()
            k = self.key()
            v: BareItem = True
            if self.peek() == "=":
                self.i += 1
                v = self.bare_item()
            params[k] = v
        return params

    def item_or_list(self) -> Item | InnerList:
        if self.peek() == "(":
            self.i += 1
            items: list[Item] = []
            while True:
                self.skip_sp()
                if self.peek() == ")":
                    self.i += 1
                    return InnerList(items, self.params())
                items.append(Item(self.bare_item(), self.params()))
                if self.peek() not in (" ", ")"):
                    raise SFVError("inner list items must be separated by spaces")
        return Item(self.bare_item(), self.params())


def parse_dictionary(text: str) -> dict[str, Item | InnerList]:
    p = _Parser(text.strip(" "))
    out: dict[str, Item | InnerList] = {}
    while p.peek():
        k = p.key()
        if p.peek() == "=":
            p.i += 1
            out[k] = p.item_or_list()
        else:
            out[k] = Item(True, p.params())
        p.skip_ows()
        if not p.peek():
            break
        if p.peek() != ",":
            raise SFVError(f"',' expected at {p.i}")
        p.i += 1
        p.skip_ows()
        if not p.peek():
            raise SFVError("trailing comma")
    return out


def serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}.0"
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Token):
        return str(value)
    if any(not (0x20 <= ord(c) <= 0x7E) for c in value):
        raise SFVError("a string with a character outside printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_params(params: dict[str, BareItem]) -> str:
    return "".join(f";{k}" if v is True else f";{k}={serialize_bare(v)}" for k, v in params.items())


def serialize_item(item: Item) -> str:
    return serialize_bare(item.value) + serialize_params(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    return "(" + " ".join(serialize_item(i) for i in inner.items) + ")" + serialize_params(inner.params)
