"""Config files for a federation on one machine (the benchmark and the tests).

The repository's example configs are rewritten into a folder: each party reads a
given data set and listens on a free port, and the addresses that are known
only once the parties are up are filled in afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "configs"
# The worked example of a model written by its user (``family: custom``).
CUSTOM_EXAMPLE = {
    "family": "custom",
    "code": str(EXAMPLES.parent / "examples" / "custom_models"),
    "base": "cross_network:build_base",
    "output_width": 16,
}


# Per data layout: the folder of its example configs, the suffix of its CSVs
# (``<party>_<suffix>.csv``) and its parties, in the order of the job's
# ``parties``.
LAYOUTS: dict[str, tuple[Path, str, tuple[str, ...]]] = {
    "reference": (EXAMPLES, "ml1m", ("alice", "bob")),
    "bst": (EXAMPLES / "bst", "bst", ("alice", "bob")),
    "census": (EXAMPLES / "census", "adult", ("alice", "bob")),
    "two-tasks": (EXAMPLES / "two_tasks", "ml1m", ("alice", "bob")),
    "three-party": (EXAMPLES / "three_party", "3p", ("alice", "carol", "bob")),
}


@dataclass
class LocalConfigs:
    folder: Path
    alice: Path
    bob: Path
    job: Path
    # The third party's config, in a layout of three parties.
    carol: Path | None = None

    @property
    def parties(self) -> dict[str, Path]:
        """Every party's config by name, in the job's order."""
        names = ("alice", "carol", "bob")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    @classmethod
    def write(
        cls,
        folder: Path,
        data_dir: Path,
        certs: Path | None = None,
        layout: str = "reference",
        **job_changes: object,
    ) -> LocalConfigs:
        """The examples of a data ``layout`` (``reference``: ``configs/``;
        ``bst``, ``census``: ``configs/<layout>/``; ``two-tasks``: the reference
        data with ``configs/two_tasks/``; ``three-party``: alice, carol and bob
        with ``configs/three_party/``), pointed at ``data_dir`` with outputs
        under ``folder/runs``.

        With ``certs`` (a folder made by ``splitrec certs``) every process
        uses mutual TLS with its own certificate; without, TLS is off.
        """
        folder.mkdir(parents=True, exist_ok=True)
        examples, suffix, parties = LAYOUTS[layout]
        paths = {name: folder / f"{name}.yaml" for name in (*parties, "job")}
        for name in parties:
            config = yaml.safe_load((examples / f"{name}.yaml").read_text())
            config["data"]["path"] = str(data_dir / f"{name}_{suffix}.csv")
            config["output_dir"] = str(folder / "runs" / name)
            config["listen"] = "127.0.0.1:0"
            config["tls"] = _tls(certs, name)
            paths[name].write_text(yaml.safe_dump(config, sort_keys=False))
        job = yaml.safe_load((examples / "job.yaml").read_text())
        job.update(runs_dir=str(folder / "runs"), tls=_tls(certs, "coordinator"))
        job.update(job_changes)
        paths["job"].write_text(yaml.safe_dump(job, sort_keys=False))
        return cls(folder, **paths)

    def read(self, which: str) -> dict:
        """One config (a party's name or ``job``) as a mapping."""
        return yaml.safe_load(getattr(self, which).read_text())

    def edit(self, which: str, **changes: object) -> Path:
        """Sets top-level keys of one config file."""
        path = getattr(self, which)
        config = self.read(which)
        config.update(changes)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def set_family(
        self, family: str, aggregation: str | Mapping[str, object] = "concat"
    ) -> None:
        """Gives every party a model of ``family`` (the example's settings; for
        ``custom``, the worked example's builders); the label party's fuse
        combines the base outputs by ``aggregation``."""
        for party in self.parties:
            model = {**self.read(party)["model"], "family": family}
            if family == "custom":
                model = dict(CUSTOM_EXAMPLE)
                if party == "bob":
                    model["fuse"] = "cross_network:build_fuse"
            if party == "bob":
                model.pop("aggregation", None)
                if aggregation != "concat":
                    model["aggregation"] = aggregation
            self.edit(party, model=model)

    def set_sequence_length(self, length: int) -> None:
        """bob's sequence features take the last ``length`` tokens (the data
        must hold histories of that length: ``--sequence-length``)."""
        bob = self.read("bob")
        for feature in bob["features"]:
            if feature.get("type") == "sequence":
                feature["max_length"] = length
        self.edit("bob", features=bob["features"])

    def point_alice_at(self, bob: str) -> None:
        """Gives alice bob's address once bob's port is known."""
        self.point_at("alice", "bob", bob)

    def point_at(self, party: str, peer: str, address: str) -> None:
        """Gives ``party`` the address of ``peer`` (its only peer) once its port
        is known."""
        self.edit(party, peers=[{"name": peer, "address": address, "identity": peer}])

    def set_job_addresses(self, alice: str, bob: str) -> None:
        self.edit(
            "job",
            parties=[
                {"name": "alice", "address": alice, "identity": "alice"},
                {"name": "bob", "address": bob, "identity": "bob"},
            ],
        )

    def set_addresses(self, addresses: Mapping[str, str]) -> None:
        """Once every party's address is known: each party listens on its own,
        and its peers and the job's parties name theirs."""
        for party in self.parties:
            peers = [
                {**peer, "address": addresses[peer["name"]]}
                for peer in self.read(party)["peers"]
            ]
            self.edit(party, listen=addresses[party], peers=peers)
        parties = [
            {**entry, "address": addresses[entry["name"]]}
            for entry in self.read("job")["parties"]
        ]
        self.edit("job", parties=parties)


def _tls(certs: Path | None, identity: str) -> dict:
    if certs is None:
        return {"insecure": True}
    return {
        "ca": str(certs / "ca.pem"),
        "cert": str(certs / f"{identity}.pem"),
        "key": str(certs / f"{identity}.key"),
    }
