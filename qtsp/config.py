"""Configuration: ``<data dir>/qtsp.toml``, every key optional, validated when loaded.

``qtsp init --config FILE`` copies FILE into the data dir; otherwise the defaults below
are written there so an operator can see and edit them.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .core.errors import Kind, QTSPError
from .core.keys import CA_KEY_TYPES, KEY_TYPES, KeyType
from .core.names import check_country, parse_org_id
from .core.qcstatements import check_pds
from .core.validity import NON_BROWSER_MAX_DAYS

DATA_DIR_ENV = "QTSP_DATA_DIR"
DATABASE_URL_ENV = "QTSP_DATABASE_URL"
CONFIG_NAME = "qtsp.toml"
DEFAULT_PORT = 8080
DEFAULT_BASE_URL = f"http://127.0.0.1:{DEFAULT_PORT}"


@dataclass(frozen=True)
class CAConfig:
    common_name: str
    validity_days: int


@dataclass(frozen=True)
class Config:
    # The QTSP's own identity, as it appears in every CA subject.
    organization: str = "qtsp Sandbox Trust Services"
    country: str = "BE"
    organization_identifier: str = "NTRBE-0000000000"
    # The public base URL: where certificates say their issuer's certificate, OCSP responder and
    # CRLs live, and where the Trusted List points. The one setting that decides it; `qtsp sandbox
    # --host/--port` and `qtsp init --base-url` write it, and `qtsp serve` listens on its port unless
    # told otherwise. Loopback by default, so that a URL taken from a certificate works on a machine
    # without DNS (qtsp/lint.py waives pkilint's internal-name finding for our own loopback URLs only);
    # set a public host name for a sandbox that others reach.
    base_url: str = DEFAULT_BASE_URL
    pds: tuple[tuple[str, str], ...] = (("https://qtsp.localtest.me/pds/pds-en.pdf", "en"),)
    key_backend: str = "file"  # file | vault-transit
    vault_key_prefix: str = "qtsp-"  # Transit key names: <prefix><ca id>; init makes it unique per sandbox
    ca_key_type: KeyType = KeyType.ECDSA_P384  # text in the file, read as a KeyType when loaded
    ocsp_key_type: KeyType = KeyType.ECDSA_P256
    root: CAConfig = CAConfig("qtsp Sandbox Root CA", 20 * 365)
    qwac_ca: CAConfig = CAConfig("qtsp Sandbox PSD2 QWAC CA", 10 * 365)
    qseal_ca: CAConfig = CAConfig("qtsp Sandbox PSD2 QSealC CA", 10 * 365)
    # The browser QWAC hierarchy (Chrome Root Program Policy v1.6 3.2: dedicated to TLS server
    # authentication): its own root and issuing CA, apart from the root above, which keeps the non-browser
    # (mutual-TLS) QWAC CA and the QSealC CA. docs/certificates.md, "Two QWAC hierarchies".
    browser_root: CAConfig = CAConfig("qtsp Sandbox Browser TLS Root CA", 20 * 365)
    qwac_browser_ca: CAConfig = CAConfig("qtsp Sandbox PSD2 QWAC Browser CA", 10 * 365)
    # Validity of non-browser (mutual-TLS) QWACs, at most 398 days; browser QWACs follow the CA/B schedule.
    qwac_mtls_validity_days: int = NON_BROWSER_MAX_DAYS
    ocsp_validity_days: int = 365
    qsealc_validity_days: int = 365
    subscriber_key_type: KeyType = KeyType.ECDSA_P256
    # Publication (BR 4.9.7, 4.9.10): OCSP 8 h .. 10 days, subscriber CRLs <= 10 days, ARL <= 12 months.
    ocsp_validity_hours: int = 96
    ocsp_max_age_seconds: int = 600  # Cache-Control max-age cap: how stale a cache in front may be
    crl_validity_hours: int = 7 * 24
    arl_validity_days: int = 365
    crl_debounce_seconds: float = 2.0
    # Rotation policies (executed by the scheduler and by `qtsp keys rotate`): 0 turns one off.
    ocsp_key_rotation_days: int = 7
    # NCA requests (TS 119 495 6.2.6): how far issued-at may be from now, either way.
    nca_request_window_seconds: int = 300
    ca_rollover_days: int = 0
    # The simulator (issue 7). Off by default: a production-like sandbox never answers "as of" another
    # time. With time_travel on, the service honours an X-QTSP-Time request header (sandbox only).
    time_travel: bool = False
    simulator_max_delay_seconds: float = 10.0  # the longest a "slow" responder behaviour may stall
    trusted_list_validity_days: int = 30  # NextUpdate of the sandbox Trusted List (TS 119 612: <= 6 months)
    # The audit chain's signed heads (qtsp/services/audit.py): the key that signs them, one the database
    # does not hold (empty: "audit-anchor" in key_backend; or a reference such as pkcs11:token=T;object=L
    # to a key made on an HSM), and the append-only export they go to (relative to the data dir).
    audit_anchor_key: str = ""
    audit_anchor_export: str = "audit/anchors.jsonl"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_country(self.country)
        parse_org_id(self.organization_identifier)
        parts = urlsplit(self.base_url)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise QTSPError(
                Kind.MALFORMED,
                f"base_url must be a plain http://host[:port] URL (BR 7.1.2.7.7: AIA and CRL over http): {self.base_url!r}",
            )
        if parts.hostname == "localhost":
            raise QTSPError(Kind.MALFORMED, "base_url: use http://127.0.0.1[:port] rather than localhost (pkilint "
                            "refuses 'localhost' as URI syntax; the loopback address works everywhere)")
        check_pds(self.pds)
        if self.key_backend not in ("file", "vault-transit"):
            raise QTSPError(Kind.MALFORMED, f"key_backend must be file or vault-transit, not {self.key_backend!r}")
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,31}", self.vault_key_prefix):
            raise QTSPError(Kind.MALFORMED, "vault_key_prefix: lower-case letters, digits, '.', '_', '-' (1-32)")
        if not 10 <= self.nca_request_window_seconds <= 3600:
            raise QTSPError(Kind.POLICY, "nca_request_window_seconds must be 10-3600")
        if not 0 <= self.ocsp_key_rotation_days <= 365 or not 0 <= self.ca_rollover_days <= 20 * 365:
            raise QTSPError(Kind.POLICY, "rotation periods: ocsp_key_rotation_days 0-365, ca_rollover_days 0-7300")
        if self.ca_key_type not in CA_KEY_TYPES:
            raise QTSPError(Kind.POLICY, f"ca_key_type must be one of {', '.join(CA_KEY_TYPES)}")
        for name in ("ocsp_key_type", "subscriber_key_type"):
            if getattr(self, name) not in KEY_TYPES or getattr(self, name) == "ed25519":
                raise QTSPError(Kind.POLICY, f"{name} must be one of {', '.join(CA_KEY_TYPES + ('rsa-2048',))}")
        for name in ("ca_key_type", "ocsp_key_type", "subscriber_key_type"):
            object.__setattr__(self, name, KeyType(getattr(self, name)))
        for ca in (self.root, self.qwac_ca, self.qseal_ca, self.browser_root, self.qwac_browser_ca):
            if not 1 <= len(ca.common_name) <= 64:
                raise QTSPError(Kind.MALFORMED, "CA common names are 1-64 characters")
        for root in (self.root, self.browser_root):
            if not 8 * 365 <= root.validity_days <= 25 * 366:
                raise QTSPError(Kind.POLICY, "root validity must be 8-25 years (BR 6.3.2)")
        for days, what in ((self.qwac_ca.validity_days, "qwac_ca"), (self.qseal_ca.validity_days, "qseal_ca")):
            if not 1 <= days < self.root.validity_days:
                raise QTSPError(Kind.POLICY, f"{what} validity must be shorter than the root's")
        if not 1 <= self.qwac_browser_ca.validity_days < self.browser_root.validity_days:
            raise QTSPError(Kind.POLICY, "qwac_browser_ca validity must be shorter than browser_root's")
        if not 1 <= self.qwac_mtls_validity_days <= NON_BROWSER_MAX_DAYS:
            raise QTSPError(Kind.POLICY, f"qwac_mtls_validity_days must be 1-{NON_BROWSER_MAX_DAYS} (non-browser QWACs; "
                            "browser QWACs follow the CA/B schedule)")
        if not 1 <= self.ocsp_validity_days <= 3 * 365:
            raise QTSPError(Kind.POLICY, "ocsp_validity_days must be 1-1095")
        if not 8 <= self.ocsp_validity_hours <= 240:
            raise QTSPError(Kind.POLICY, "ocsp_validity_hours must be 8-240 (BR 4.9.10)")
        if not 0 <= self.ocsp_max_age_seconds <= 86400:
            raise QTSPError(Kind.POLICY, "ocsp_max_age_seconds must be 0-86400")
        if not 1 <= self.crl_validity_hours <= 240:
            raise QTSPError(Kind.POLICY, "crl_validity_hours must be 1-240 (BR 4.9.7: at most 10 days)")
        if not 1 <= self.arl_validity_days <= 365:
            raise QTSPError(Kind.POLICY, "arl_validity_days must be 1-365 (BR 4.9.7: at most 12 months)")
        if not 0 <= self.crl_debounce_seconds <= 3600:
            raise QTSPError(Kind.POLICY, "crl_debounce_seconds must be 0-3600")
        if not isinstance(self.time_travel, bool):
            raise QTSPError(Kind.MALFORMED, "time_travel must be true or false")
        if not 0 <= self.simulator_max_delay_seconds <= 60:
            raise QTSPError(Kind.POLICY, "simulator_max_delay_seconds must be 0-60")
        if not 1 <= self.trusted_list_validity_days <= 183:
            raise QTSPError(Kind.POLICY, "trusted_list_validity_days must be 1-183 (TS 119 612: at most 6 months)")
        if not 1 <= self.qsealc_validity_days <= 3 * 365:
            raise QTSPError(Kind.POLICY, "qsealc_validity_days must be 1-1095")
        if self.audit_anchor_key and not re.fullmatch(r"(file|vault-transit|pkcs11):[^\s]{1,200}", self.audit_anchor_key):
            raise QTSPError(Kind.MALFORMED, "audit_anchor_key must be a key reference (file:, vault-transit:, pkcs11:) "
                            "or empty")
        if not self.audit_anchor_export or "\0" in self.audit_anchor_export:
            raise QTSPError(Kind.MALFORMED, "audit_anchor_export must name a file")

    @property
    def base(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def service_port(self) -> int:
        """The port the base URL names (80 when it names none)."""
        return urlsplit(self.base_url).port or 80

    @property
    def service_host(self) -> str:
        return urlsplit(self.base_url).hostname or "127.0.0.1"

    def ca_issuers_url(self, ca_id: str) -> str:
        return f"{self.base}/ca/{ca_id}.der"

    def crl_url(self, ca_id: str) -> str:
        return f"{self.base}/crl/{ca_id}.crl"

    @property
    def ocsp_url(self) -> str:
        return f"{self.base}/ocsp"

    @property
    def trusted_list_url(self) -> str:
        return f"{self.base}/tl.xml"


_CA_KEYS = ("root", "qwac_ca", "qseal_ca", "browser_root", "qwac_browser_ca")


def from_mapping(raw: dict[str, Any]) -> Config:
    known = {f.name for f in fields(Config)} - {"extra"}
    unknown = set(raw) - known
    if unknown:
        raise QTSPError(Kind.MALFORMED, f"unknown configuration keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(raw)
    defaults = Config()
    try:
        for key in _CA_KEYS:
            if key in values:
                sub = dict(values[key])
                bad = set(sub) - {"common_name", "validity_days"}
                if bad:
                    raise QTSPError(Kind.MALFORMED, f"unknown keys in [{key}]: {', '.join(sorted(bad))}")
                base = getattr(defaults, key)
                values[key] = CAConfig(str(sub.get("common_name", base.common_name)), int(sub.get("validity_days", base.validity_days)))
        if "pds" in values:
            for entry in values["pds"]:
                bad = set(entry) - {"url", "language"}
                if bad:  # e.g. a key appended at the end of the file lands in the last [[pds]] table
                    raise QTSPError(Kind.MALFORMED, f"unknown keys in [[pds]]: {', '.join(sorted(bad))} (top-level keys "
                                    "go above the first [table] in the file)")
            values["pds"] = tuple((str(entry["url"]), str(entry["language"])) for entry in values["pds"])
        return Config(**values)
    except (TypeError, ValueError, KeyError) as exc:
        raise QTSPError(Kind.MALFORMED, f"bad configuration value: {exc}") from None


def load(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise QTSPError(Kind.NOT_FOUND, f"no configuration at {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise QTSPError(Kind.MALFORMED, f"{path}: not valid TOML: {exc}") from None
    return from_mapping(raw)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def render(config: Config) -> str:
    """The configuration as TOML (what ``qtsp init`` writes into the data dir)."""
    data = asdict(config)
    data.pop("extra")
    lines = ["# qtsp configuration; every key is optional (see README, 'Configuration').", ""]
    tables = []
    for key, value in data.items():
        if key in _CA_KEYS:
            tables.append((key, value))
        elif key == "pds":
            continue
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    lines.append("")
    for key, value in tables:
        lines.append(f"[{key}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        lines.append("")
    for url, lang in config.pds:
        lines += ["[[pds]]", f"url = {_toml_value(url)}", f"language = {_toml_value(lang)}", ""]
    return "\n".join(lines)


def base_url_for(host: str, port: int) -> str:
    """The base URL of a service listening on host:port. A wildcard listen address is reached
    through loopback on this machine; an IPv6 literal goes in brackets."""
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}" if port != 80 else f"http://{host}"


def resolve_data_dir(option: str | None) -> Path:
    return Path(option or os.environ.get(DATA_DIR_ENV) or "qtsp-data")


def database_url(data_dir: Path) -> str:
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{data_dir.resolve() / 'qtsp.db'}"
