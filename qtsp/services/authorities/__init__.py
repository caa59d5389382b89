"""A CA's life in one place: made, stored, published, loaded, rolled over, imported.

- ``build``: the QTSP's CA names, keys from the sandbox's backend and their rows, and ``certify``
  (profile template -> lint on a throwaway key -> sign) for every CA and responder certificate;
- ``records``: the one ``insert`` of a CA row (+ key references, responder, audit event), the CA
  files AIA serves, and loading a stored CA with its Signer;
- ``status``: the root's delegated responder, made for a data dir that predates it, and the CA
  certificates registered with their parent (OCSP and CRL status like any certificate);
- ``lifecycle``: ``make_ca`` from a plan (root, issuing, NCA, simulator CAs), responder rotation,
  and rollover to a new generation;
- ``imported``: what key ceremonies made, written with the same ``insert``.

``hierarchy.init_sandbox``, ``keys.rollover_ca``, ``scenario_cas.ensure_cas``, ``nca_identity`` and
``ceremonies.importer`` are the entry points; they call these.
"""

from __future__ import annotations

from .build import (
    BROWSER_ROOT_ID, QWAC_BROWSER_CA_ID, QSEAL_CA_ID, QWAC_CA_ID, ROOT_ID, Issuer, NewCA, Responder, ca_subject, certify, common_name, issuer_info, key_label,
    key_row, make_responder, new_key, responder_name, signer_for,
)
from .imported import from_ceremony, new_store, store_arl, store_hierarchy
from .lifecycle import (
    BROWSER_ROOT_ROLE, QWAC_BROWSER_ROLE, Plan, make_browser_hierarchy, make_ca, make_hierarchy,
)
from .lifecycle import newest_by_role, next_generation_id, rollover, rotate_responder
from .records import (
    LoadedCA, chain, insert, insert_hierarchy, insert_once, is_ca_certificate, load, load_many, publish, register_status,
    revocation_of, rows, store_first_need,
)
from .status import ensure_ca_status, presign_status

__all__ = [
    "BROWSER_ROOT_ID", "BROWSER_ROOT_ROLE", "QWAC_BROWSER_CA_ID", "QWAC_BROWSER_ROLE", "make_browser_hierarchy",
    "QSEAL_CA_ID", "QWAC_CA_ID", "ROOT_ID", "Issuer", "LoadedCA", "NewCA", "Plan", "Responder", "ca_subject", "certify",
    "chain", "common_name", "ensure_ca_status", "from_ceremony", "insert", "insert_hierarchy", "insert_once", "is_ca_certificate", "issuer_info", "key_label",
    "key_row", "load", "load_many", "make_ca", "make_hierarchy", "make_responder", "new_key", "new_store",
    "newest_by_role", "next_generation_id", "presign_status", "publish", "register_status", "responder_name", "revocation_of", "rollover", "rotate_responder", "rows",
    "signer_for", "store_first_need", "store_arl", "store_hierarchy",
]
