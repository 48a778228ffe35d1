"""Three parties: two feature parties and the label party align privately on the
IDs all three hold, then train one split model (DeepFM, or a DNN whose fuse
takes the sum of the three base outputs)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import yaml

from splitrec.config.job import load_job_config
from splitrec.config.party import load_party_config
from splitrec.coordinator.job import JobDriver
from splitrec.party_server.data_slice import load_data_slice
from tests.support import misaligned_copy, running_parties, write_configs


def _carol_csv(source, target, owner: str, columns: list[str]) -> None:
    """carol holds ``columns`` of ``owner``'s file, minus 500 rows, shuffled."""
    header, *rows = (source / f"{owner}_ml1m.csv").read_text().splitlines()
    names = header.split(",")
    picked = [names.index(c) for c in ["ID", *columns]]
    kept = [row.split(",") for row in rows if not 3000 <= int(row.split(",")[0]) < 3500]
    lines = [",".join(values[i] for i in picked) for values in kept]
    random.Random(5).shuffle(lines)
    target.write_text("\n".join([",".join(["ID", *columns]), *lines]) + "\n")


@pytest.mark.parametrize(
    ("family", "aggregation", "labels_alone"),
    [("deepfm", "concat", False), ("dnn", "sum", False), ("dnn", "sum", True)],
)
def test_three_parties_align_and_train(
    small_data, tmp_path, family, aggregation, labels_alone
):
    """carol holds the zip codes of alice's users; with ``labels_alone`` she
    holds the movie columns instead and bob the labels alone (no feature): the
    fuse sums alice's and carol's outputs."""
    data, common = misaligned_copy(small_data, tmp_path / "data")
    files = write_configs(tmp_path / "cfg", data)
    files.carol = tmp_path / "cfg" / "carol.yaml"

    carol = files.read("alice")
    if labels_alone:
        columns, features = ["MovieID", "Genres"], files.read("bob")["features"]
        _carol_csv(small_data, data / "carol_ml1m.csv", "bob", columns)
    else:
        columns = ["Zip-code"]
        features = [{"name": "Zip-code", "type": "hashed", "bins": 1000}]
        _carol_csv(small_data, data / "carol_ml1m.csv", "alice", columns)
    carol.update(
        party="carol",
        data={"path": str(data / "carol_ml1m.csv"), "columns": ["ID", *columns]},
        features=features,
        output_dir=str(tmp_path / "cfg" / "runs" / "carol"),
    )
    files.carol.write_text(yaml.safe_dump(carol, sort_keys=False))
    # Addresses come when the parties start (``running_parties``).
    peers = {
        "alice": [{"name": "bob"}],
        "carol": [{"name": "bob"}],
        "bob": [{"name": "alice"}, {"name": "carol"}],
    }
    for name, path in files.parties.items():
        config = yaml.safe_load(path.read_text())
        config.update(peers=peers[name])
        config["model"]["family"] = family
        if name == "bob":
            config["model"]["aggregation"] = aggregation
            if labels_alone:
                config["features"] = []
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    files.edit(
        "job",
        epochs=1,
        predict="none",
        parties=[{"name": n} for n in ("alice", "carol", "bob")],
    )

    with running_parties(files) as running:
        result = JobDriver(load_job_config(files.job)).run()
        held = {n: r.party.traffic.snapshot().bytes_sent for n, r in running.items()}

    [record] = result.records
    assert record.val_auc > 0.55
    # The fuse's first layer takes the three outputs side by side, or their sum.
    checkpoints = tmp_path / "cfg" / "runs" / "bob" / "deepfm-ml1m" / "checkpoints"
    with np.load(sorted(checkpoints.glob("checkpoint-*.npz"))[-1]) as saved:
        names = list(saved.files)
        [kernel] = [k for k in names if k.startswith("model/fuse/fuse_0/kernel")]
        inputs = saved[kernel].shape[0]
    assert inputs == {"concat": 3 * 32, "sum": 32}[aggregation]
    assert any(k.startswith("model/bob_base/") for k in names) != labels_alone
    assert all(sent > 0 for sent in held.values())
    # Every party trained on the same IDs in the same order: those all three hold.
    aligned = {}
    for name, path in files.parties.items():
        config = load_party_config(path)
        with np.load(config.output_dir / "deepfm-ml1m" / "alignment.npz") as cache:
            rows = cache["rows"]
        aligned[name] = load_data_slice(config).ids[rows].tolist()
    assert len(aligned["bob"]) == common - 500
    assert aligned["alice"] == aligned["bob"] == aligned["carol"]
    assert aligned["bob"] == sorted(aligned["bob"])
