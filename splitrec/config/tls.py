"""The ``tls`` section of a party's or a job's config: mutual TLS settings.

The section names the CA that signs every member of the federation, this
process's certificate and private key, and where the key's password comes from
(a file or an environment variable, never a flag)::

    tls:
      ca: ../certs/ca.pem
      cert: ../certs/alice.pem
      key: ../certs/alice.key
      key_password_file: /run/secrets/alice-key-password   # or key_password_env

``tls: {insecure: true}`` turns TLS off for local demos; it is logged loudly.
``splitrec.security.tls`` loads the credentials these settings name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from splitrec.config.base import (
    ConfigModel,
    StrictBool,
    StrictStr,
    base_folder,
    from_file,
    problem,
    resolve,
    source_of,
    unknown_key,
)

MISSING_HELP = (
    "add 'tls: {ca: ..., cert: ..., key: ...}' (see 'make certs'), or "
    "'tls: {insecure: true}' for a local demo without encryption"
)
_PATHS = ("ca", "cert", "key", "key_password_file")


class TlsConfig(ConfigModel):
    """Mutual TLS: the federation's CA, this process's certificate and key, and
    the key's password source; or ``insecure: true`` for a local demo."""

    insecure: StrictBool = Field(
        False,
        description="Turn TLS off (a local demo only: traffic is not encrypted and "
        "no party is authenticated). The other keys are then not allowed.",
    )
    ca: Path | None = Field(
        None,
        description="The CA certificate (PEM) that signs every member of the "
        "federation; relative to the config file's folder.",
    )
    cert: Path | None = Field(
        None,
        description="This process's certificate (PEM); its common name is the "
        "identity the other members configure for it.",
    )
    key: Path | None = Field(
        None, description="The private key (PEM) of the certificate."
    )
    key_password_file: Path | None = Field(
        None,
        description="A file holding the private key's password (trailing line "
        "breaks ignored). Not together with key_password_env.",
    )
    key_password_env: StrictStr | None = Field(
        None,
        description="An environment variable holding the private key's password. "
        "Not together with key_password_file.",
    )
    source: SkipJsonSchema[StrictStr] = Field(
        "<memory>", description="Where the settings were read (for messages)."
    )

    _derived: ClassVar[frozenset[str]] = frozenset({"source"})

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        if from_file(info):
            allowed = ["insecure"] if data.get("insecure") is True else None
            if allowed is not None:
                extra = [k for k in data if k not in allowed]
                if extra:
                    raise problem(str(extra[0]), unknown_key(extra[0], allowed))
            data = {
                **data,
                "source": f"{source_of(info, Path('<memory>'))}: key 'tls'",
            }
        if data.get("insecure") is not True:
            for key in ("ca", "cert", "key"):
                if key not in data or data[key] is None:
                    raise problem(key, "missing; add it as a string")
        if data.get("key_password_env") == "":
            data = {**data, "key_password_env": None}
        return data

    @field_validator(*_PATHS, mode="before")
    @classmethod
    def _path(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, (str, Path)) and not isinstance(value, bool):
            return resolve(base_folder(info), value)
        if value is None:
            return None
        raise problem("", f"must be a string, got {value!r}")

    @model_validator(mode="after")
    def _one_password(self) -> TlsConfig:
        if self.key_password_file and self.key_password_env:
            raise problem(
                "key_password_file",
                "give key_password_file or key_password_env, not both",
            )
        return self


INSECURE = TlsConfig(insecure=True)


def tls_missing(key: str = "tls") -> Any:
    """The error of a config file without a ``tls`` section."""
    return problem(key, f"missing; {MISSING_HELP}")


class _TlsHolder(ConfigModel):
    """A config mapping read for its ``tls`` section alone."""

    model_config = {**ConfigModel.model_config, "extra": "ignore"}

    tls: TlsConfig

    @model_validator(mode="before")
    @classmethod
    def _present(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tls" not in data:
            raise tls_missing()
        return data


def read_tls(data: dict[str, Any], source: Path) -> TlsConfig:
    """The ``tls`` section of the config mapping read from ``source``; paths
    are relative to the file's folder."""
    return _TlsHolder.from_file(data, source).tls
