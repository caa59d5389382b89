"""The simulator's 2-QWAC TLS certificate bindings (issue 18): a good one and one broken in each way a browser
must refuse, each with the verdict ``qtsp binding verify|check`` must reach, in the scenario manifest.

Three certificate scenarios sign them (``two-qwac``, ``two-qwac-revoked``, ``two-qwac-unlisted``, made here and
listed in ``scenarios.CATALOGUE``), plus the 1-QWAC ``valid-qwac``. The bindings bind ``bindings/tls.pem``, a
self-signed TLS certificate for 127.0.0.1 and localhost that ``qtsp site serve`` can present with each binding
(``bindings/tls.key``); ``bindings/other-tls.pem`` is the certificate the wrong-hash binding names instead.

Expected verdicts are against the sandbox Trusted List (``--tl`` with the pinned ``tl-signer.pem``), where the
unlisted CA is not a granted service; ``with_root_anchor`` is the verdict with ``--trust-anchor ca/root.pem``,
which pins the root and so grants every CA under it, the unlisted one included.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from .. import files
from ..core import profiles, tls_binding
from ..core.keys import KeyType, generate_private_key
from ..core.serials import new_serial
from . import scenario_certs as make
from .scenario_cas import SCENARIOS_CA, UNLISTED_CA
from .scenario_certs import Context, Made, Scenario

# --- the signing certificates (certificate scenarios of the catalogue) -----------------------------------


def two_qwac(ctx: Context, sc: Scenario) -> Made:
    """A 2-QWAC (QNCP-w-gen, id-kp-tls-binding only, QcType web) from the listed scenarios CA."""
    template, key = make._template(ctx, sc, profile=profiles.TWO_QWAC)
    return Made(make._rebuild(template, ctx.cas[SCENARIOS_CA].signer), key, SCENARIOS_CA, (SCENARIOS_CA,))


def two_qwac_revoked(ctx: Context, sc: Scenario) -> Made:
    made = two_qwac(ctx, sc)
    made.revocation = ("key-compromise", ctx.now.replace(microsecond=0))
    return made


def two_qwac_unlisted(ctx: Context, sc: Scenario) -> Made:
    template, key = make._template(ctx, sc, issuer_id=UNLISTED_CA, profile=profiles.TWO_QWAC)
    return Made(make._rebuild(template, ctx.cas[UNLISTED_CA].signer), key, UNLISTED_CA, (UNLISTED_CA,))


def certificate_scenarios() -> list[Scenario]:
    return [
        Scenario("two-qwac", "A correct 2-QWAC (ETSI TS 119 411-5 4.2: QNCP-w-gen, EKU id-kp-tls-binding only, QcType "
                 "web) from a CA/QC service granted for web: accept as a 2-QWAC. It signs the binding scenarios.",
                 "2-qwac", "accept", (), "accept", two_qwac),
        Scenario("two-qwac-revoked", "A 2-QWAC revoked (keyCompromise); OCSP and the CRL say so: reject (revoked). "
                 "It signs binding-revoked-signer.", "2-qwac", "reject", ("revoked",), "reject", two_qwac_revoked),
        Scenario("two-qwac-unlisted", "A 2-QWAC from a CA under the sandbox root that is not a Trusted List service: "
                 "reject (issuer not trusted). It signs binding-unlisted-ca.", "2-qwac", "reject",
                 ("issuer-not-trusted",), "accept", two_qwac_unlisted),
    ]


# --- the bindings ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    """What a binding scenario is made from: its signer, the site's TLS certificate and another one."""

    signer: Made
    chain: list[x509.Certificate]  # the signer's CA certificates for x5c
    tls_der: bytes
    other_tls_der: bytes
    now: dt.datetime


Change = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class BindingScenario:
    name: str
    description: str
    signer: str  # the certificate scenario whose certificate and key sign it
    verdict: str
    reasons: tuple[str, ...]  # reason codes of qtsp.relying_party.binding (and of the validator, for the 2-QWAC)
    with_root_anchor: str  # the verdict with --trust-anchor ca/root.pem
    change: Change | None = field(default=None, compare=False)  # the header, changed in one way before signing
    bind_other: bool = False  # bind other-tls.pem instead of tls.pem
    start: dt.timedelta = dt.timedelta(0)  # iat relative to now
    life: dt.timedelta = dt.timedelta(days=30)


def _drop(name: str) -> Change:
    def change(header: dict[str, Any]) -> None:
        header.pop(name, None)
    return change


def _set(name: str, value: Any) -> Change:
    return lambda header: header.__setitem__(name, value)


def _catalogue() -> list[BindingScenario]:
    return [
        BindingScenario("binding-valid", "A correct binding of bindings/tls.pem by the 2-QWAC two-qwac: accept.",
                        "two-qwac", "accept", (), "accept"),
        BindingScenario("binding-wrong-hash", "The binding lists the hash of another TLS certificate "
                        "(bindings/other-tls.pem), not the one the site presents: reject (tls-cert-not-bound).",
                        "two-qwac", "reject", ("tls-cert-not-bound",), "reject", bind_other=True),
        BindingScenario("binding-expired", "The binding's exp passed 30 days ago (issued 60 days ago, for 30): reject "
                        "(binding-expired; TS 119 411-5 Annex B exp).", "two-qwac", "reject", ("binding-expired",),
                        "reject", start=-dt.timedelta(days=60)),
        BindingScenario("binding-signed-by-1qwac", "Signed by the 1-QWAC valid-qwac (serverAuth, clientAuth) instead of a "
                        "2-QWAC: reject (eku-tls-binding-missing; TS 119 411-5 4.2.2; and no QNCP-w-gen policy: "
                        "policy-missing, policy-type-mismatch; EN 319 411-2).", "valid-qwac", "reject",
                        ("eku-tls-binding-missing", "policy-missing", "policy-type-mismatch"), "reject"),
        BindingScenario("binding-no-cty", "The header has no cty: reject (header-cty; TS 119 411-5 Annex B).",
                        "two-qwac", "reject", ("header-cty",), "reject", change=_drop("cty")),
        BindingScenario("binding-wrong-cty", "cty is 'TLS-Certificate-Binding-v2': reject (header-cty).", "two-qwac",
                        "reject", ("header-cty",), "reject", change=_set("cty", "TLS-Certificate-Binding-v2")),
        BindingScenario("binding-alg-none", "alg 'none' and an empty signature: reject (header-alg; never an "
                        "unsigned binding).", "two-qwac", "reject", ("header-alg",), "reject", change=_set("alg", "none")),
        BindingScenario("binding-no-x5c", "The header has no x5c: no 2-QWAC to verify with; reject (header-x5c).",
                        "two-qwac", "reject", ("header-x5c",), "reject", change=_drop("x5c")),
        BindingScenario("binding-revoked-signer", "Signed by the revoked 2-QWAC two-qwac-revoked: reject (revoked).",
                        "two-qwac-revoked", "reject", ("revoked",), "reject"),
        BindingScenario("binding-unlisted-ca", "Signed by two-qwac-unlisted, from a CA not granted on the Trusted List: "
                        "reject against the list (issuer-not-trusted); a root pinned as anchor accepts it.",
                        "two-qwac-unlisted", "reject", ("issuer-not-trusted",), "accept"),
    ]


BINDINGS: dict[str, BindingScenario] = {b.name: b for b in _catalogue()}


def signers_of(names: list[str]) -> list[str]:
    """The certificate scenarios the named bindings are signed by, in catalogue order, once each."""
    return list(dict.fromkeys(BINDINGS[name].signer for name in names))


def make_binding(sc: BindingScenario, m: Material) -> str:
    """The binding of ``sc``: built as ``qtsp binding sign`` builds one, then changed in its one way."""
    iat = (m.now + sc.start).replace(microsecond=0)
    bound = m.other_tls_der if sc.bind_other else m.tls_der
    key = m.signer.key
    alg = tls_binding.algorithm_for(key.public_key())
    header = tls_binding.build_header([m.signer.cert, *m.chain], [bound], alg=alg, iat=iat, exp=iat + sc.life)
    if sc.change is not None:
        sc.change(header)
    if header.get("alg") == "none":  # RFC 7515 A.5: an unsecured JWS has an empty signature
        return f"{tls_binding.encode_header(header)}.."
    return tls_binding.sign(header, key)


def _tls_certificate(now: dt.datetime, name: str) -> tuple[x509.Certificate, Any]:
    """A self-signed TLS server certificate for 127.0.0.1 and localhost (P-256): what the demo site presents."""
    key = generate_private_key(KeyType.ECDSA_P256)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(new_serial()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def write(out: Path, names: list[str], made: dict[str, Made], ca_certs: dict[str, x509.Certificate],
          now: dt.datetime) -> dict[str, Any]:
    """Write the named bindings, the TLS certificates and key under ``out/bindings``; the manifest's part."""
    if not names:
        return {}
    directory = out / "bindings"
    files.ensure_dir(directory)
    tls, tls_key = _tls_certificate(now, "qtsp demo site")
    other, _ = _tls_certificate(now, "another site")
    files.write_new(directory / "tls.pem", tls.public_bytes(Encoding.PEM))
    files.write_new(directory / "tls.key", tls_key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()), private=True)
    files.write_new(directory / "other-tls.pem", other.public_bytes(Encoding.PEM))
    entries = []
    for name in names:
        sc = BINDINGS[name]
        signer = made[sc.signer]
        material = Material(signer, [ca_certs[ca_id] for ca_id in signer.chain], tls.public_bytes(Encoding.DER),
                            other.public_bytes(Encoding.DER), now)
        files.write_new(directory / f"{name}.jws", (make_binding(sc, material) + "\n").encode("ascii"))
        entries.append({"name": name, "description": sc.description, "binding": f"bindings/{name}.jws",
                        "signer": sc.signer, "tls_certificate": "bindings/tls.pem",
                        "expected": {"verdict": sc.verdict, "reasons": list(sc.reasons)},
                        "with_root_anchor": sc.with_root_anchor})
    return {"tls_certificate": "bindings/tls.pem", "tls_key": "bindings/tls.key",
            "other_tls_certificate": "bindings/other-tls.pem",
            "note": "2-QWAC TLS certificate bindings (ETSI TS 119 411-5 Annex B). 'expected' is what `qtsp binding "
                    "verify --tls-cert bindings/tls.pem --tl URL --tl-signer tl-signer.pem` concludes at generated_at; "
                    "'with_root_anchor' with --trust-anchor ca/root.pem instead. `qtsp site serve --tls-cert "
                    "bindings/tls.pem --tls-key bindings/tls.key --binding FILE` serves one for `qtsp binding check`.",
            "entries": entries}


def listing() -> list[dict[str, Any]]:
    return [{"name": b.name, "purpose": "2-qwac-binding", "verdict": b.verdict, "reasons": list(b.reasons),
             "pkix": "-", "description": b.description} for b in BINDINGS.values()]
