"""TLS settings in config files and the credentials loaded from them."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from splitrec.common.errors import ConfigError
from splitrec.config.tls import read_tls
from splitrec.security.certs import (
    cert_pem,
    issue,
    key_pem,
    load_authority,
    write_bundle,
)
from splitrec.security.tls import TlsConfig, load_credentials


def _read(folder: Path, section: object) -> TlsConfig:
    path = folder / "party.yaml"
    data = {"tls": section} if section is not None else {}
    path.write_text(yaml.safe_dump(data))
    return read_tls(data, path)


def _files(folder: Path, identity: str) -> dict[str, str]:
    return {"ca": "ca.pem", "cert": f"{identity}.pem", "key": f"{identity}.key"}


def test_missing_section_says_how_to_add_one(tmp_path):
    with pytest.raises(ConfigError) as error:
        _read(tmp_path, None)
    message = str(error.value)
    assert str(tmp_path / "party.yaml") in message and "'tls'" in message
    assert "make certs" in message and "insecure: true" in message


def test_insecure_mode_needs_no_files(tmp_path):
    config = _read(tmp_path, {"insecure": True})
    assert config.insecure
    assert load_credentials(config) is None


def test_paths_are_relative_to_the_config_file(tmp_path):
    config = _read(tmp_path, _files(tmp_path, "alice"))
    assert config.ca == tmp_path / "ca.pem"
    assert config.key == tmp_path / "alice.key"


@pytest.mark.parametrize("missing", ["ca", "cert", "key"])
def test_each_file_is_required(tmp_path, missing):
    section = _files(tmp_path, "alice")
    del section[missing]
    with pytest.raises(ConfigError, match=f"'tls.{missing}': missing"):
        _read(tmp_path, section)


def test_unknown_key_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="'tls.password': unknown key"):
        _read(tmp_path, {**_files(tmp_path, "alice"), "password": "x"})


def test_password_file_and_env_together_are_refused(tmp_path):
    section = {
        **_files(tmp_path, "alice"),
        "key_password_file": "p.txt",
        "key_password_env": "P",
    }
    with pytest.raises(ConfigError, match="not both"):
        _read(tmp_path, section)


def test_loads_plain_key_and_reports_identity(tmp_path):
    write_bundle(tmp_path, ["alice"])
    credentials = load_credentials(_read(tmp_path, _files(tmp_path, "alice")))
    assert credentials.identity == "alice"
    assert b"ENCRYPTED" not in credentials.key
    assert credentials.cert == (tmp_path / "alice.pem").read_bytes()


def test_password_from_file(tmp_path):
    write_bundle(tmp_path, ["alice"], password=b"s3cret")
    (tmp_path / "pw.txt").write_text("s3cret\n")
    section = {**_files(tmp_path, "alice"), "key_password_file": "pw.txt"}
    credentials = load_credentials(_read(tmp_path, section))
    assert b"BEGIN PRIVATE KEY" in credentials.key


def test_password_from_environment(tmp_path, monkeypatch):
    write_bundle(tmp_path, ["alice"], password=b"s3cret")
    monkeypatch.setenv("ALICE_KEY_PASSWORD", "s3cret")
    section = {**_files(tmp_path, "alice"), "key_password_env": "ALICE_KEY_PASSWORD"}
    assert load_credentials(_read(tmp_path, section)).identity == "alice"


def test_unset_password_variable_is_named(tmp_path, monkeypatch):
    write_bundle(tmp_path, ["alice"], password=b"s3cret")
    monkeypatch.delenv("ALICE_KEY_PASSWORD", raising=False)
    section = {**_files(tmp_path, "alice"), "key_password_env": "ALICE_KEY_PASSWORD"}
    with pytest.raises(ConfigError, match="ALICE_KEY_PASSWORD, but that environment"):
        load_credentials(_read(tmp_path, section))


def test_encrypted_key_without_password_names_the_file(tmp_path):
    write_bundle(tmp_path, ["alice"], password=b"s3cret")
    with pytest.raises(ConfigError) as error:
        load_credentials(_read(tmp_path, _files(tmp_path, "alice")))
    assert str(tmp_path / "alice.key") in str(error.value)
    assert "key_password_file or key_password_env" in str(error.value)


def test_wrong_password_is_refused(tmp_path):
    write_bundle(tmp_path, ["alice"], password=b"s3cret")
    (tmp_path / "pw.txt").write_text("wrong")
    section = {**_files(tmp_path, "alice"), "key_password_file": "pw.txt"}
    with pytest.raises(ConfigError, match="alice.key"):
        load_credentials(_read(tmp_path, section))


def test_missing_certificate_file_is_named(tmp_path):
    write_bundle(tmp_path, ["alice"])
    (tmp_path / "alice.pem").unlink()
    with pytest.raises(ConfigError, match="cannot read the certificate .*alice.pem"):
        load_credentials(_read(tmp_path, _files(tmp_path, "alice")))


def test_key_of_another_certificate_is_refused(tmp_path):
    write_bundle(tmp_path, ["alice", "bob"])
    section = {**_files(tmp_path, "alice"), "key": "bob.key"}
    with pytest.raises(ConfigError, match="bob.key does not belong to the certificate"):
        load_credentials(_read(tmp_path, section))


def test_expired_certificate_is_refused_before_serving(tmp_path):
    write_bundle(tmp_path, ["alice"])
    authority = load_authority(tmp_path, None)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    key, cert = issue(authority, "alice", not_after=past)
    (tmp_path / "alice.pem").write_bytes(cert_pem(cert))
    (tmp_path / "alice.key").write_bytes(key_pem(key, None))
    with pytest.raises(ConfigError, match="is valid only from .* issue a new one"):
        load_credentials(_read(tmp_path, _files(tmp_path, "alice")))
