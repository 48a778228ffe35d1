"""A party's work on Ray: a local instance gives the same encoded rows as the
party's own process, and a two-node cluster on this machine the same
intersection as its pool, with tasks on both nodes (a whole job on local
instances is ``test_parquet_job``'s); a cluster that cannot be reached stops
the party at start-up."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from splitrec.bench.psi import align_pair
from splitrec.bench.scale import local_cluster
from splitrec.common.errors import EngineError
from splitrec.config.engine import EngineConfig
from splitrec.config.party import load_party_config
from splitrec.engine import PartyEngine
from splitrec.party_server.data_slice import load_data_slice
from tests.support import refused_address, run_module

pytestmark = pytest.mark.slow


def _ids(rng: np.random.Generator, n: int, prefix: str) -> np.ndarray:
    return np.array([f"{prefix}{v}" for v in rng.choice(10 * n, n, replace=False)])


@pytest.fixture(scope="module")
def id_sets() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    alice, bob = _ids(rng, 15_000, "user-"), _ids(rng, 12_000, "user-0")
    # A third of bob's IDs are alice's too, in another order.
    bob[:5_000] = rng.permutation(alice)[:5_000]
    return alice, bob


@pytest.fixture(scope="module")
def by_pool(id_sets):
    return align_pair(*id_sets)


def test_a_table_encoded_on_the_engine_equals_the_one_encoded_here(party_files):
    config = load_party_config(party_files.bob)
    here = load_data_slice(config)
    engine = PartyEngine(EngineConfig(min_rows=0), "bob")
    try:
        on_ray = load_data_slice(config, engine=engine)
        tasks = engine.running.tasks_by_node
        # Ray allows one connection per process: a second party here that
        # names another engine is refused, before anything is reached.
        other = PartyEngine(EngineConfig(address="127.0.0.9:6379"), "party carol")
        with pytest.raises(EngineError, match="already uses the Ray engine at local"):
            other.start()
    finally:
        engine.close()

    assert sum(tasks.values()) == 1  # one chunk of 20,000 rows
    assert on_ray.ids.tolist() == here.ids.tolist()
    assert (on_ray.labels[:] == here.labels[:]).all()
    for name, array in here.features.arrays.items():
        assert np.array_equal(on_ray.features.arrays[name], array), name
    assert (on_ray.id_digest, on_ray.content_digest) == (
        here.id_digest,
        here.content_digest,
    )


def test_a_two_node_cluster_aligns_alike_with_work_on_both_nodes(id_sets, by_pool):
    with local_cluster(nodes=2) as engine:
        on_cluster = align_pair(*id_sets, engine)

    assert on_cluster.engine_cpus == 2
    assert len(on_cluster.tasks_by_node) == 2, on_cluster.tasks_by_node
    assert min(on_cluster.tasks_by_node.values()) >= 1
    assert by_pool.alice_rows.size == 5_000
    assert np.array_equal(on_cluster.alice_rows, by_pool.alice_rows)
    assert np.array_equal(on_cluster.bob_rows, by_pool.bob_rows)
    alice, bob = id_sets
    assert (alice[on_cluster.alice_rows] == bob[on_cluster.bob_rows]).all()


def test_an_unreachable_engine_is_refused_by_name():
    with refused_address() as address:
        engine = PartyEngine(EngineConfig(address=address), "party bob (bob.yaml)")
        with pytest.raises(EngineError) as refused:
            engine.start()

    assert str(refused.value).startswith(
        f"party bob (bob.yaml): the Ray cluster at engine.address {address!r} "
        "cannot be reached (Connection refused); start it, or fix or remove "
        "engine.address"
    )


def test_a_party_whose_engine_is_unreachable_does_not_start(party_files):
    with refused_address() as address:
        config = yaml.safe_load(party_files.bob.read_text())
        config["engine"] = {"address": address}
        party_files.bob.write_text(yaml.safe_dump(config))
        result = run_module(
            ["splitrec.party_server", "--config", str(party_files.bob)], timeout=300
        )

    assert result.returncode == 2, result.stderr
    assert f"the Ray cluster at engine.address {address!r} cannot be reached" in (
        result.stderr
    )
    assert str(party_files.bob) in result.stderr
    assert "Traceback" not in result.stderr
