"""Object identifiers, each with the clause that defines it."""

from __future__ import annotations

from cryptography.x509 import ObjectIdentifier as OID

# RFC 3739 / EN 319 412-5: the qcStatements extension (non-critical).
QC_STATEMENTS = OID("1.3.6.1.5.5.7.1.3")
# EN 319 412-5 4.2-4.3 (arc 0.4.0.1862.1)
QCS_COMPLIANCE = "0.4.0.1862.1.1"
QCS_LIMIT_VALUE = "0.4.0.1862.1.2"
QCS_RETENTION_PERIOD = "0.4.0.1862.1.3"
QCS_SSCD = "0.4.0.1862.1.4"
QCS_PDS = "0.4.0.1862.1.5"
QCS_TYPE = "0.4.0.1862.1.6"
QCT_ESIGN = "0.4.0.1862.1.6.1"
QCT_ESEAL = "0.4.0.1862.1.6.2"
QCT_WEB = "0.4.0.1862.1.6.3"
QCS_CC_LEGISLATION = "0.4.0.1862.1.7"
# RFC 3739 id-qcs-pkixQCSyntax-v2 and EN 319 412-1 5.1.3 semantics identifier Legal.
QCS_PKIX_SYNTAX_V2 = "1.3.6.1.5.5.7.11.2"
SEMANTICS_LEGAL = "0.4.0.194121.1.2"
# TS 119 495 Annex A
PSD2_STATEMENT = "0.4.0.19495.2"

# CA/B Forum EVG 9.8.2: cabfOrganizationIdentifier
CABF_ORGANIZATION_IDENTIFIER = OID("2.23.140.3.1")

# Certificate policies
CABF_EV = OID("2.23.140.1.1")  # EVG 9.3.4
CABF_OV = OID("2.23.140.1.2.2")
QEVCP_W = OID("0.4.0.194112.1.4")  # EN 319 411-2
QNCP_W = OID("0.4.0.194112.1.5")
QNCP_W_GEN = OID("0.4.0.194112.1.6")  # EN 319 411-2: the 2-QWAC's policy (TS 119 411-5)
QCP_L = OID("0.4.0.194112.1.1")
QCP_L_QSCD = OID("0.4.0.194112.1.3")
QCP_W_PSD2 = OID("0.4.0.19495.3.1")  # TS 119 495 5.3: website certificates only
ANY_POLICY = OID("2.5.29.32.0")

# RFC 6960 4.2.2.2.1 id-pkix-ocsp-nocheck
OCSP_NOCHECK = OID("1.3.6.1.5.5.7.48.1.5")
# RFC 9336 id-kp-documentSigning: the EKU of the seal CA, which keeps it out of TLS.
KP_DOCUMENT_SIGNING = OID("1.3.6.1.5.5.7.3.36")
KP_TLS_BINDING = OID("0.4.0.194115.1.0")  # id-kp-tls-binding (TS 119 411-5): a 2-QWAC's only EKU
