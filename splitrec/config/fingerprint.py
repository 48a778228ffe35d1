"""A party's fingerprint: what it trains on, as keyed digests by kind.

A job is the same job only while every party trains on the same rows with the
same settings. Each party reports, in ``Describe``, one digest per kind:

- ``data``: every column it uses (ID, features, label), row by row;
- ``features``: its feature settings and ID column;
- ``label``: its label rule (empty for a feature party);
- ``model``: its model settings.

The digests are HMAC-SHA256 under a key that never leaves the party (kept in its
``output_dir``), so equal digests say "unchanged" and nothing else: nobody can
test a guess of a setting or a value against them. The coordinator keeps them in
the job's manifest and refuses a recovery or a resume when one changed, naming
the party and the kind.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from splitrec.common.errors import ConfigError
from splitrec.config.party import PartyConfig

KINDS = {
    "data": "data file",
    "features": "feature settings",
    "label": "label rule",
    "model": "model settings",
}
KEY_FILE = ".fingerprint-key"


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode("utf-8")


def settings_digests(config: PartyConfig) -> dict[str, str]:
    """Plain SHA-256 of each kind of setting (the data digest comes from the
    loaded rows: see ``data_slice``)."""
    features = {
        "id_column": config.data.id_column,
        "features": [f.model_dump() for f in config.features],
    }
    settings = {
        "features": features,
        "label": [label.model_dump() for label in config.labels] or None,
        "model": config.model.model_dump(),
    }
    return {k: hashlib.sha256(_canonical(v)).hexdigest() for k, v in settings.items()}


def party_key(output_dir: Path) -> bytes:
    """The party's fingerprint key, made once and kept in ``output_dir``."""
    path = Path(output_dir) / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if key is not None:
        if len(key) < 32:
            raise ConfigError(
                f"{path} is damaged ({len(key)} bytes); delete it, and run unfinished "
                "jobs of this party with --fresh"
            )
        return key
    key = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return party_key(output_dir)  # another start won the race: use its key
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror}; output_dir must be a writable folder"
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def keyed(key: bytes, digests: dict[str, str]) -> dict[str, str]:
    """The digests as the party shows them: HMAC under its own key."""
    return {
        kind: hmac.new(key, f"{kind}\n{value}".encode(), hashlib.sha256).hexdigest()
        for kind, value in digests.items()
    }


def changes(
    before: dict[str, dict[str, str]], now: dict[str, dict[str, str]]
) -> list[str]:
    """What changed per party, as readable phrases ("bob's label rule")."""
    found = []
    for party, kinds in before.items():
        current = now.get(party, {})
        changed = [k for k in KINDS if kinds.get(k) != current.get(k)]
        if len(changed) == len(KINDS):
            found.append(
                f"every fingerprint of {party} (its output_dir, which keeps the "
                "fingerprint key and the checkpoints, may have been replaced)"
            )
        else:
            found += [f"{party}'s {KINDS[k]}" for k in changed]
    return found
