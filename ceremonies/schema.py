"""The ceremony file: one YAML document per ceremony, checked strictly before anything is made.

After Boulder's ``cmd/ceremony``: a ``ceremony-type`` picks the field set; an unknown field, a
missing one, a value of the wrong type, a duplicated key or an output file that already exists
is refused with its dotted path (``key.backend.token: missing``). Every field carries its
documentation here, and ``field_rows()`` renders it for the README.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import yaml

from qtsp.config import DEFAULT_BASE_URL
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import CA_KEY_TYPES
from qtsp.core.ocsp import CA_REASONS

TYPES = ("root", "intermediate", "ocsp-signer", "crl", "root-rollover", "backup", "restore")
BACKENDS = ("pkcs11", "vault-transit", "file")
LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}(@[1-9][0-9]{0,5})?$")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")


@dataclass(frozen=True)
class F:
    """One field: its kind, whether it is required, its default, and what it means."""

    kind: str  # str | int | bool | time | names | label | id | env | enum | in | out | outdir | map | list | backend
    doc: str
    required: bool = True
    default: Any = None
    choices: tuple[str, ...] = ()
    children: dict[str, F] = field(default_factory=dict)
    pattern: re.Pattern[str] | None = None


def _s(doc: str, **kw: Any) -> F:
    return F("str", doc, **kw)


BACKEND_FIELDS: dict[str, dict[str, F]] = {
    "pkcs11": {
        "module": _s("path of the PKCS#11 module (default: $QTSP_PKCS11_MODULE, else SoftHSM2 where Debian puts it)", required=False),
        "token": F("label", "label of the token (as given to softhsm2-util --init-token --label)"),
        "pin-env": F("env", "environment variable holding the user PIN (asked for interactively if unset)",
                     required=False, default="QTSP_PKCS11_PIN"),
        "so-pin-env": F("env", "environment variable holding the security officer PIN; backup only: the SO marks "
                               "the one-time wrapping key CKA_TRUSTED", required=False),
    },
    "vault-transit": {
        "mount": _s("Transit mount; address and token come from QTSP_VAULT_ADDR / QTSP_VAULT_TOKEN (or AppRole)",
                    required=False, default="transit"),
    },
    "file": {
        "dir": F("in", "directory holding keys/ (encrypted PKCS#8) and secrets/key-passphrase, or use "
                       "$QTSP_KEY_PASSPHRASE; created if missing; best the qtsp data dir that will import it"),
    },
}
BACKEND = F("backend", "where the key lives: a map whose `type` is pkcs11, vault-transit or file, plus that type's fields",
            choices=BACKENDS)
NEW_KEY = F("map", "the key this ceremony generates", children={
    "backend": BACKEND,
    "label": F("label", "key name: PKCS#11 CKA_LABEL, file name under keys/, or Transit key name"),
    "type": F("enum", "key algorithm", choices=CA_KEY_TYPES + ("rsa-2048",)),
    "backup": F("bool", "pkcs11 only: make the key wrappable (never readable) by a key the SO marks trusted, so a "
                        "backup ceremony can wrap it; false: CKA_EXTRACTABLE false for ever", required=False, default=False),
})
EXISTING_KEY = F("map", "an existing key: the one that signs (or is backed up)", children={
    "backend": BACKEND,
    "label": F("label", "key name as it was generated (Transit: `name@version`, default version 1)"),
})
SUBJECT = F("map", "subject of the certificate (BR 7.1.4.2: C, O, organizationIdentifier, CN)", children={
    "common-name": _s("commonName"),
    "organization": _s("organizationName (the QTSP)"),
    "country": _s("countryName, ISO 3166 alpha-2 (quote it: YAML reads NO as false)"),
    "organization-identifier": _s("organizationIdentifier of the QTSP (EN 319 412-1 5.1.4), e.g. NTRBE-0000000000"),
})
PEOPLE = F("map", "who is in the room", children={
    "administrator": _s("the ceremony administrator, who runs the tool"),
    "witnesses": F("names", "witnesses (at least one); each confirms each step in interactive mode"),
    "custodians": F("names", "custodians of the quorum shares (backup: one share each; restore: those who bring them)",
                    required=False, default=[]),
})
_COMMON: dict[str, F] = {
    "ceremony-type": F("enum", "what this ceremony does", choices=TYPES),
    "name": _s("a title for the transcript and the report"),
    "people": PEOPLE,
}
_CERT = {"validity-days": F("int", "validity in days, counted inclusively (RFC 5280 4.1.2.5)")}
_URL = {"base-url": _s("the service's base URL, as in qtsp.toml: AIA caIssuers and CRL URLs point below it",
                       required=False, default=DEFAULT_BASE_URL)}
_TRANSCRIPT = {"transcript": F("out", "the JSON-lines transcript this run writes")}
_SUBJECT_KEY = {
    "key": F("map", "generate the subject key in a backend (exactly one of key, public-key, csr)",
             required=False, children=NEW_KEY.children),
    "public-key": F("in", "PEM public key of a key made elsewhere", required=False),
    "csr": F("in", "PEM or DER PKCS#10 request of a key made elsewhere (its signature is checked)", required=False),
    "key-ref": _s("with public-key or csr: the key reference qtsp will use (e.g. vault-transit:qwac-ca@1)", required=False),
}
_ISSUER = {
    "signing-key": EXISTING_KEY,
    "issuer-certificate": F("in", "PEM certificate of the signing key; its key must match signing-key"),
}

SPECS: dict[str, dict[str, F]] = {
    "root": {**_COMMON, "key": NEW_KEY, "subject": SUBJECT,
             "certificate": F("map", "the self-signed root certificate (profile root-ca)", children={
                 "ca-id": F("id", "the CA's id in qtsp (URLs /ca/<id>.der, /crl/<id>.crl)", required=False, default="root"),
                 **_CERT}),
             "outputs": F("map", "files written", children={
                 "certificate": F("out", "root certificate, PEM"),
                 "public-key": F("out", "root public key, PEM"), **_TRANSCRIPT})},
    "intermediate": {**_COMMON, **_ISSUER, **_SUBJECT_KEY, "subject": SUBJECT,
                     "certificate": F("map", "the issuing CA certificate", children={
                         "profile": F("enum", "qtsp profile", choices=("qwac-issuing-ca", "qseal-issuing-ca")),
                         "ca-id": F("id", "the new CA's id in qtsp (qwac-ca, qseal-ca)"),
                         "issuer-id": F("id", "the signing CA's id in qtsp", required=False, default="root"),
                         **_CERT, **_URL}),
                     "outputs": F("map", "files written", children={
                         "certificate": F("out", "issuing CA certificate, PEM"), **_TRANSCRIPT})},
    "ocsp-signer": {**_COMMON, **_ISSUER, **_SUBJECT_KEY, "subject": SUBJECT,
                    "certificate": F("map", "the delegated OCSP responder certificate (profile ocsp-responder)", children={
                        "issuer-id": F("id", "id of the CA it answers for (the one whose key signs it)"),
                        **_CERT}),
                    "outputs": F("map", "files written", children={
                        "certificate": F("out", "responder certificate, PEM"), **_TRANSCRIPT})},
    "crl": {**_COMMON, **_ISSUER,
            "crl": F("map", "the CRL (for the root: the ARL, BR 4.9.7 at most 12 months)", children={
                "issuer-id": F("id", "id of the CA in qtsp", required=False, default="root"),
                "number": F("int", "CRLNumber; must rise with every CRL of this issuer"),
                "validity-days": F("int", "nextUpdate - thisUpdate in days (1-365)"),
                "revoked": F("list", "revoked certificates", required=False, default=[], children={
                    "serial": _s("serial number, hex as openssl prints it"),
                    "revoked-at": F("time", "revocation time, ISO 8601 UTC"),
                    "reason": F("enum", "revocation reason (ca-compromise: a CA certificate's, BR 7.2.2)", choices=CA_REASONS)})}),
            "outputs": F("map", "files written", children={"crl": F("out", "the CRL, DER"), **_TRANSCRIPT})},
    "root-rollover": {**_COMMON, **_ISSUER, "key": NEW_KEY, "subject": SUBJECT,
                      "certificate": F("map", "the new root and its link certificates", children={
                          "ca-id": F("id", "id of the new root in qtsp", required=False, default="root-2"),
                          "old-ca-id": F("id", "id of the old root in qtsp", required=False, default="root"),
                          **_CERT, **_URL}),
                      "outputs": F("map", "files written", children={
                          "certificate": F("out", "new self-signed root, PEM"),
                          "public-key": F("out", "new root public key, PEM"),
                          "new-with-old": F("out", "link: the new root's key certified by the old root"),
                          "old-with-new": F("out", "link: the old root's key certified by the new root"), **_TRANSCRIPT})},
    "backup": {**_COMMON, "key": EXISTING_KEY,
               "quorum": F("map", "SLIP-39 split of the wrapping secret", children={
                   "threshold": F("int", "M: shares needed to restore (2 <= M <= N)"),
                   "shares": F("int", "N: shares made, one per custodian (N <= 16)")}),
               "outputs": F("map", "files written", children={
                   "backup": F("out", "the wrapped key and its metadata, JSON"),
                   "shares-dir": F("outdir", "new directory: one share per custodian, <custodian>.txt, mode 0600; "
                                             "hand each to its custodian and delete it here"),
                   **_TRANSCRIPT})},
    "restore": {**_COMMON, "backup": F("in", "the backup file a backup ceremony wrote"),
                "shares": F("list", "the shares brought (at least the threshold)", children={
                    "custodian": _s("who brings it (one of people.custodians)"),
                    "file": F("in", "file holding the share's words; omitted: typed in, hidden, interactive only",
                              required=False)}),
                "key": F("map", "where the key is restored to", children={
                    "backend": BACKEND, "label": F("label", "label of the restored key")}),
                "outputs": F("map", "files written", children={
                    "public-key": F("out", "restored public key, PEM"), **_TRANSCRIPT})},
}


def _fail(path: str, message: str, kind: Kind = Kind.MALFORMED) -> QTSPError:
    return QTSPError(kind, f"{path}: {message}" if path else message)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (PyYAML would keep the last silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except FileNotFoundError:
        raise QTSPError(Kind.NOT_FOUND, f"no ceremony file {path}") from None
    except yaml.YAMLError as exc:
        raise QTSPError(Kind.MALFORMED, f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise QTSPError(Kind.MALFORMED, f"{path}: a ceremony file is a YAML mapping")
    return raw


def check(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """The validated ceremony: defaults filled in, paths resolved against ``base`` (the file's dir)."""
    kind = raw.get("ceremony-type")
    if kind not in TYPES:
        raise _fail("ceremony-type", f"expected one of {', '.join(TYPES)}, got {kind!r}")
    return _map("", raw, SPECS[kind], base)


def _map(path: str, value: Any, spec: dict[str, F], base: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"expected a mapping, got {type(value).__name__}")
    unknown = sorted(str(k) for k in value if k not in spec)
    if unknown:
        raise _fail(f"{path}{unknown[0]}" if not path else f"{path}.{unknown[0]}",
                    f"unknown field (known here: {', '.join(spec)})")
    out: dict[str, Any] = {}
    for name, f in spec.items():
        where = f"{path}.{name}" if path else name
        if name not in value or value[name] is None:
            if f.required:
                raise _fail(where, "missing")
            out[name] = f.default
            continue
        out[name] = _value(where, value[name], f, base)
    return out


def _value(where: str, value: Any, f: F, base: Path) -> Any:
    if f.kind in ("str", "label", "id", "env", "enum", "in", "out", "outdir"):
        if not isinstance(value, str) or not value.strip():
            raise _fail(where, f"expected a non-empty string, got {type(value).__name__} {value!r}")
        if f.kind == "enum" and value not in f.choices:
            raise _fail(where, f"expected one of {', '.join(f.choices)}, got {value!r}")
        pattern = {"label": LABEL_RE, "id": ID_RE, "env": ENV_RE}.get(f.kind)
        if pattern is not None and not pattern.fullmatch(value):
            raise _fail(where, f"{value!r} is not a valid {f.kind}")
        if f.kind in ("in", "out", "outdir"):
            return (base / value).resolve() if not Path(value).is_absolute() else Path(value)
        return value
    if f.kind == "int":
        if type(value) is not int:
            raise _fail(where, f"expected an integer, got {type(value).__name__} {value!r}")
        return value
    if f.kind == "bool":
        if type(value) is not bool:
            raise _fail(where, f"expected true or false, got {type(value).__name__} {value!r}")
        return value
    if f.kind == "time":
        return _time(where, value)
    if f.kind == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise _fail(where, "expected a list of names")
        if len(set(value)) != len(value):
            raise _fail(where, "a name is listed twice")
        return value
    if f.kind == "map":
        return _map(where, value, f.children, base)
    if f.kind == "list":
        if not isinstance(value, list):
            raise _fail(where, f"expected a list, got {type(value).__name__}")
        return [_map(f"{where}[{i}]", item, f.children, base) for i, item in enumerate(value)]
    if f.kind == "backend":
        if not isinstance(value, dict) or value.get("type") not in BACKENDS:
            raise _fail(f"{where}.type", f"expected one of {', '.join(BACKENDS)}")
        spec = {"type": F("enum", "backend type", choices=BACKENDS), **BACKEND_FIELDS[value["type"]]}
        return _map(where, value, spec, base)
    raise AssertionError(f.kind)


def _time(where: str, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _fail(where, f"not an ISO 8601 time: {value!r}") from None
    else:
        raise _fail(where, f"expected a time, got {type(value).__name__}")
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed.astimezone(dt.timezone.utc)


def outputs(cfg: dict[str, Any]) -> dict[str, Path]:
    return dict(cfg["outputs"])


def inputs(cfg: dict[str, Any]) -> Iterator[tuple[str, Path]]:
    """Every input file named by the ceremony (dotted name, path)."""
    for name in ("issuer-certificate", "public-key", "csr", "backup"):
        if isinstance(cfg.get(name), Path):
            yield name, cfg[name]
    for i, share in enumerate(cfg.get("shares") or []):
        if share.get("file") is not None:
            yield f"shares[{i}].file", share["file"]


def field_rows() -> Iterator[tuple[str, str, str, str, str]]:
    """(ceremony types, dotted field, kind, required/default, doc) for every field, for the README."""
    seen: dict[tuple[str, str, str, str], list[str]] = {}

    def walk(kind: str, prefix: str, spec: dict[str, F]) -> None:
        for name, f in spec.items():
            dotted = f"{prefix}{name}"
            shown = f.kind if not f.choices or f.kind == "backend" else " \\| ".join(f.choices)
            req = "required" if f.required else ("optional" if f.default in (None, [], False) else f"default `{f.default}`")
            seen.setdefault((dotted, shown, req, f.doc), []).append(kind)
            if f.kind in ("map", "list"):
                walk(kind, f"{dotted}{'[].' if f.kind == 'list' else '.'}", f.children)
            if f.kind == "backend":
                for btype, children in BACKEND_FIELDS.items():
                    walk(kind, f"{dotted}.({btype}) ", children)

    for kind, spec in SPECS.items():
        walk(kind, "", spec)
    for (dotted, shown, req, doc), kinds in seen.items():
        yield "all" if len(kinds) == len(SPECS) else ", ".join(kinds), dotted, shown, req, doc
