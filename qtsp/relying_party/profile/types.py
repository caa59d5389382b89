"""The certificate types the validator judges, and how a type is inferred when the caller gives none.

Inference, first match wins (docs/validator.md prints this table):

==========================================================  =============
what the certificate says                                   its type
==========================================================  =============
EKU id-kp-tls-binding (0.4.0.194115.1.0)                    2-qwac
EKU id-kp-serverAuth                                        qwac
EKU id-kp-clientAuth (without serverAuth)                   qwac-client
QcType eseal                                                qsealc
QcType web                                                  qwac
policy QNCP-w-gen                                           2-qwac
policy QEVCP-w, QNCP-w, QCP-w-psd2 or a CA/B TLS policy     qwac
policy QCP-l or QCP-l-qscd                                  qsealc
none of these                                               unknown (judged as a qwac, and rejected)
==========================================================  =============

EKUs come first because they are what software enforces: a certificate that a TLS stack would accept as a
server certificate is judged as one, whatever its QcType claims (and the QcType rule then says so).
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.x509.oid import ExtendedKeyUsageOID

from ...core import oids
from ...core.qcstatements import qc_types
from .facts import Facts

__all__ = ["CERTIFICATE_TYPES", "Collect", "QWAC", "QWAC_CLIENT", "SEAL", "TWO_QWAC", "UNKNOWN", "WEBSITE_TYPES",
           "infer_type"]

QWAC, QWAC_CLIENT, SEAL, TWO_QWAC, UNKNOWN = "qwac", "qwac-client", "qsealc", "2-qwac", "unknown"
CERTIFICATE_TYPES = (QWAC, QWAC_CLIENT, SEAL, TWO_QWAC)
WEBSITE_TYPES = frozenset({QWAC, QWAC_CLIENT, TWO_QWAC})
TLS_POLICIES = frozenset({oids.CABF_EV, oids.CABF_OV, oids.QEVCP_W, oids.QNCP_W, oids.QCP_W_PSD2})

# add(rule, source, message, severity="error")
Collect = Callable[..., None]


def infer_type(f: Facts) -> str:
    if f.has_eku(oids.KP_TLS_BINDING):
        return TWO_QWAC
    if f.has_eku(ExtendedKeyUsageOID.SERVER_AUTH):
        return QWAC
    if f.has_eku(ExtendedKeyUsageOID.CLIENT_AUTH):
        return QWAC_CLIENT
    qc_type = f.statement(oids.QCS_TYPE)
    if qc_type is not None:
        try:
            types = qc_types(qc_type)
        except (ValueError, TypeError, KeyError):
            types = []
        if types == [oids.QCT_ESEAL]:
            return SEAL
        if types == [oids.QCT_WEB]:
            return QWAC
    if f.has_policy(oids.QNCP_W_GEN):
        return TWO_QWAC
    if any(f.has_policy(p) for p in TLS_POLICIES):
        return QWAC
    if f.has_policy(oids.QCP_L) or f.has_policy(oids.QCP_L_QSCD):
        return SEAL
    return UNKNOWN
