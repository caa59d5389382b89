"""The profile rules we check ourselves, each tied to the clause and edition that states it.

pkilint brings its own rules (its finding codes name their clause, e.g.
``etsi.en_319_412_5.qcs-5.01...``); this table is for the checks pkilint does not cover or lags
behind (``qtsp/core/checks.py``) and for the rules that change by date (the CA/B TLS validity
schedule). A finding's message cites its rule, so a reader can open the document at the clause.

Where an edition changes a rule, the rule carries the date from which it applies (``effective``,
compared with the certificate's notBefore) and the rows of the old and the new edition both stay
in the table: time travel (``qtsp --at``) shows the change. ``qtsp profiles show`` prints this
table (``cli/commands_profiles.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .validity import BR_TLS_SCHEDULE, NON_BROWSER_MAX_DAYS

UTC = dt.timezone.utc


@dataclass(frozen=True)
class Source:
    document: str
    edition: str

    def __str__(self) -> str:
        return f"{self.document} {self.edition}"


# The editions this project is built against (2026). Where one is revised, add the new Source and new
# rows with ``effective`` set, rather than editing the old rows.
TS_119_495 = Source("ETSI TS 119 495", "V1.8.1")
EN_319_412_1 = Source("ETSI EN 319 412-1", "V1.5.1 (2023-09)")
EN_319_412_3 = Source("ETSI EN 319 412-3", "V1.3.1 (2023-09)")
EN_319_412_4 = Source("ETSI EN 319 412-4", "V1.3.1 (2023-09)")
EN_319_412_5 = Source("ETSI EN 319 412-5", "V2.6.1")  # the edition current in 2026 (shared reference)
RFC_6960 = Source("IETF RFC 6960", "(2013-06)")
CABF_BR = Source("CA/Browser Forum TLS Baseline Requirements", "v2.2.6")  # SC-081 validity schedule in 6.3.2
TS_119_411_5 = Source("ETSI TS 119 411-5", "V2.1.1")
CHROME_ROOT_POLICY = Source("Chrome Root Program Policy", "Version 1.6 (2025-02-15)")

# Which certificates a rule is about: profile tags (qtsp/core/profiles.py) and kinds.
QUALIFIED, WEBSITE, SEAL, PSD2, OCSP_SIGNER = "qualified", "website", "seal", "psd2", "ocsp-responder"
BROWSER_QWAC, NON_BROWSER_QWAC = "browser-qwac", "non-browser-qwac"  # the two QWAC hierarchies
TWO_QWAC = "2-qwac"  # TS 119 411-5 V2.1.1 4.2: signs TLS certificate bindings (qtsp/core/two_qwac.py)


@dataclass(frozen=True)
class Rule:
    code: str
    source: Source
    clause: str
    text: str
    applies_to: frozenset[str]
    effective: dt.datetime | None = None  # applies to certificates whose notBefore is at or after this
    until: dt.datetime | None = None  # ... and before this (the next edition's row takes over)
    max_days: int | None = None  # a validity rule's limit

    @property
    def cite(self) -> str:
        return f"{self.source} clause {self.clause}"

    def in_force(self, not_before: dt.datetime) -> bool:
        return (self.effective is None or not_before >= self.effective) and (self.until is None or not_before < self.until)


def _r(code: str, source: Source, clause: str, text: str, *applies_to: str) -> Rule:
    return Rule(code, source, clause, text, frozenset(applies_to))


RULES: tuple[Rule, ...] = (
    _r("qtsp.qc.critical", EN_319_412_5, "4.1 (QCS-4.1-02)", "the qcStatements extension is not critical", QUALIFIED),
    _r("qtsp.qc.malformed", EN_319_412_5, "4.1", "qcStatements decodes as the ASN.1 module of annex B says", QUALIFIED),
    _r("qtsp.qc.compliance_missing", EN_319_412_5, "4.2.1 and table 2 (QCS-5-01)",
       "an EU qualified certificate carries QcCompliance", QUALIFIED),
    _r("qtsp.qc.sscd", EN_319_412_5, "4.2.2 and table 2 (QCS-5-01)",
       "QcSSCD exactly when the private key is in a QSCD (QCP-l-qscd seals); never on a website certificate",
       QUALIFIED),
    _r("qtsp.qc.type", EN_319_412_5, "4.2.3", "exactly one QcType, the one of the certificate's kind (web, eseal)",
       QUALIFIED),
    _r("qtsp.qc.cc_legislation", EN_319_412_5, "4.2.4 and table 2 (QCS-5-01)",
       "no QcCClegislation on an EU qualified certificate", QUALIFIED),
    _r("qtsp.qc.pds", EN_319_412_5, "4.3.4", "QcPDS with at least one English PDS, on https", QUALIFIED),
    _r("qtsp.qc.semantics", EN_319_412_1, "5.1.4",
       "the legal person semantics identifier (0.4.0.194121.1.2) in a pkixQCSyntax-v2 statement", QUALIFIED),
    _r("qtsp.psd2.missing", TS_119_495, "5.1", "the PSD2 QCStatement (roles of the PSP, NCAName, NCAId)", PSD2),
    _r("qtsp.psd2.org_id", TS_119_495, "5.2.1",
       "exactly one organizationIdentifier, PSD + country + '-' + NCAId + '-' + authorisation number", PSD2),
    _r("qtsp.psd2.nca_id_mismatch", TS_119_495, "5.2.1 and 5.2.3",
       "the NCAId of the PSD2 statement agrees with the one in organizationIdentifier", PSD2),
    _r("qtsp.seal.qcp_w_psd2", TS_119_495, "5.3", "QCP-w-psd2 only on website certificates, never on a seal", SEAL),
    _r("qtsp.seal.server_auth", EN_319_412_3, "4.1", "a seal (legal person certificate) carries no serverAuth EKU",
       SEAL),
    _r("qtsp.policies", EN_319_412_5, "5.2 (QCS-5.2-2)",
       "the certificate policies are exactly the profile's (QEVCP-w/QNCP-w + QCP-w-psd2 on QWACs, QCP-l[-qscd] on "
       "seals)", QUALIFIED),
    _r("qtsp.browser.eku", CHROME_ROOT_POLICY, "3.2.2 (4.2.2 from Version 1.7)",
       "a subscriber certificate of a hierarchy in the Chrome Root Store, issued from 2026-06-15, asserts "
       "id-kp-serverAuth only: browser QWACs come from a root dedicated to TLS server authentication", BROWSER_QWAC),
    _r("qtsp.non_browser.eku", TS_119_495, "5.3 (note 3)",
       "a mutual-TLS QWAC asserts id-kp-clientAuth (with id-kp-serverAuth if it also serves), from the non-browser "
       "hierarchy, whose root no browser root program trusts", NON_BROWSER_QWAC),
    Rule("qtsp.non_browser.validity", CABF_BR, "6.3.2 (as before ballot SC-081)",
         f"a non-browser QWAC is valid at most {NON_BROWSER_MAX_DAYS} days (the sandbox's qwac_mtls_validity_days, "
         "never more): the SC-081 schedule binds browser-trusted hierarchies only", frozenset({NON_BROWSER_QWAC}),
         max_days=NON_BROWSER_MAX_DAYS),
    _r("qtsp.two_qwac.eku", TS_119_411_5, "4.2.2",
       "a 2-QWAC asserts id-kp-tls-binding (0.4.0.194115.1.0) as its only extendedKeyUsage", TWO_QWAC),
    _r("qtsp.two_qwac.policy", TS_119_411_5, "4.2.1",
       "a 2-QWAC is issued under QNCP-w-gen (0.4.0.194112.1.6), with no CA/B Forum TLS policy OID", TWO_QWAC),
    _r("qtsp.two_qwac.key", TS_119_411_5, "Annex B",
       "the 2-QWAC key can sign a binding browsers verify: P-256 (ES256) or RSA (RS256/PS256)", TWO_QWAC),
    _r("qtsp.ocsp.eku", RFC_6960, "4.2.2.2", "a delegated OCSP responder has id-kp-OCSPSigning as its only EKU",
       OCSP_SIGNER),
    _r("qtsp.ocsp.nocheck", RFC_6960, "4.2.2.2.1", "id-pkix-ocsp-nocheck, value NULL (05 00)", OCSP_SIGNER),
)


def _validity_rules() -> tuple[Rule, ...]:
    """CA/B BR 6.3.2: the longest TLS subscriber certificate by issuance date (a row per period)."""
    rows = sorted(BR_TLS_SCHEDULE)  # oldest first
    out = []
    for index, (start, days) in enumerate(rows):
        until = rows[index + 1][0] if index + 1 < len(rows) else None
        effective = None if start == dt.datetime.min.replace(tzinfo=UTC) else start
        since = "" if effective is None else f" from {effective:%Y-%m-%d}"
        out.append(Rule(f"qtsp.validity.tls_{days}_days", CABF_BR, "6.3.2",
                        f"a TLS subscriber certificate (browser QWAC) is valid at most {days} days{since}",
                        frozenset({BROWSER_QWAC}), effective, until, days))
    return tuple(out)


VALIDITY_RULES = _validity_rules()
ALL_RULES: tuple[Rule, ...] = RULES + VALIDITY_RULES
BY_CODE: dict[str, Rule] = {rule.code: rule for rule in ALL_RULES}


def rule(code: str) -> Rule:
    return BY_CODE[code]


def problem(code: str, detail: str | None = None) -> tuple[str, str]:
    """A finding of rule ``code``: its text (or ``detail``), citing clause and edition."""
    found = BY_CODE[code]
    return code, f"{detail or found.text} ({found.cite})"


def tls_validity_rule(not_before: dt.datetime) -> Rule:
    """The validity rule in force for a TLS certificate with this notBefore."""
    for candidate in VALIDITY_RULES:
        if candidate.in_force(not_before):
            return candidate
    raise AssertionError("the validity rules cover every date")  # the first row has no start


def validity_rule(tags: frozenset[str] | set[str], not_before: dt.datetime) -> Rule | None:
    """The validity rule for a certificate with these tags and this notBefore (None: its profile's own days)."""
    if NON_BROWSER_QWAC in tags:
        return BY_CODE["qtsp.non_browser.validity"]
    if BROWSER_QWAC in tags or WEBSITE in tags:
        return tls_validity_rule(not_before)
    return None


def for_tags(tags: frozenset[str] | set[str], at: dt.datetime) -> list[Rule]:
    """The rules that apply to a certificate with these tags issued at ``at``."""
    return [r for r in ALL_RULES if r.applies_to & tags and r.in_force(at)]
