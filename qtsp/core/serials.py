"""Certificate serial numbers: positive, 16 octets at most, at least 64 CSPRNG bits (BR 7.1)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from .types import Serial

SERIAL_BITS = 127  # fits in 16 octets with the sign bit clear
MIN_SERIAL = 1 << 64  # so that at least 64 random bits are significant


def new_serial(randbits: Callable[[int], int] = secrets.randbits) -> Serial:
    while True:
        value = randbits(SERIAL_BITS)
        if value >= MIN_SERIAL:
            return Serial(value)
