"""A development certificate authority for mutual TLS between the parties.

It creates one development CA and one certificate per identity, an identity being
a party name such as ``alice``, ``bob`` or ``coordinator``. A certificate carries
its identity twice: as the subject common name and as a DNS subject alternative
name (SAN). Extra hosts, DNS names or IP addresses, can be added as further SANs.

All keys are EC P-256. Every party is both a server and a client, so each leaf
certificate has both the serverAuth and clientAuth extended key usages. The CA
has BasicConstraints(ca=True) and the keyCertSign/cRLSign key usages; leaf
certificates have BasicConstraints(ca=False) and Subject/Authority Key Identifiers.

Run ``splitrec certs --out certs alice bob coordinator`` to write
``ca.pem``, ``ca.key`` and ``<identity>.pem``/``<identity>.key`` for each identity.
An existing CA in the output folder is reused, so identities can be added later.
These certificates are for development and tests, not for production.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from splitrec.common.atomic import write_atomically
from splitrec.common.errors import StorageError

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
KEY_FILE_MODE = 0o600
CERT_FILE_MODE = 0o644

_IDENTITY = re.compile(r"[A-Za-z0-9._-]+")
# Leaves start a little in the past so that small clock differences do not matter.
_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Authority:
    """The CA's private key and its self-signed certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _check_identity(identity: str) -> None:
    if not _IDENTITY.fullmatch(identity):
        raise ValueError(
            f"invalid identity {identity!r}: it must be non-empty and use only "
            "letters, digits, '-', '.' and '_'"
        )


def _key_usage(authority: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a party's key signs handshakes."""
    return x509.KeyUsage(
        digital_signature=not authority,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=authority,
        crl_sign=authority,
        encipher_only=False,
        decipher_only=False,
    )


def create_authority(
    name: str = "SplitRec development CA", days: int = 3650
) -> Authority:
    """A new self-signed CA named ``name``, valid for ``days`` days from now."""
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    usage = _key_usage(authority=True)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return Authority(key=key, cert=cert)


def _alt_names(identity: str, hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(identity)]
    for entry in hosts:
        host = entry.strip()
        if not host:
            raise ValueError(f"empty host given for identity {identity!r}")
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host)
        if name not in names:
            names.append(name)
    return names


def _validity(
    days: int, not_before: datetime | None, not_after: datetime | None
) -> tuple[datetime, datetime]:
    """The validity period; a bound that is not given is ``days`` from the other."""
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    length = timedelta(days=days)
    if not_before is not None:
        start = _utc(not_before)
        end = _utc(not_after) if not_after is not None else start + length
    elif not_after is not None:
        end = _utc(not_after)
        start = end - length
    else:
        start = datetime.now(UTC) - _CLOCK_SKEW
        end = start + length
    if end <= start:
        raise ValueError(f"not_after ({end}) must be after not_before ({start})")
    return start, end


def issue(
    authority: Authority,
    identity: str,
    hosts: Sequence[str] = (),
    days: int = 825,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and a certificate for ``identity`` signed by ``authority``.

    The identity is the common name and the first DNS SAN; each entry of ``hosts``
    is added as an IP address SAN if it parses as one, otherwise as a DNS SAN.
    The certificate is valid for ``days`` days from now unless ``not_before`` or
    ``not_after`` says otherwise (naive datetimes are taken as UTC).
    """
    _check_identity(identity)
    start, end = _validity(days, not_before, not_after)
    key = _new_key()
    usage = _key_usage(authority=False)
    extended_usage = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(extended_usage, critical=False)
        .add_extension(
            x509.SubjectAlternativeName(_alt_names(identity, hosts)), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                authority.key.public_key()
            ),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    return key, cert


def key_pem(key: PrivateKeyTypes, password: bytes | None) -> bytes:
    """``key`` as PKCS8 PEM, encrypted with ``password`` when one is given."""
    if password is None:
        encryption: serialization.KeySerializationEncryption = (
            serialization.NoEncryption()
        )
    elif not password:
        raise ValueError("the key password must not be empty")
    else:
        encryption = serialization.BestAvailableEncryption(password)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """``cert`` as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def load_private_key(path: Path, password: bytes | None) -> PrivateKeyTypes:
    """The PEM private key in ``path``.

    Raises ``ValueError`` naming the file when it is missing, when it is encrypted
    and no password or a wrong one is given, or when it holds no PEM private key.
    A password given for a key that is not encrypted is not needed and is ignored.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: key file not found") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read key file: {exc.strerror}") from exc
    if b"-----BEGIN" not in data or b"PRIVATE KEY-----" not in data:
        raise ValueError(f"{path}: not a PEM private key")
    encrypted = b"ENCRYPTED" in data
    if encrypted and password is None:
        raise ValueError(f"{path}: the key is encrypted and a password is needed")
    try:
        return serialization.load_pem_private_key(
            data, password=password if encrypted else None
        )
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise ValueError(f"{path}: wrong password for the encrypted key") from exc
        raise ValueError(f"{path}: not a valid PEM private key") from exc


def load_authority(out: Path, password: bytes | None) -> Authority:
    """The CA kept in ``out`` (``ca.pem`` and ``ca.key``)."""
    cert_path, key_path = out / CA_CERT_FILE, out / CA_KEY_FILE
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{cert_path}: not a valid PEM certificate") from exc
    key = load_private_key(key_path, password)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: the CA key is not an EC key")
    if not key_matches(key, cert):
        raise ValueError(f"{key_path} does not belong to the certificate {cert_path}")
    return Authority(key=key, cert=cert)


def key_matches(key: PrivateKeyTypes, cert: x509.Certificate) -> bool:
    """Whether ``cert`` certifies the public half of ``key``."""
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    return key.public_key().public_bytes(
        encoding, public
    ) == cert.public_key().public_bytes(encoding, public)


def write_bundle(
    out: Path,
    identities: Sequence[str],
    hosts: Mapping[str, Sequence[str]] | None = None,
    password: bytes | None = None,
    days: int = 825,
) -> list[Path]:
    """Write the CA and a key and certificate per identity into ``out``.

    An existing ``ca.pem``/``ca.key`` pair in ``out`` is reused (an encrypted CA key
    needs the same ``password``); otherwise a new CA is created. Keys are encrypted
    with ``password`` when one is given. Returns the paths written.
    """
    hosts = hosts or {}
    wanted = list(dict.fromkeys(identities))
    if not wanted:
        raise ValueError("no identity given")
    for identity in wanted:
        _check_identity(identity)
        if identity == "ca":
            raise ValueError(f"identity {identity!r} would overwrite the CA files")
    unknown = sorted(set(hosts) - set(wanted))
    if unknown:
        raise ValueError(f"hosts given for identities not listed: {', '.join(unknown)}")

    out.mkdir(parents=True, exist_ok=True)
    has_cert = (out / CA_CERT_FILE).exists()
    has_key = (out / CA_KEY_FILE).exists()
    if has_cert != has_key:
        present, missing = (
            (CA_CERT_FILE, CA_KEY_FILE) if has_cert else (CA_KEY_FILE, CA_CERT_FILE)
        )
        raise ValueError(
            f"{out / present} exists but {out / missing} does not: restore it or "
            "remove both to create a new CA"
        )

    files: list[tuple[Path, bytes, int]] = []
    if has_cert:
        authority = load_authority(out, password)
    else:
        authority = create_authority()
        files.append(
            (out / CA_KEY_FILE, key_pem(authority.key, password), KEY_FILE_MODE)
        )
        files.append((out / CA_CERT_FILE, cert_pem(authority.cert), CERT_FILE_MODE))
    for identity in wanted:
        key, cert = issue(authority, identity, hosts.get(identity, ()), days=days)
        files.append((out / f"{identity}.key", key_pem(key, password), KEY_FILE_MODE))
        files.append((out / f"{identity}.pem", cert_pem(cert), CERT_FILE_MODE))

    for path, data, mode in files:
        write_atomically(path, data, mode)
    return [path for path, _, _ in files]


def _parse_hosts(
    values: Sequence[str], identities: Sequence[str]
) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    for value in values:
        identity, sep, host = value.partition("=")
        if not sep or not identity or not host:
            raise ValueError(f"--host {value!r} is not of the form IDENTITY=HOST")
        if identity not in identities:
            raise ValueError(
                f"--host {value!r} names identity {identity!r}, not listed"
            )
        hosts.setdefault(identity, []).append(host)
    return hosts


def _read_password(args: argparse.Namespace) -> bytes | None:
    if args.password_file is not None:
        try:
            data = args.password_file.read_bytes()
        except OSError as exc:
            raise ValueError(
                f"cannot read password file {args.password_file}: {exc.strerror}"
            ) from exc
        data = data.removesuffix(b"\n").removesuffix(b"\r")
        if not data:
            raise ValueError(f"password file {args.password_file} is empty")
        return data
    if args.password_env is not None:
        value = os.environ.get(args.password_env)
        if not value:
            raise ValueError(
                f"environment variable {args.password_env} is not set or is empty"
            )
        return value.encode()
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="splitrec certs",
        description="Write a development CA and mutual-TLS certificates.",
        epilog="Exit codes: 0 written; 1 a file cannot be written; 2 bad flags or "
        "identities.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("identities", nargs="+", metavar="IDENTITY")
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="IDENTITY=HOST",
        help="extra DNS name or IP address for an identity (repeatable)",
    )
    parser.add_argument("--days", type=int, default=825, help="leaf validity in days")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-file", type=Path, help="encrypt keys with the password in FILE"
    )
    secret.add_argument(
        "--password-env", metavar="VAR", help="encrypt keys with the password in $VAR"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        hosts = _parse_hosts(args.host, args.identities)
        password = _read_password(args)
        written = write_bundle(
            args.out, args.identities, hosts=hosts, password=password, days=args.days
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
