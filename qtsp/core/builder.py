"""Turn a profile, a subject and an issuer into a CertificateBuilder (no signing, no I/O)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asn1crypto import core
from cryptography import x509
from cryptography.x509.oid import NameOID

from . import oids
from .errors import policy
from .keys import PublicKey, check_subscriber_key
from .names import OrganizationIdentifier, check_country, check_domain
from .profiles import KEY_USAGE_FIELDS, Profile, SubjectShape
from .qcstatements import QcSpec, qc_statements_extension
from .types import Serial
from .validity import br_tls_max_days, not_after_for, truncate


@dataclass(frozen=True)
class IssuerInfo:
    """What a certificate needs to know about its issuer."""

    name: x509.Name
    public_key: PublicKey
    not_after: dt.datetime
    ca_issuers_url: str | None  # where the issuer's certificate is published (AIA)
    ocsp_url: str | None  # the responder for certificates this issuer signs
    crl_url: str | None  # the CRL listing certificates this issuer signs


@dataclass(frozen=True)
class SubjectData:
    """A legal person's identity, as the register (or a CA config) states it."""

    organization: str
    country: str
    org_id: OrganizationIdentifier | None = None
    locality: str | None = None
    state: str | None = None
    registration_number: str | None = None
    business_category: str = "Private Organization"
    common_name: str | None = None

    def __post_init__(self) -> None:
        check_country(self.country)
        for label, value in (("organization name", self.organization), ("common name", self.common_name)):
            if value is not None and not (1 <= len(value) <= 64 and value.strip() == value and value.isprintable()):
                raise policy(f"{label} must be 1-64 printable characters without outer spaces: {value!r}")
        for label, value in (("locality", self.locality), ("state", self.state)):
            if value is not None and not (1 <= len(value) <= 128 and value.isprintable()):
                raise policy(f"{label} must be 1-128 printable characters")


def subject_name(shape: SubjectShape, data: SubjectData) -> x509.Name:
    """Subject DN in the BR 7.1.4.2 attribute order, EV attributes as EVG 9.2 lists them."""
    attrs: list[x509.NameAttribute[str]] = []

    def add(oid: x509.ObjectIdentifier, value: str | None) -> None:
        if value:
            attrs.append(x509.NameAttribute(oid, value))

    if shape is SubjectShape.QWAC_EV:
        if not (data.locality or data.state):
            raise policy("a QWAC subject needs a locality or a state (EVG 9.2.4)")
        if not data.registration_number:
            raise policy("a QWAC subject needs the registration number (EVG 9.2.5 serialNumber)")
        if data.org_id is None:
            raise policy("a QWAC subject needs an organizationIdentifier (EN 319 412-1 5.1.4)")
        add(NameOID.BUSINESS_CATEGORY, data.business_category)
        add(NameOID.JURISDICTION_COUNTRY_NAME, data.country)
        add(NameOID.SERIAL_NUMBER, data.registration_number)
        add(NameOID.COUNTRY_NAME, data.country)
        add(NameOID.STATE_OR_PROVINCE_NAME, data.state)
        add(NameOID.LOCALITY_NAME, data.locality)
        add(NameOID.ORGANIZATION_NAME, data.organization)
        add(NameOID.ORGANIZATION_IDENTIFIER, data.org_id.value)
        add(NameOID.COMMON_NAME, data.common_name)
    elif shape is SubjectShape.QSEAL:
        # EN 319 412-3 4.2.1: C, O, organizationIdentifier, CN, exactly one of each.
        if data.org_id is None:
            raise policy("a QSealC subject needs an organizationIdentifier (EN 319 412-3 4.2.1)")
        if data.org_id.value == data.organization:
            raise policy("organizationIdentifier must differ from the organization name")
        add(NameOID.COUNTRY_NAME, data.country)
        add(NameOID.ORGANIZATION_NAME, data.organization)
        add(NameOID.ORGANIZATION_IDENTIFIER, data.org_id.value)
        add(NameOID.COMMON_NAME, data.common_name or data.organization)
    else:
        add(NameOID.COUNTRY_NAME, data.country)
        add(NameOID.ORGANIZATION_NAME, data.organization)
        if data.org_id is not None:
            add(NameOID.ORGANIZATION_IDENTIFIER, data.org_id.value)
        add(NameOID.COMMON_NAME, data.common_name)
    return x509.Name(attrs)


class _CabfOrganizationIdentifier(core.Sequence):
    # EVG 9.8.2
    _fields = [
        ("registration_scheme_identifier", core.PrintableString),
        ("registration_country", core.PrintableString),
        ("registration_state_or_province", core.PrintableString, {"implicit": 0, "optional": True}),
        ("registration_reference", core.UTF8String),
    ]


def cabf_org_id_extension(org_id: OrganizationIdentifier) -> x509.UnrecognizedExtension:
    value = _CabfOrganizationIdentifier(
        {
            "registration_scheme_identifier": org_id.scheme,
            "registration_country": org_id.country,
            "registration_reference": org_id.reference,  # never "PSDxx-" again
        }
    )
    return x509.UnrecognizedExtension(oids.CABF_ORGANIZATION_IDENTIFIER, value.dump())


def _key_usage(profile: Profile) -> x509.KeyUsage:
    flags = {name: name in profile.key_usage for name in KEY_USAGE_FIELDS}
    return x509.KeyUsage(**flags, encipher_only=False, decipher_only=False)


def validity_window(profile: Profile, now: dt.datetime, issuer: IssuerInfo | None) -> tuple[dt.datetime, dt.datetime]:
    not_before = truncate(now)
    days = profile.validity_days if profile.validity_days is not None else br_tls_max_days(not_before)
    not_after = not_after_for(not_before, days)
    if issuer is not None and not_after > issuer.not_after:
        raise policy(
            f"a {profile.name} certificate valid until {not_after:%Y-%m-%d} would outlive its issuer "
            f"(valid until {issuer.not_after:%Y-%m-%d}); roll the issuing CA first"
        )
    return not_before, not_after


def build(
    profile: Profile,
    *,
    subject: x509.Name,
    public_key: PublicKey,
    serial: Serial,
    now: dt.datetime,
    issuer: IssuerInfo | None,
    dns_names: tuple[str, ...] = (),
    org_id: OrganizationIdentifier | None = None,
    qc: QcSpec | None = None,
) -> x509.CertificateBuilder:
    """The to-be-signed certificate. ``issuer=None`` means self-signed (a root)."""
    if not profile.is_ca and not profile.ocsp_nocheck:
        check_subscriber_key(public_key, allow_ed25519=profile.allow_ed25519)
    if serial <= 0 or serial.bit_length() > 159:
        raise policy("serial must be positive and fit in 20 octets (RFC 5280 4.1.2.2)")
    not_before, not_after = validity_window(profile, now, issuer)
    issuer_name = subject if issuer is None else issuer.name
    issuer_key = public_key if issuer is None else issuer.public_key

    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if profile.is_ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=profile.path_length), critical=True)
    b = b.add_extension(_key_usage(profile), critical=True)
    if profile.ext_key_usage:
        b = b.add_extension(x509.ExtendedKeyUsage(list(profile.ext_key_usage)), critical=False)
    if profile.ski:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    # AKI on every certificate, roots included (BR 7.1.2.1.3 recommends it there).
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)
    if profile.aia and issuer is not None:
        access = []
        # CA certificates name their issuer's responder too (the root-delegated one for the root's
        # children): relying parties that check the whole chain by OCSP (nginx ``ssl_ocsp on``, Java
        # PKIX without CRL fetching) need it. Never on a responder certificate (RFC 6960 4.2.2.2.1).
        if issuer.ocsp_url and not profile.ocsp_nocheck:
            access.append(x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(issuer.ocsp_url)))
        if issuer.ca_issuers_url:
            access.append(
                x509.AccessDescription(x509.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(issuer.ca_issuers_url))
            )
        if access:
            b = b.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if profile.crl_dp and issuer is not None and issuer.crl_url:
        b = b.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(issuer.crl_url)], None, None, None)]
            ),
            critical=False,
        )
    if profile.policies:
        b = b.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(oid, None) for oid in profile.policies]), critical=False
        )
    if profile.san:
        if not dns_names:
            raise policy(f"a {profile.name} certificate needs at least one domain name")
        names = [check_domain(name) for name in dns_names]
        if len(set(names)) != len(names):
            raise policy("a domain name is listed twice")
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    if profile.cabf_org_id:
        if org_id is None:
            raise policy(f"a {profile.name} certificate needs an organizationIdentifier")
        b = b.add_extension(cabf_org_id_extension(org_id), critical=False)
    if profile.qc_type is not None:
        if qc is None or qc.qc_type != profile.qc_type or qc.sscd != profile.qc_sscd:
            raise policy(f"QCStatements do not match the {profile.name} profile")
        b = b.add_extension(qc_statements_extension(qc), critical=False)  # EN 319 412-5: non-critical
    if profile.ocsp_nocheck:
        b = b.add_extension(x509.OCSPNoCheck(), critical=False)
    return b
