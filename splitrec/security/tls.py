"""The credentials that a config's ``tls`` settings (``splitrec.config.tls``) name:
loaded, checked against each other, and turned into gRPC credentials.
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
from splitrec.config.tls import INSECURE, TlsConfig
from splitrec.security.certs import key_matches, load_private_key

__all__ = ["INSECURE", "Credentials", "TlsConfig", "common_name", "load_credentials"]

logger = logging.getLogger(__name__)


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
