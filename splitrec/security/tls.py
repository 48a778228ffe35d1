"""Mutual TLS settings of a party or a coordinator, and the credentials they load.

Every config file holds a ``tls`` section: the CA that signs every member of the
federation, this process's certificate and private key, and where the key's
password comes from (a file or an environment variable, never a flag)::

    tls:
      ca: ../certs/ca.pem
      cert: ../certs/alice.pem
      key: ../certs/alice.key
      key_password_file: /run/secrets/alice-key-password   # or key_password_env

``tls: {insecure: true}`` turns TLS off for local demos; it is logged loudly.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from splitrec.common.errors import ConfigError
from splitrec.config.reader import ConfigReader
from splitrec.security.certs import key_matches, load_private_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsConfig:
    insecure: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    key_password_file: Path | None = None
    key_password_env: str | None = None
    source: str = "<memory>"


INSECURE = TlsConfig(insecure=True)

_MISSING_HELP = (
    "add 'tls: {ca: ..., cert: ..., key: ...}' (see 'make certs'), or "
    "'tls: {insecure: true}' for a local demo without encryption"
)


def read_tls(reader: ConfigReader, base: Path) -> TlsConfig:
    """The ``tls`` section of a config file; paths are relative to the file."""
    if not reader.has("tls"):
        raise reader.error("tls", f"missing; {_MISSING_HELP}")
    section = reader.section("tls")
    where = f"{reader.source}: key 'tls'"
    if section.optional("insecure", bool, False):
        section.finish()
        return TlsConfig(insecure=True, source=where)

    def path(key: str, required: bool = True) -> Path | None:
        if not required and not section.has(key):
            return None
        resolved = Path(section.require(key, str)).expanduser()
        return resolved if resolved.is_absolute() else (base / resolved).resolve()

    config = TlsConfig(
        ca=path("ca"),
        cert=path("cert"),
        key=path("key"),
        key_password_file=path("key_password_file", False),
        key_password_env=section.optional("key_password_env", str, "") or None,
        source=where,
    )
    if config.key_password_file and config.key_password_env:
        raise section.error(
            "key_password_file", "give key_password_file or key_password_env, not both"
        )
    section.finish()
    return config


@dataclass(frozen=True)
class Credentials:
    """Loaded TLS material: PEM bytes of the CA, the certificate and the plain key.

    ``identity`` is the certificate's common name: the name the other members of
    the federation configure for this process.
    """

    ca: bytes
    cert: bytes
    key: bytes
    identity: str

    def server(self) -> grpc.ServerCredentials:
        """Server credentials that demand a client certificate signed by the CA."""
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)


def _read(path: Path, what: str, source: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{source}: cannot read the {what} {path}: {exc.strerror or exc}"
        ) from None


def _password(config: TlsConfig) -> bytes | None:
    if config.key_password_file is not None:
        text = _read(config.key_password_file, "key password file", config.source)
        return text.rstrip(b"\r\n")
    if config.key_password_env is not None:
        value = os.environ.get(config.key_password_env, "")
        if not value:
            raise ConfigError(
                f"{config.source}: key_password_env names {config.key_password_env}, "
                "but that environment variable is not set or empty"
            )
        return value.encode()
    return None


def _certificate(pem: bytes, path: Path, source: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise ConfigError(f"{source}: {path} is not a PEM certificate: {exc}") from None


def load_credentials(config: TlsConfig) -> Credentials | None:
    """Reads the files of ``config``; ``None`` in insecure mode.

    Refuses, naming the file: unreadable files, a key that needs a password or
    has another one, a key that does not belong to the certificate, and a
    certificate that is expired or not yet valid.
    """
    if config.insecure:
        return None
    assert config.ca and config.cert and config.key
    ca = _read(config.ca, "CA certificate", config.source)
    cert_pem = _read(config.cert, "certificate", config.source)
    _certificate(ca, config.ca, config.source)
    cert = _certificate(cert_pem, config.cert, config.source)
    try:
        key = load_private_key(config.key, _password(config))
    except ValueError as exc:
        raise ConfigError(
            f"{config.source}: {exc}; a key password comes from key_password_file "
            "or key_password_env"
        ) from None
    if not key_matches(key, cert):
        raise ConfigError(
            f"{config.source}: the key {config.key} does not belong to the "
            f"certificate {config.cert}"
        )
    now = datetime.datetime.now(datetime.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ConfigError(
            f"{config.source}: the certificate {config.cert} is valid only from "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; issue a new one "
            "(make certs)"
        )
    plain = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Credentials(ca, cert_pem, plain, common_name(cert))


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""
