"""Where each profile rule is written: document, edition, clause. A finding's ``source`` is one of these.

The editions are those of ``qtsp/core/rules.py`` (the table the issuing side is built against), plus the
documents only a relying party needs (RFC 5280's path validation, the EV Guidelines, TS 119 411-5). The
requirement identifiers in brackets (GEN-5.2.2-1, QCS-4.1-02, ...) are the standards' own, so that a reader
can search the document for them.
"""

from __future__ import annotations

from ...core.rules import CABF_BR, EN_319_412_1, EN_319_412_3, EN_319_412_4, EN_319_412_5, TS_119_495

__all__ = ["BR", "EN_411_2", "EN_412_1", "EN_412_2", "EN_412_3", "EN_412_4", "EN_412_5", "EVG", "RFC_5280", "RFC_6960",
           "TS_411_5", "TS_495", "TS_612", "cite"]

TS_495 = str(TS_119_495)  # ETSI TS 119 495 V1.8.1
EN_412_1 = str(EN_319_412_1)
EN_412_2 = "ETSI EN 319 412-2 V2.3.1 (2023-09)"
EN_412_3 = str(EN_319_412_3)
EN_412_4 = str(EN_319_412_4)
EN_412_5 = str(EN_319_412_5)
EN_411_2 = "ETSI EN 319 411-2 V2.5.1 (2023-10)"
TS_411_5 = "ETSI TS 119 411-5 V2.1.1 (2025-02)"
TS_612 = "ETSI TS 119 612 V2.3.1 (2024-11)"
BR = str(CABF_BR)
EVG = "CA/Browser Forum EV Guidelines 2.0.2"
RFC_5280 = "IETF RFC 5280"
RFC_6960 = "IETF RFC 6960"


def cite(document: str, clause: str) -> str:
    """``"ETSI TS 119 495 V1.8.1 5.2.2 (GEN-5.2.2-1)"``: what a finding's ``source`` says."""
    return f"{document} {clause}"
