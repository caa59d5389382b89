"""EN 319 412-5 QCStatements, assembled into the qcStatements extension (non-critical)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from asn1crypto import core
from cryptography import x509

from . import oids
from .errors import malformed, policy
from .psd2 import PSD2Attributes, QCStatement, encode_statement
from .psd2 import QCStatements as QCStatements


class _PdsLocation(core.Sequence):
    # EN 319 412-5 4.3.4: url IA5String (https), language PrintableString (ISO 639-1)
    _fields = [("url", core.IA5String), ("language", core.PrintableString)]


class _PdsLocations(core.SequenceOf):
    _child_spec = _PdsLocation


class _QcType(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


class _SemanticsInformation(core.Sequence):
    # RFC 3739 3.2.6.1; nameRegistrationAuthorities omitted for the Legal identifier.
    _fields = [("semantics_identifier", core.ObjectIdentifier, {"optional": True})]


@dataclass(frozen=True)
class QcSpec:
    """Which QCStatements a certificate gets; order follows EN 319 412-5 clause numbering."""

    qc_type: str  # oids.QCT_WEB or oids.QCT_ESEAL
    pds: tuple[tuple[str, str], ...]  # (url, language)
    psd2: PSD2Attributes
    sscd: bool = False
    retention_years: int | None = None

    def __post_init__(self) -> None:
        if self.qc_type not in (oids.QCT_WEB, oids.QCT_ESEAL, oids.QCT_ESIGN):
            raise policy(f"unknown QcType {self.qc_type}")
        check_pds(self.pds)
        if self.sscd and self.qc_type == oids.QCT_WEB:
            raise policy("QcSSCD must not appear on a QWAC (EN 319 412-4)")


def check_pds(pds: tuple[tuple[str, str], ...]) -> None:
    if not pds:
        raise policy("QcPDS needs at least one entry (EN 319 412-5 QCS-5-01)")
    for url, lang in pds:
        if not url.startswith("https://") or not url.isascii() or len(url) > 1024:
            raise policy(f"QcPDS URL must be https and ASCII: {url!r} (EN 319 412-5 4.3.4)")
        if len(lang) != 2 or not lang.isalpha() or not lang.islower():
            raise policy(f"QcPDS language must be two lower-case letters (ISO 639-1): {lang!r}")
    if not any(lang == "en" for _, lang in pds):
        raise policy("QcPDS needs an English entry (EN 319 412-5 QCS-5-02)")


def build_statements(spec: QcSpec) -> QCStatements:
    statements = [QCStatement({"statement_id": oids.QCS_COMPLIANCE})]
    if spec.retention_years is not None:
        statements.append(
            QCStatement({"statement_id": oids.QCS_RETENTION_PERIOD, "statement_info": core.Integer(spec.retention_years)})
        )
    if spec.sscd:
        statements.append(QCStatement({"statement_id": oids.QCS_SSCD}))
    statements.append(
        QCStatement(
            {
                "statement_id": oids.QCS_PDS,
                "statement_info": _PdsLocations([{"url": url, "language": lang} for url, lang in spec.pds]),
            }
        )
    )
    statements.append(QCStatement({"statement_id": oids.QCS_TYPE, "statement_info": _QcType([spec.qc_type])}))
    statements.append(
        QCStatement(
            {
                "statement_id": oids.QCS_PKIX_SYNTAX_V2,
                "statement_info": _SemanticsInformation({"semantics_identifier": oids.SEMANTICS_LEGAL}),
            }
        )
    )
    statements.append(encode_statement(spec.psd2))
    return QCStatements(statements)


@functools.lru_cache(maxsize=256)
def qc_statements_extension(spec: QcSpec) -> x509.UnrecognizedExtension:
    # Cached: a spec is frozen, and the extension it makes immutable. Encoding it with asn1crypto was
    # ~0.8 ms of every ~1 ms template; a bulk run issues many certificates for one spec.
    return x509.UnrecognizedExtension(oids.QC_STATEMENTS, build_statements(spec).dump())


def read_statements(cert: x509.Certificate) -> dict[str, QCStatement]:
    """The certificate's QCStatements by statementId (raises if absent or duplicated)."""
    try:
        ext = cert.extensions.get_extension_for_oid(oids.QC_STATEMENTS)
    except x509.ExtensionNotFound:
        raise malformed("certificate has no qcStatements extension") from None
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()
    result: dict[str, QCStatement] = {}
    for statement in QCStatements.load(raw):
        sid = statement["statement_id"].dotted
        if sid in result:
            raise malformed(f"QCStatement {sid} appears twice")
        result[sid] = statement
    return result


def qc_types(statement: QCStatement) -> list[str]:
    return [oid.dotted for oid in _QcType.load(statement["statement_info"].dump())]


def pds_locations(statement: QCStatement) -> list[tuple[str, str]]:
    return [(loc["url"].native, loc["language"].native) for loc in _PdsLocations.load(statement["statement_info"].dump())]


def semantics_identifier(statement: QCStatement) -> str | None:
    info = _SemanticsInformation.load(statement["statement_info"].dump())
    value = info["semantics_identifier"]
    return None if value.native is None else value.dotted
