"""A party's memory does not grow with its rows: the reference job at 2M rows
stays within a bound measured from the same job at 200k rows, each party's
peak resident memory read from the kernel when it exits (as ``make bench``
reads it).

Both runs start from their private ID alignment already made (the cache every
party keeps), written here from a plain join of the IDs: PSI over 2M IDs a
party takes minutes on two cores and is not what this test measures.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from splitrec.bench.runs import run_split
from splitrec.bench.setup import ensure_data, run_configs
from splitrec.config.party import PartyConfig, load_party_config
from splitrec.party_server.alignment import cache_key, plain_alignment, write_cache
from splitrec.party_server.data_slice import DataSlice, id_digest
from splitrec.party_server.row_store import IdColumn

pytestmark = pytest.mark.slow

SMALL, LARGE = 200_000, 2_000_000
# What a row may add to a party's peak: its job's row lists (positions,
# training rows, the epoch's order: 4 bytes each) and the training scores,
# with room to spare.
BYTES_PER_ROW = 32
# What does not grow with the rows but differs between the two sizes (store
# files up to 24 MB are mapped whole), and run-to-run noise. Before the row
# store, 2M rows took about 600 MB more than 200k.
NOISE_MB = 60.0


def _ids_only(config: PartyConfig) -> DataSlice:
    """A party's IDs as it reads them (text, in file order), nothing else."""
    ids = pd.read_csv(
        config.data.path,
        usecols=[config.data.id_column],
        dtype=str,
        keep_default_na=False,
    )[config.data.id_column].to_numpy(dtype=str)
    return DataSlice(IdColumn.of(ids), None, None, id_digest(ids))


def _peaks(work: Path, rows: int) -> dict[str, float]:
    data = ensure_data(work / "data", rows)
    configs = run_configs(work / f"run-{rows}", data, 1024, 1)
    # Both sizes in the party process alone: a Ray engine's fixed cost (its
    # client here, its processes beside) is the scale table's to measure.
    for name in configs.parties:
        configs.edit(name, engine={"min_rows": 10 * LARGE})
    job = configs.read("job")["job"]
    parties = {n: load_party_config(p) for n, p in configs.parties.items()}
    slices = {n: _ids_only(c) for n, c in parties.items()}
    aligned = plain_alignment(list(slices.values()))
    key = cache_key(job, {n: s.id_digest for n, s in slices.items()})
    for config, rows_here in zip(parties.values(), aligned, strict=True):
        write_cache(config.output_dir / job, key, rows_here)
    del slices
    result = run_split(configs, rows, 1024, 1, 1200.0, share_alignment=False)
    for name in parties:
        log = (configs.folder / "logs" / f"{name}.log").read_text()
        assert "(cached)" in log, f"{name} aligned again:\n{log[-2000:]}"
    return {n: result.peak_rss_mb[n] for n in parties}


@pytest.mark.timeout(1800)
def test_a_party_at_2m_rows_stays_within_the_bound_of_200k(tmp_path):
    small = _peaks(tmp_path, SMALL)
    large = _peaks(tmp_path, LARGE)

    allowance = (LARGE - SMALL) * BYTES_PER_ROW / 2**20 + NOISE_MB
    print(f"peak MB at {SMALL} rows: {small}; at {LARGE}: {large}")
    for name, peak in large.items():
        assert peak <= small[name] + allowance, (
            f"{name}: {peak:.0f} MB at {LARGE} rows, {small[name]:.0f} MB at "
            f"{SMALL}; the bound is {small[name] + allowance:.0f} MB"
        )
