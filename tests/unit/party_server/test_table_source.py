"""A party's table as Parquet: one file, a folder of shards, a URL. Each gives
the same slice as the CSV it was made from (IDs, encoded features, labels and
both digests); a bad shard, a shard of other columns, a column of a type no
feature reads and a bad cell are refused naming the shard (and row)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import quote

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from splitrec.common.errors import DataError
from splitrec.config.party import PartyConfig, load_party_config
from splitrec.datasets.parquet import csv_to_parquet, main
from splitrec.party_server.data_slice import DataSlice, load_data_slice

# Columns that read as text from the CSV (the rest are written as integers).
TEXT = {"Gender": str, "Zip-code": str, "Title": str, "Genres": str}


def _frame(csv: Path) -> pd.DataFrame:
    return pd.read_csv(csv, dtype=TEXT, keep_default_na=False)


def _at(config: PartyConfig, location: str | Path) -> PartyConfig:
    data = config.data.model_copy(update={"path": location, "columns": ()})
    return config.model_copy(update={"data": data})


def _shards(frame: pd.DataFrame, folder: Path, count: int) -> Path:
    """``frame`` split into ``count`` shards in nested folders, with files a
    writer leaves beside them that are no data."""
    bounds = np.linspace(0, len(frame), count + 1).astype(int)
    for number, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        part = folder / f"day={number:02d}"
        part.mkdir(parents=True)
        frame.iloc[start:end].to_parquet(part / "part-0.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.parquet.crc").write_text("not data")
    (folder / "_temporary").mkdir()
    (folder / "_temporary" / "x.parquet").write_bytes(b"half written")
    return folder


def _same(left: DataSlice, right: DataSlice) -> None:
    assert left.id_digest == right.id_digest
    assert left.content_digest == right.content_digest
    np.testing.assert_array_equal(left.ids, right.ids)
    assert left.features.shapes == right.features.shapes
    for field in dataclasses.fields(left.features.packed):
        mine, theirs = (getattr(x.features.packed, field.name) for x in (left, right))
        np.testing.assert_array_equal(mine, theirs)
    if left.labels is None:
        assert right.labels is None
    else:
        np.testing.assert_array_equal(left.labels, right.labels)


@pytest.fixture(scope="module")
def csv_slices(small_data: Path, tmp_path_factory) -> dict:
    from tests.support import write_configs

    files = write_configs(tmp_path_factory.mktemp("configs"), small_data)
    configs = {n: load_party_config(files.parties[n]) for n in ("alice", "bob")}
    return {n: (c, load_data_slice(c)) for n, c in configs.items()}


@pytest.mark.parametrize("party", ["alice", "bob"])
def test_a_parquet_file_gives_the_slice_of_its_csv(csv_slices, tmp_path, party):
    config, expected = csv_slices[party]
    parquet = tmp_path / "data.bin"  # Parquet by its bytes, whatever its name
    _frame(config.data.path).to_parquet(parquet, index=False)

    _same(load_data_slice(_at(config, parquet)), expected)


@pytest.mark.parametrize("party", ["alice", "bob"])
def test_a_folder_of_shards_gives_the_slice_of_its_csv(csv_slices, tmp_path, party):
    config, expected = csv_slices[party]
    folder = _shards(_frame(config.data.path), tmp_path / "table", 3)

    _same(load_data_slice(_at(config, folder)), expected)
    # A file:// URL, its special characters escaped (a Spark-style folder name).
    odd = folder.rename(tmp_path / "tâble one.parquet")
    _same(load_data_slice(_at(config, odd)), expected)
    _same(load_data_slice(_at(config, f"file://{quote(str(odd))}")), expected)


@pytest.mark.parametrize("party", ["alice", "bob"])
def test_the_converter_s_dataset_gives_the_slice_of_its_csv(
    csv_slices, tmp_path, party
):
    config, expected = csv_slices[party]

    shards = csv_to_parquet(config.data.path, tmp_path / "table", shard_rows=700)

    assert [p.name for p in shards[:2]] == ["part-00000.parquet", "part-00001.parquet"]
    assert sum(pq.read_metadata(p).num_rows for p in shards) == expected.num_rows
    assert all(pq.read_metadata(p).num_rows <= 700 for p in shards)
    _same(load_data_slice(_at(config, tmp_path / "table")), expected)


def test_the_converter_keeps_text_as_written_and_replaces_its_folder(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("ID,Zip\n007,01234\n8,\n", encoding="utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "old.parquet").write_text("left from before")

    assert main([str(source), "--shard-rows", "1"]) == 0

    table = pq.read_table(tmp_path / "a")
    assert table.to_pydict() == {"ID": ["007", "8"], "Zip": ["01234", ""]}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert main([str(source), "--shard-rows", "0"]) == 2


def test_a_table_at_an_fsspec_url_is_read(csv_slices):
    config, expected = csv_slices["bob"]
    frame = _frame(config.data.path)
    memory = fsspec.filesystem("memory")
    with memory.open("/lake/bob/part-0.parquet", "wb") as out:
        frame.iloc[:7000].to_parquet(out, index=False)
    with memory.open("/lake/bob/part-1.parquet", "wb") as out:
        frame.iloc[7000:].to_parquet(out, index=False)

    _same(load_data_slice(_at(config, "memory://lake/bob")), expected)


def _bob_shards(csv_slices, tmp_path: Path) -> tuple[PartyConfig, pd.DataFrame, Path]:
    config, _ = csv_slices["bob"]
    frame = _frame(config.data.path).iloc[:300]
    return config, frame, _shards(frame, tmp_path / "table", 3)


def test_a_shard_that_is_not_parquet_is_named(csv_slices, tmp_path):
    config, _, folder = _bob_shards(csv_slices, tmp_path)
    (folder / "day=01" / "part-0.parquet").write_bytes(b"PAR1 and then nothing")

    with pytest.raises(DataError, match=r"table/day=01/part-0.parquet: not a readable"):
        load_data_slice(_at(config, folder))


def test_a_shard_of_other_columns_is_named(csv_slices, tmp_path):
    config, frame, folder = _bob_shards(csv_slices, tmp_path)
    frame.iloc[:5].drop(columns=["Title"]).to_parquet(
        folder / "day=02" / "part-0.parquet", index=False
    )

    with pytest.raises(DataError) as caught:
        load_data_slice(_at(config, folder))
    assert "table/day=02/part-0.parquet: its columns" in str(caught.value)
    assert "'Title'" in str(caught.value) and "day=00/part-0.parquet" in str(
        caught.value
    )


def test_a_bad_cell_is_named_by_shard_and_row(csv_slices, tmp_path):
    config, frame, folder = _bob_shards(csv_slices, tmp_path)
    bad = frame.iloc[100:200].astype({"Rating": str}).copy()
    bad.iloc[4, bad.columns.get_loc("Rating")] = "five"
    bad.to_parquet(folder / "day=01" / "part-0.parquet", index=False)

    with pytest.raises(DataError) as caught:
        load_data_slice(_at(config, folder))
    assert str(caught.value).startswith(
        f"{folder}/day=01/part-0.parquet (row 5): column 'Rating' holds 'five', "
        "not a number"
    )


def test_a_column_no_feature_can_read_is_refused(csv_slices, tmp_path):
    config, frame, folder = _bob_shards(csv_slices, tmp_path)
    table = pa.Table.from_pandas(frame.iloc[:10], preserve_index=False)
    genres = pa.array([[g] for g in frame["Genres"].iloc[:10]])
    table = table.set_column(table.schema.get_field_index("Genres"), "Genres", genres)
    pq.write_table(table, folder / "day=00" / "part-0.parquet")

    with pytest.raises(DataError, match=r"column 'Genres' has the Parquet type list"):
        load_data_slice(_at(config, folder))


def test_an_id_in_two_shards_is_named_in_both(csv_slices, tmp_path):
    config, frame, folder = _bob_shards(csv_slices, tmp_path)
    again = frame.iloc[200:300].copy()
    again.iloc[9, again.columns.get_loc("ID")] = frame["ID"].iloc[2]
    again.to_parquet(folder / "day=02" / "part-0.parquet", index=False)

    with pytest.raises(DataError) as caught:
        load_data_slice(_at(config, folder))
    message = str(caught.value)
    assert "appears more than once" in message
    assert "day=00/part-0.parquet row 3" in message
    assert "day=02/part-0.parquet row 10" in message


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda f: f.mkdir(), "no .parquet files"),
        (lambda f: (f.mkdir(), (f / "_SUCCESS").write_text("")), "no .parquet files"),
        (lambda f: None, "data file not found"),
    ],
)
def test_a_folder_without_data_is_refused(csv_slices, tmp_path, make, message):
    config, _ = csv_slices["bob"]
    make(tmp_path / "table")

    with pytest.raises(DataError, match=message):
        load_data_slice(_at(config, tmp_path / "table"))


def test_a_table_without_rows_is_refused(csv_slices, tmp_path):
    config, _ = csv_slices["bob"]
    _frame(config.data.path).iloc[:0].to_parquet(tmp_path / "empty.parquet")

    with pytest.raises(DataError, match="but no rows"):
        load_data_slice(_at(config, tmp_path / "empty.parquet"))


def test_a_url_no_file_system_opens_is_refused(csv_slices):
    config, _ = csv_slices["bob"]

    with pytest.raises(DataError, match="no file system opens this URL"):
        load_data_slice(_at(config, "nosuchscheme://bucket/table"))


@pytest.fixture
def s3(monkeypatch):
    """A local S3 endpoint (moto's server on loopback) with a bucket ``lake``;
    the address for URLs' query strings and a file system to write with."""
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = f"endpoint_override={host}:{port}&scheme=http&region=us-east-1"
        writer = pafs.S3FileSystem(
            endpoint_override=f"{host}:{port}",
            scheme="http",
            region="us-east-1",
            allow_bucket_creation=True,
        )
        writer.create_dir("lake")
        yield options, writer
    finally:
        server.stop()


def test_a_table_in_s3_is_read(csv_slices, s3):
    options, writer = s3
    config, expected = csv_slices["alice"]
    frame = _frame(config.data.path)
    for number, part in enumerate((frame.iloc[:9000], frame.iloc[9000:])):
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, f"lake/alice/part-{number}.parquet", filesystem=writer)

    _same(load_data_slice(_at(config, f"s3://lake/alice?{options}")), expected)
    with pytest.raises(DataError, match="data file not found"):
        load_data_slice(_at(config, f"s3://lake/nobody?{options}"))


def test_a_column_name_given_twice_is_refused(csv_slices, tmp_path):
    config, frame, _ = _bob_shards(csv_slices, tmp_path)
    ids = pa.array(frame["ID"])
    pq.write_table(pa.table([ids, ids], names=["ID", "ID"]), tmp_path / "twice.parquet")

    with pytest.raises(DataError, match="column 'ID' appears more than once"):
        load_data_slice(_at(config, tmp_path / "twice.parquet"))
