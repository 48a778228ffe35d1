"""Job and party names are one plain path component; paths built from them stay
inside their folder, symbolic links included; folders are checked writable."""

from __future__ import annotations

import os

import pytest

from splitrec.common.errors import ConfigError
from splitrec.common.names import (
    MAX_CHECKPOINT_ID,
    any_run_name_problem,
    checkpoint_id_problem,
    name_problem,
    run_name_problem,
    scoring_run_name,
)
from splitrec.common.paths import check_writable, confined


@pytest.mark.parametrize(
    "name", ["deepfm-ml1m", "a", "Job_2.v1", "9", "x" * 64, "a..b"]
)
def test_safe_names_are_accepted(name):
    assert name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../x",
        "/abs",
        "a/b",
        "a\\b",
        ".hidden",
        "-rf",
        "x" * 65,
        "white space",
        "nul\x00",
        "名前",
        "job\n",
    ],
)
def test_unsafe_names_are_refused_with_the_rule(name):
    problem = name_problem(name)
    assert problem is not None
    assert "is not a safe name: use 1 to 64 letters, digits" in problem


def test_checkpoint_ids_must_fit_the_file_name_pattern():
    assert checkpoint_id_problem(0) is None
    assert checkpoint_id_problem(MAX_CHECKPOINT_ID) is None
    assert "outside 0..99999999" in checkpoint_id_problem(-1)
    assert "outside 0..99999999" in checkpoint_id_problem(MAX_CHECKPOINT_ID + 1)


def test_confined_paths_stay_inside_their_folder(tmp_path):
    assert confined(tmp_path, "job") == tmp_path.resolve() / "job"
    for escape in ("..", "../x", "/etc", "a/../../b"):
        with pytest.raises(ConfigError, match="outside"):
            confined(tmp_path, escape)


def test_a_symbolic_link_cannot_lead_a_job_folder_elsewhere(tmp_path):
    root, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "job").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match=f"resolves to {elsewhere}, outside"):
        confined(root, "job")


def test_a_file_in_place_of_a_folder_is_refused_naming_it(tmp_path):
    path = tmp_path / "runs"
    path.write_text("not a folder")
    with pytest.raises(ConfigError) as caught:
        check_writable(path, "runs_dir", "job.yaml")
    assert str(caught.value) == (
        f"{path} ('runs_dir' in job.yaml) is not a folder; remove that file or "
        "change runs_dir"
    )


def test_a_missing_folder_is_checked_not_made_and_a_readonly_one_refused(tmp_path):
    missing = tmp_path / "new" / "runs"
    check_writable(missing, "runs_dir", "job.yaml")
    assert not list(tmp_path.iterdir())
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"is not a folder \(.*file\); remove"):
        check_writable(tmp_path / "file" / "runs", "runs_dir", "job.yaml")
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; see the process tests")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="is not a writable folder"):
        check_writable(locked, "output_dir", "alice.yaml")


# Triples (job, version, dataset) whose names joined by dots would collide.
_TRIPLES = [
    ("deepfm.epoch-2", "new", "x"),
    ("deepfm", "epoch-2.new", "x"),
    ("deepfm", "epoch-2", "new.x"),
    ("deepfm", "epoch-2", "new"),
    ("a" * 64, "b" * 64, "c" * 64),
]


@pytest.mark.parametrize("scored", _TRIPLES)
def test_no_job_name_is_a_scoring_run_name(scored):
    run = scoring_run_name(*scored)

    assert run_name_problem(run, scored) is None
    assert any_run_name_problem(run) is None
    assert name_problem(run) is not None
    assert "'+' marks the name of a scoring run" in run_name_problem(run, None)
    # The name a job could take for it is a job's name, never this run's.
    dotted = ".".join(scored)
    assert run_name_problem(dotted, scored) is not None


def test_scoring_runs_of_different_versions_or_datasets_never_share_a_name():
    names = {scoring_run_name(*scored) for scored in _TRIPLES}

    assert len(names) == len(_TRIPLES)
    assert len({".".join(scored) for scored in _TRIPLES[:3]}) == 1


@pytest.mark.parametrize(
    ("run", "needle"),
    [
        ("a+b", "is not a safe name"),
        ("a+b+c+d", "is not a safe name"),
        ("a+..+c", "the scored version: '..' is not a safe name"),
        ("a+b+", "the scored dataset: '' is not a safe name"),
        ("+b+c", "the scored job: '' is not a safe name"),
        ("a+b/c+d", "the scored version: 'b/c' is not a safe name"),
    ],
)
def test_run_names_that_are_neither_a_job_nor_a_scoring_run_are_refused(run, needle):
    assert needle in any_run_name_problem(run)


def test_a_scoring_run_is_named_by_what_it_scores():
    assert run_name_problem("j+v+d", ("j", "v", "d")) is None
    assert "is not the name of this scoring run: 'j+v+e'" in run_name_problem(
        "j+v+d", ("j", "v", "e")
    )
    assert "is not the name of this scoring run" in run_name_problem(
        "j", ("j", "v", "d")
    )
