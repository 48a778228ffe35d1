"""splitrec.config.party and splitrec.config.reader: loading and refusals."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from splitrec.common.errors import ConfigError
from splitrec.config.features import FeatureConfig
from splitrec.config.job import load_job_config
from splitrec.config.party import PartyRole, load_party_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs"

PARTY = {
    "party": "alice",
    "listen": "127.0.0.1:50051",
    "data": {
        "path": "data/alice.csv",
        "id_column": "ID",
        "columns": ["ID", "UserID", "Gender"],
    },
    "features": [
        {"name": "UserID", "type": "hashed", "bins": 100},
        {"name": "Gender", "type": "vocabulary", "vocabulary": ["F", "M"]},
    ],
    "model": {"embedding_dim": 4, "deep_units": [8, 2]},
    "peers": [{"name": "bob", "address": "127.0.0.1:50052"}],
    "tls": {"insecure": True},
}

LABEL_PARTY = {
    "party": "bob",
    "data": {"path": "bob.csv", "columns": ["ID", "MovieID", "Rating"]},
    "features": [{"name": "MovieID", "type": "hashed", "bins": 50}],
    "label": {"column": "Rating", "positive_above": 3},
    "model": {"embedding_dim": 4, "deep_units": [8, 2], "fuse_units": [4]},
    "peers": [{"name": "alice", "address": "127.0.0.1:50051"}],
    "tls": {"insecure": True},
}

JOB = {
    "job": "test-job",
    "parties": [
        {"name": "alice", "address": "127.0.0.1:50051"},
        {"name": "bob", "address": "127.0.0.1:50052"},
    ],
    "label_party": "bob",
    "tls": {"insecure": True},
}


def _write(folder: Path, data: object, name: str = "config.yaml") -> Path:
    path = folder / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def _party(**changes) -> dict:
    data = copy.deepcopy(PARTY)
    data.update(changes)
    return data


def _job(**changes) -> dict:
    data = copy.deepcopy(JOB)
    data.update(changes)
    return data


def _without_position(path: Path, message: str) -> str:
    """The message with the key's line and column left out (the tests of the
    position itself are below, in "where a key error points")."""
    return re.sub(rf"^{re.escape(str(path))}:\d+:\d+: (?=key ')", f"{path}: ", message)


def _party_error(folder: Path, data: object) -> tuple[Path, str]:
    path = _write(folder, data)
    with pytest.raises(ConfigError) as caught:
        load_party_config(path)
    return path, _without_position(path, str(caught.value))


def _job_error(folder: Path, data: object) -> tuple[Path, str]:
    path = _write(folder, data)
    with pytest.raises(ConfigError) as caught:
        load_job_config(path)
    return path, _without_position(path, str(caught.value))


# --- the repository's configs -------------------------------------------------


def test_repository_alice_config_loads_as_the_feature_party():
    config = load_party_config(CONFIGS / "alice.yaml")

    assert config.party == "alice"
    assert config.role is PartyRole.FEATURE
    assert config.labels == ()
    assert config.listen == "127.0.0.1:50051"
    assert config.source == (CONFIGS / "alice.yaml").resolve()
    assert config.data.path == (CONFIGS.parent / "data" / "alice_ml1m.csv").resolve()
    assert config.data.id_column == "ID"
    assert config.data.columns == (
        "ID",
        "UserID",
        "Gender",
        "Age",
        "Occupation",
        "Zip-code",
    )
    kinds = {f.name: (f.kind, f.bins) for f in config.features}
    assert kinds == {
        "UserID": ("hashed", 6040),
        "Gender": ("vocabulary", 0),
        "Age": ("vocabulary", 0),
        "Occupation": ("vocabulary", 0),
    }
    by_name = {f.name: f for f in config.features}
    assert by_name["Gender"].vocabulary == ("F", "M")
    assert by_name["Age"].vocabulary == ("1", "18", "25", "35", "45", "50", "56")
    assert by_name["Occupation"].vocabulary == tuple(str(i) for i in range(21))
    assert config.model.embedding_dim == 8
    assert config.model.deep_units == (256, 32)
    assert config.model.fuse_units == ()
    assert [(p.name, p.address) for p in config.peers] == [("bob", "127.0.0.1:50052")]
    assert config.peer("bob").address == "127.0.0.1:50052"
    assert config.peer("carol") is None
    assert config.output_dir == (CONFIGS.parent / "runs" / "alice").resolve()


def test_repository_bob_config_loads_as_the_label_party():
    config = load_party_config(CONFIGS / "bob.yaml")

    assert config.party == "bob"
    assert config.role is PartyRole.LABEL
    assert config.labels[0].column == "Rating"
    assert config.labels[0].positive_above == 3.0
    assert isinstance(config.labels[0].positive_above, float)
    assert config.data.path == (CONFIGS.parent / "data" / "bob_ml1m.csv").resolve()
    assert "Rating" not in {f.column for f in config.features}
    movie, genres = config.features
    assert (movie.name, movie.kind, movie.bins) == ("MovieID", "hashed", 3952)
    assert (genres.name, genres.kind, genres.separator) == ("Genres", "multi_hot", " ")
    assert len(genres.vocabulary) == 18
    assert genres.vocabulary[:4] == ("Action", "Adventure", "Animation", "Children's")
    assert genres.vocabulary[-1] == "Western"
    assert config.model.fuse_units == (256, 256, 32)
    assert [p.name for p in config.peers] == ["alice"]
    assert config.output_dir == (CONFIGS.parent / "runs" / "bob").resolve()


def test_repository_job_config_loads_the_reference_settings():
    config = load_job_config(CONFIGS / "job.yaml")

    assert config.job == "deepfm-ml1m"
    assert [(p.name, p.address) for p in config.parties] == [
        ("alice", "127.0.0.1:50051"),
        ("bob", "127.0.0.1:50052"),
    ]
    assert config.label_party == "bob"
    assert (config.epochs, config.batch_size, config.seed) == (5, 128, 1234)
    assert (config.optimizer, config.learning_rate) == ("adam", 0.001)
    assert config.validation_fraction == 0.1
    assert config.steps_per_window == 0
    assert config.report_every == 50
    assert config.predict == "validation"
    assert config.export == "auto"
    assert config.runs_dir == (CONFIGS.parent / "runs").resolve()
    assert config.connect_timeout == 30.0
    assert isinstance(config.connect_timeout, float)
    assert config.rpc_timeout == 120.0
    assert config.party("bob").address == "127.0.0.1:50052"


# --- small configs: values and defaults ---------------------------------------


def test_relative_paths_are_resolved_from_the_config_folder(tmp_path):
    folder = tmp_path / "cfg"
    folder.mkdir()
    path = _write(folder, _party(output_dir="../out"))

    config = load_party_config(path)

    assert config.data.path == folder / "data" / "alice.csv"
    assert config.output_dir == tmp_path / "out"
    assert config.source == path


def test_absolute_data_path_is_kept(tmp_path):
    data = _party()
    data["data"]["path"] = "/srv/data/alice.csv"

    config = load_party_config(_write(tmp_path, data))

    assert config.data.path == Path("/srv/data/alice.csv")


def test_party_defaults_apply_when_keys_are_left_out(tmp_path):
    data = _party()
    del data["listen"]
    del data["peers"]
    data["data"] = {"path": "a.csv"}
    data["model"] = {}

    config = load_party_config(_write(tmp_path, data))

    assert config.listen == "127.0.0.1:0"
    assert config.peers == ()
    assert config.data.id_column == "ID"
    assert config.data.columns == ()
    assert config.model.embedding_dim == 8
    assert config.model.deep_units == (256, 32)
    assert config.model.fuse_units == ()
    assert config.output_dir == tmp_path / "runs"


def test_feature_defaults_column_to_its_name_and_separator_to_space(tmp_path):
    data = _party()
    data["features"].append(
        {"name": "Genre", "column": "Gender", "type": "multi_hot", "vocabulary": ["A"]}
    )

    config = load_party_config(_write(tmp_path, data))

    assert config.features[0] == FeatureConfig(
        name="UserID", column="UserID", kind="hashed", bins=100
    )
    assert config.features[2].column == "Gender"
    assert config.features[2].separator == " "


def test_label_party_gets_fuse_units_and_integer_threshold_as_float(tmp_path):
    config = load_party_config(_write(tmp_path, LABEL_PARTY))

    assert config.role is PartyRole.LABEL
    assert config.labels[0].positive_above == 3.0
    assert config.model.fuse_units == (4,)


def test_job_defaults_apply_when_keys_are_left_out(tmp_path):
    config = load_job_config(_write(tmp_path, JOB))

    assert (config.epochs, config.batch_size, config.seed) == (5, 128, 1234)
    assert (config.optimizer, config.learning_rate) == ("adam", 1e-3)
    assert config.validation_fraction == 0.1
    assert config.runs_dir == tmp_path / "runs"
    assert config.source == tmp_path / "config.yaml"


# --- file-level errors --------------------------------------------------------


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.yaml"

    with pytest.raises(ConfigError) as caught:
        load_party_config(path)

    assert str(caught.value) == f"{path}: config file not found"


def test_bad_yaml_names_file_line_and_column(tmp_path):
    # Prepare: the flow mapping opened on line 2 is never closed; the parser
    # stops at the ':' of line 3, column 9.
    text = "party: alice\ndata: {path: x.csv\nfeatures: []\n"

    path, message = _party_error(tmp_path, text)

    assert message.startswith(f"{path}:3:9: not valid YAML")


def test_tab_indentation_error_names_line_and_column(tmp_path):
    text = "party: alice\ndata:\n\tpath: x.csv\n"

    path, message = _party_error(tmp_path, text)

    assert re.match(rf"{re.escape(str(path))}:3:1: not valid YAML", message)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", ""])
def test_top_level_that_is_not_a_mapping_is_refused(tmp_path, text):
    path, message = _party_error(tmp_path, text)

    assert message == f"{path}: the top level must be a mapping of keys to values"


def test_non_utf8_config_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"party: al\xffice\n")

    with pytest.raises(ConfigError) as caught:
        load_party_config(path)

    assert str(caught.value).startswith(f"{path}: cannot read config file")


# --- party config: key errors -------------------------------------------------


def test_unknown_top_level_key_is_named(tmp_path):
    path, message = _party_error(tmp_path, _party(bogus=1))

    assert message.startswith(f"{path}: key 'bogus': unknown key;")
    assert "data" in message and "features" in message


def test_an_unknown_key_lists_the_keys_allowed_there_not_those_written(tmp_path):
    path, message = _party_error(tmp_path, _party(datasets={}, outptu_dir="x"))

    assert message.startswith(
        f"{path}: key 'outptu_dir': unknown key; did you mean 'output_dir'? the "
        "keys allowed here are: "
    )
    allowed = message.split("the keys allowed here are: ")[1].split(", ")
    # Keys this file does not write are listed too; the unknown one is not.
    assert {"output_dir", "label", "labels", "serving", "datasets"} <= set(allowed)
    assert "outptu_dir" not in allowed


def test_an_unknown_key_in_a_job_section_lists_that_section_s_keys(tmp_path):
    path, message = _job_error(tmp_path, _job(recovery={"attempts": 3}))

    assert message == (
        f"{path}: key 'recovery.attempts': unknown key; did you mean "
        "'max_attempts'? the keys allowed here are: max_attempts, timeout"
    )


def test_unknown_nested_feature_key_is_named_with_its_index(tmp_path):
    data = _party()
    data["features"][1]["bogus"] = 3

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'features[1].bogus': unknown key;")
    assert "name" in message and "vocabulary" in message


def test_unknown_key_in_a_section_is_named_with_the_section(tmp_path):
    data = _party()
    data["model"]["dropout"] = 0.5

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'model.dropout': unknown key")


def test_fuse_units_on_a_feature_party_is_refused(tmp_path):
    data = _party()
    data["model"]["fuse_units"] = [4]

    path, message = _party_error(tmp_path, data)

    assert message == (
        f"{path}: key 'model.fuse_units': is a setting of the fuse, which only "
        "the label party has; remove it"
    )


def test_model_family_defaults_to_deepfm_and_is_read(tmp_path):
    assert load_party_config(_write(tmp_path, _party())).model.family == "deepfm"
    data = _party()
    data["model"]["family"] = "wide_deep"

    assert load_party_config(_write(tmp_path, data)).model.family == "wide_deep"


def test_a_custom_model_reads_its_own_keys(tmp_path):
    data = _party()
    data["model"] = {
        "family": "custom",
        "code": "models",
        "base": "pkg.net:build",
        "output_width": 12,
    }

    model = load_party_config(_write(tmp_path, data)).model

    assert (model.family, model.base, model.output_width) == (
        "custom",
        "pkg.net:build",
        12,
    )
    assert model.code == tmp_path / "models"


@pytest.mark.parametrize(
    ("model", "key", "problem"),
    [
        ({"base": "a:b"}, "output_width", "missing; add the width"),
        ({"base": "nocolon", "output_width": 4}, "base", "is not 'module:function'"),
        ({"base": "a-b:c", "output_width": 4}, "base", "is not 'module:function'"),
        (
            {"base": "a:b", "output_width": 4, "deep_units": [4]},
            "deep_units",
            "belongs to model family bst / deepfm / dnn / mmoe / wide_deep, not "
            "custom; remove it",
        ),
        (
            {"base": "a:b", "output_width": 4, "fuse": "a:c"},
            "fuse",
            "is a setting of the fuse, which only the label party has",
        ),
    ],
)
def test_custom_model_keys_are_checked(tmp_path, model, key, problem):
    data = _party()
    data["model"] = {"family": "custom", **model}

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'model.{key}': ")
    assert problem in message


@pytest.mark.parametrize("aggregation", ["concat", "sum", "average"])
def test_the_fuse_aggregation_is_read_at_the_label_party(tmp_path, aggregation):
    data = copy.deepcopy(LABEL_PARTY)
    data["model"].update(family="dnn", aggregation=aggregation)

    assert load_party_config(_write(tmp_path, data)).model.aggregation == aggregation
    assert load_party_config(_write(tmp_path, LABEL_PARTY)).model.aggregation == (
        "concat"
    )


@pytest.mark.parametrize(
    ("family", "aggregation", "problem"),
    [
        ("dnn", "max", "unknown aggregation 'max'; use one of"),
        ("deepfm", "sum", "a deepfm fuse combines the parts of every base output"),
        ("wide_deep", "average", "takes them only side by side (concat)"),
    ],
)
def test_an_aggregation_the_fuse_cannot_do_is_refused(
    tmp_path, family, aggregation, problem
):
    data = copy.deepcopy(LABEL_PARTY)
    data["model"].update(family=family, aggregation=aggregation)

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'model.aggregation': ")
    assert problem in message


def test_aggregation_on_a_feature_party_is_refused(tmp_path):
    data = _party()
    data["model"].update(family="dnn", aggregation="sum")

    path, message = _party_error(tmp_path, data)

    assert message == (
        f"{path}: key 'model.aggregation': is a setting of the fuse, which only "
        "the label party has; remove it"
    )


def test_a_key_of_another_family_is_refused_naming_it(tmp_path):
    data = _party()
    data["model"]["base"] = "a:b"

    path, message = _party_error(tmp_path, data)

    assert message == (
        f"{path}: key 'model.base': belongs to model family custom, not deepfm; "
        "remove it"
    )


def test_an_unknown_model_family_is_refused_with_the_choices(tmp_path):
    data = _party()
    data["model"]["family"] = "xgboost"

    path, message = _party_error(tmp_path, data)

    assert message == (
        f"{path}: key 'model.family': unknown model family 'xgboost'; use one of "
        "['bst', 'custom', 'deepfm', 'dnn', 'mmoe', 'wide_deep']"
    )


def test_missing_top_level_key_is_named_with_its_type(tmp_path):
    data = _party()
    del data["party"]

    path, message = _party_error(tmp_path, data)

    assert message == f"{path}: key 'party': missing; add it as a string"


def test_missing_nested_key_is_named_with_its_path(tmp_path):
    data = _party()
    del data["peers"][0]["address"]

    path, message = _party_error(tmp_path, data)

    assert message == f"{path}: key 'peers[0].address': missing; add it as a string"


def test_missing_section_message_is_readable(tmp_path):
    data = _party()
    del data["model"]

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'model': missing")
    assert "<class" not in message


def _set(data: dict, where: tuple, value: object) -> None:
    """Sets ``data[where[0]][where[1]]...`` to ``value``."""
    for step in where[:-1]:
        data = data[step]
    data[where[-1]] = value


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        (("model", "embedding_dim"), "8", "an integer, got '8'"),
        (("model", "embedding_dim"), True, "an integer, got True"),
        (("features", 0, "bins"), True, "an integer, got True"),
        (("features", 0, "bins"), 1.5, "an integer, got 1.5"),
        (("party",), 7, "a string, got 7"),
        (("data",), ["ID"], "a mapping, got ['ID']"),
        (("features",), {"name": "x"}, "a list, got {'name': 'x'}"),
    ],
    ids=[
        "string-for-int",
        "bool-for-int",
        "bool-for-bins",
        "float-for-int",
        "int-for-string",
        "list-for-mapping",
        "mapping-for-list",
    ],
)
def test_wrong_type_is_named_with_key_and_value(tmp_path, where, value, expected):
    data = _party()
    _set(data, where, value)
    key = ".".join(f"[{w}]" if isinstance(w, int) else w for w in where)
    key = key.replace(".[", "[")

    path, message = _party_error(tmp_path, data)

    assert message == f"{path}: key '{key}': must be {expected}"


def test_list_item_that_is_not_a_mapping_is_named(tmp_path):
    data = _party()
    data["features"][1] = "Gender"

    path, message = _party_error(tmp_path, data)

    assert message == f"{path}: key 'features[1]': must be a mapping"


def test_bool_for_a_float_threshold_is_refused(tmp_path):
    data = copy.deepcopy(LABEL_PARTY)
    data["label"]["positive_above"] = True

    path, message = _party_error(tmp_path, data)

    assert message == f"{path}: key 'label.positive_above': must be a number, got True"


@pytest.mark.parametrize(
    ("units", "index"), [([8, 0], 1), ([True], 0), (["8"], 0), ([-2, 4], 0)]
)
def test_deep_units_must_be_positive_integers(tmp_path, units, index):
    data = _party()
    data["model"]["deep_units"] = units

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'model.deep_units[{index}]': ")
    assert "an integer in [1, 65536]" in message


def test_embedding_dim_zero_is_refused(tmp_path):
    data = _party()
    data["model"]["embedding_dim"] = 0

    path, message = _party_error(tmp_path, data)

    assert message == (
        f"{path}: key 'model.embedding_dim': 0 is outside the allowed range: "
        "an integer in [1, 1024]"
    )


# --- party config: feature and consistency errors -----------------------------


def test_unknown_feature_type_is_refused(tmp_path):
    data = _party()
    data["features"][1]["type"] = "embedding"

    path, message = _party_error(tmp_path, data)

    assert message.startswith(
        f"{path}: key 'features[1].type': unknown feature type 'embedding'; use one of"
    )
    assert "'hashed'" in message and "'multi_hot'" in message


@pytest.mark.parametrize("bins", [None, 0, -5])
def test_hashed_feature_without_positive_bins_is_refused(tmp_path, bins):
    data = _party()
    if bins is None:
        del data["features"][0]["bins"]
    else:
        data["features"][0]["bins"] = bins

    path, message = _party_error(tmp_path, data)

    if bins is None:
        assert message == (
            f"{path}: key 'features[0].bins': "
            "a hashed feature needs 'bins', a positive integer"
        )
    else:
        assert message == (
            f"{path}: key 'features[0].bins': {bins} is outside the allowed range: "
            "an integer in [1, 100000000]"
        )


@pytest.mark.parametrize("kind", ["vocabulary", "multi_hot"])
def test_vocabulary_feature_without_vocabulary_is_refused(tmp_path, kind):
    data = _party()
    data["features"][1] = {"name": "Gender", "type": kind}

    path, message = _party_error(tmp_path, data)

    assert message == (
        f"{path}: key 'features[1].vocabulary': "
        f"a {kind} feature needs a non-empty 'vocabulary' list"
    )


def test_vocabulary_with_a_repeated_value_is_refused(tmp_path):
    # Prepare: 1 and "1" are the same value once read as strings.
    data = _party()
    data["features"][1]["vocabulary"] = [1, "1"]

    path, message = _party_error(tmp_path, data)

    assert (
        message == f"{path}: key 'features[1].vocabulary': holds the same value twice"
    )


def test_vocabulary_item_that_is_a_list_is_refused(tmp_path):
    data = _party()
    data["features"][1]["vocabulary"] = ["F", ["M"]]

    path, message = _party_error(tmp_path, data)

    assert message == f"{path}: key 'features[1].vocabulary[1]': must be a plain value"


def test_numeric_vocabulary_values_are_read_as_strings(tmp_path):
    data = _party()
    data["features"][1]["vocabulary"] = [1, 18, 25]

    config = load_party_config(_write(tmp_path, data))

    assert config.features[1].vocabulary == ("1", "18", "25")


def test_yes_no_vocabulary_is_kept_or_refused(tmp_path):
    # Prepare: unquoted yes/no are booleans in YAML 1.1 (PyYAML).
    path = _write(
        tmp_path,
        "party: alice\n"
        "data: {path: a.csv}\n"
        "features:\n"
        "  - {name: Smoker, type: vocabulary, vocabulary: [yes, no]}\n"
        "model: {}\n",
    )

    try:
        config = load_party_config(path)
    except ConfigError:
        return  # refusing with a "quote the value" message is also fine
    assert config.features[0].vocabulary == ("yes", "no")


def test_label_column_used_as_a_feature_is_refused(tmp_path):
    data = copy.deepcopy(LABEL_PARTY)
    data["features"].append(
        {"name": "Stars", "column": "Rating", "type": "hashed", "bins": 5}
    )

    path, message = _party_error(tmp_path, data)

    assert message == (
        f"{path}: key 'label.column': "
        "'Rating' is a label; it must not be a feature column"
    )


def test_label_column_used_as_a_feature_by_name_is_refused(tmp_path):
    data = copy.deepcopy(LABEL_PARTY)
    data["features"].append({"name": "Rating", "type": "hashed", "bins": 5})

    path, message = _party_error(tmp_path, data)

    assert "key 'label.column'" in message and str(path) in message


def test_id_column_used_as_a_feature_is_refused(tmp_path):
    data = _party()
    data["features"].append({"name": "ID", "type": "hashed", "bins": 5})

    path, message = _party_error(tmp_path, data)

    assert message == (
        f"{path}: key 'data.id_column': the row ID column must not be a feature"
    )


def test_id_column_not_among_the_columns_is_refused(tmp_path):
    data = _party()
    data["data"]["id_column"] = "RowID"

    path, message = _party_error(tmp_path, data)

    assert message == f"{path}: key 'data.id_column': 'RowID' is not in 'columns'"


def test_duplicate_feature_names_are_refused(tmp_path):
    data = _party()
    data["features"].append({"name": "Gender", "type": "hashed", "bins": 2})

    path, message = _party_error(tmp_path, data)

    assert message == f"{path}: key 'features': feature names used twice: ['Gender']"


def test_empty_feature_list_is_refused_at_a_feature_party(tmp_path):
    path, message = _party_error(tmp_path, _party(features=[]))

    assert message == (
        f"{path}: key 'features': list at least one feature (only the label party "
        "may hold no features, its labels alone)"
    )
    data = _party()
    del data["features"]
    path, message = _party_error(tmp_path, data)
    assert message.startswith(f"{path}: key 'features': missing")


@pytest.mark.parametrize("features", [[], None])
def test_a_label_party_may_hold_labels_alone(tmp_path, features):
    data = copy.deepcopy(LABEL_PARTY)
    data["data"]["columns"] = ["ID", "Rating"]
    if features is None:
        del data["features"]
    else:
        data["features"] = features

    config = load_party_config(_write(tmp_path, data))

    assert config.features == ()
    assert config.labels[0].column == "Rating"


def test_party_listing_itself_as_a_peer_is_refused(tmp_path):
    data = _party()
    data["peers"].append({"name": "alice", "address": "127.0.0.1:1"})

    path, message = _party_error(tmp_path, data)

    assert message == f"{path}: key 'peers': lists the party itself ('alice')"


# --- job config ---------------------------------------------------------------


def test_job_label_party_not_among_parties_is_refused(tmp_path):
    path, message = _job_error(tmp_path, _job(label_party="carol"))

    assert message == (
        f"{path}: key 'label_party': 'carol' is not a party: ['alice', 'bob']"
    )


def test_job_with_a_party_listed_twice_is_refused(tmp_path):
    data = _job()
    data["parties"].append({"name": "alice", "address": "127.0.0.1:9"})

    path, message = _job_error(tmp_path, data)

    assert message == (
        f"{path}: key 'parties': a party is listed twice: ['alice', 'bob', 'alice']"
    )


def test_job_with_one_party_is_refused(tmp_path):
    data = _job()
    data["parties"] = data["parties"][1:]

    path, message = _job_error(tmp_path, data)

    assert message == f"{path}: key 'parties': a split job needs at least two parties"


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.5, -0.1])
def test_job_validation_fraction_out_of_range_is_refused(tmp_path, fraction):
    path, message = _job_error(tmp_path, _job(validation_fraction=fraction))

    assert message == (
        f"{path}: key 'validation_fraction': {float(fraction):g} is outside the "
        "allowed range: a number in (0, 0.99]"
    )


def test_job_unknown_optimizer_is_refused(tmp_path):
    data = _job(optimizer={"name": "rmsprop", "learning_rate": 0.01})

    path, message = _job_error(tmp_path, data)

    assert message == (
        f"{path}: key 'optimizer.name': use one of ['adagrad', 'adam', 'sgd']"
    )


def test_job_unknown_optimizer_key_is_refused(tmp_path):
    data = _job(optimizer={"name": "adam", "momentum": 0.9})

    path, message = _job_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'optimizer.momentum': unknown key")


@pytest.mark.parametrize("key", ["epochs", "batch_size", "report_every"])
def test_job_zero_counts_are_refused(tmp_path, key):
    path, message = _job_error(tmp_path, _job(**{key: 0}))

    assert message.startswith(f"{path}: key '{key}': 0 is outside the allowed range")


def test_job_epochs_of_wrong_type_is_refused(tmp_path):
    path, message = _job_error(tmp_path, _job(epochs="five"))

    assert message == f"{path}: key 'epochs': must be an integer, got 'five'"


def test_job_negative_steps_per_window_is_refused(tmp_path):
    path, message = _job_error(tmp_path, _job(steps_per_window=-1))

    assert message == (
        f"{path}: key 'steps_per_window': -1 is outside the allowed range: an "
        "integer in [0, 2147483647]"
    )


def test_job_non_positive_learning_rate_is_refused(tmp_path):
    data = _job(optimizer={"name": "sgd", "learning_rate": 0})

    path, message = _job_error(tmp_path, data)

    assert message == (
        f"{path}: key 'optimizer.learning_rate': 0 is outside the allowed range: a "
        "number in (0, 10]"
    )


def test_job_unknown_predict_split_is_refused(tmp_path):
    path, message = _job_error(tmp_path, _job(predict="test"))

    assert message.startswith(f"{path}: key 'predict': use one of")


@pytest.mark.parametrize("version", ["../x", "a/b", "", "-x"])
def test_job_export_version_must_be_a_safe_name(tmp_path, version):
    path, message = _job_error(tmp_path, _job(export=version))

    assert message.startswith(f"{path}: key 'export': auto, none or a model version")


def test_job_init_from_names_another_jobs_version(tmp_path):
    path = _write(tmp_path, _job(init_from={"job": "older", "version": "epoch-3"}))
    config = load_job_config(path)
    assert (config.init_job, config.init_version) == ("older", "epoch-3")


@pytest.mark.parametrize(
    ("init_from", "expected"),
    [
        ({"job": "test-job", "version": "v"}, "a job cannot start from its own"),
        ({"job": "older"}, "key 'init_from.version': missing"),
        ({"job": "older", "version": "../v"}, "key 'init_from.version': '../v' is"),
        ({"job": "older", "version": "v", "epoch": 2}, "'init_from.epoch'"),
    ],
)
def test_job_init_from_is_checked(tmp_path, init_from, expected):
    _, message = _job_error(tmp_path, _job(init_from=init_from))
    assert expected in message


def test_party_datasets_are_keyed_by_safe_names(tmp_path):
    path = _write(tmp_path, _party(datasets={"december": "data/dec.csv"}))
    assert load_party_config(path).datasets == {"december": tmp_path / "data/dec.csv"}
    _, message = _party_error(tmp_path, _party(datasets={"../x": "a.csv"}))
    assert "key 'datasets.../x': a dataset key '../x' is not a safe name" in message


def test_job_unknown_top_level_key_is_refused(tmp_path):
    path, message = _job_error(tmp_path, _job(epoch=3))

    assert message.startswith(f"{path}: key 'epoch': unknown key")


# --- privacy --------------------------------------------------------------------


def test_privacy_section_reads_every_mechanism(tmp_path):
    privacy = {
        "embedding_dp": {"clip_norm": 2, "noise_multiplier": 0.5},
        "label_dp": {"epsilon": 3},
        "gradient_defense": {"method": "iso", "scale": 4},
        "leakage_probe": True,
    }
    config = load_job_config(_write(tmp_path, _job(privacy=privacy)))
    settings = config.privacy
    assert (settings.clip_norm, settings.noise_multiplier, settings.delta) == (
        2.0,
        0.5,
        1e-5,
    )
    assert settings.label_epsilon == 3.0 and settings.label_dp
    assert (settings.gradient_defense, settings.defense_scale) == ("iso", 4.0)
    assert settings.leakage_probe and settings.embedding_dp
    # By default embedding DP noises the training forwards only.
    assert settings.dp_releases == "training" and not settings.noises_every_release
    privacy["embedding_dp"]["releases"] = "all"
    config = load_job_config(_write(tmp_path, _job(privacy=privacy)))
    assert config.privacy.dp_releases == "all" and config.privacy.noises_every_release


def test_privacy_is_off_without_the_section(tmp_path):
    settings = load_job_config(_write(tmp_path, _job())).privacy
    assert not settings.embedding_dp and not settings.label_dp
    assert settings.gradient_defense == "none" and not settings.leakage_probe


@pytest.mark.parametrize(
    ("privacy", "key", "message"),
    [
        (
            {"embedding_dp": {"clip_norm": 0, "noise_multiplier": 1}},
            "privacy.embedding_dp.clip_norm",
            "greater than 0",
        ),
        (
            {"embedding_dp": {"clip_norm": 1}},
            "privacy.embedding_dp.noise_multiplier",
            "missing",
        ),
        (
            {"embedding_dp": {"clip_norm": 1, "noise_multiplier": -1}},
            "privacy.embedding_dp.noise_multiplier",
            "0 or more",
        ),
        (
            {"embedding_dp": {"clip_norm": 1, "noise_multiplier": 1, "delta": 2}},
            "privacy.embedding_dp.delta",
            "(0, 1)",
        ),
        (
            {"embedding_dp": {"clip_norm": 1, "noise_multiplier": 1, "releases": "x"}},
            "privacy.embedding_dp.releases",
            "'x': use training (the training forwards only) or all",
        ),
        ({"label_dp": {"epsilon": 0}}, "privacy.label_dp.epsilon", "greater than 0"),
        (
            {"gradient_defense": {"method": "marvell"}},
            "privacy.gradient_defense.method",
            "use one of",
        ),
        (
            {"gradient_defense": {"method": "iso", "scale": 0}},
            "privacy.gradient_defense.scale",
            "greater than 0",
        ),
        ({"leakage": True}, "privacy.leakage", "unknown key"),
        (
            {"gradient_defense": {"method": "iso", "scale": float("inf")}},
            "privacy.gradient_defense.scale",
            "finite number",
        ),
    ],
)
def test_bad_privacy_values_name_the_key(tmp_path, privacy, key, message):
    path, error = _job_error(tmp_path, _job(privacy=privacy))
    assert str(path) in error and f"'{key}'" in error and message in error, error


# --- names, duplicate keys, ranges ----------------------------------------------


@pytest.mark.parametrize("name", ["../x", "/tmp/evil", "a/b", "..", "", "x" * 65])
def test_job_name_must_be_a_safe_path_component(tmp_path, name):
    path, message = _job_error(tmp_path, _job(job=name))

    assert message.startswith(f"{path}: key 'job': ")
    assert "is not a safe name: use 1 to 64 letters, digits" in message


def test_a_job_named_like_a_scoring_run_is_told_why(tmp_path):
    path, message = _job_error(tmp_path, _job(job="jobs+epoch-1+new"))

    assert message.startswith(f"{path}: key 'job': 'jobs+epoch-1+new' is not a safe")
    assert message.endswith("('+' marks the name of a scoring run)")


def test_party_names_must_be_safe_in_every_config(tmp_path):
    path, message = _party_error(tmp_path, _party(party="../alice"))
    assert message.startswith(f"{path}: key 'party': '../alice' is not a safe name")
    parties = [{"name": "alice", "address": "a:1"}, {"name": "b/ob", "address": "b:1"}]
    path, message = _job_error(tmp_path, _job(parties=parties))
    assert message.startswith(f"{path}: key 'parties[1].name': 'b/ob' is not a safe")


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "job.yaml"
    text = yaml.safe_dump(_job(epochs=3), sort_keys=False)
    path.write_text(text + "epochs: 7\n")
    lines = text.splitlines()
    first = 1 + next(i for i, line in enumerate(lines) if line.startswith("epochs"))

    with pytest.raises(ConfigError) as caught:
        load_job_config(path)

    message = str(caught.value)
    assert message.startswith(f"{path}:{len(lines) + 1}:1: not valid YAML")
    assert f"key 'epochs' appears twice in one mapping (first on line {first})" in (
        message
    )


def test_a_nested_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        yaml.safe_dump(_job(), sort_keys=False)
        + "checkpoint:\n  every_steps: 10\n  every_steps: 20\n"
    )
    with pytest.raises(ConfigError, match="key 'every_steps' appears twice"):
        load_job_config(path)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1.0e+400"])
def test_non_finite_numbers_are_refused_with_the_key(tmp_path, value):
    path = tmp_path / "job.yaml"
    data = _job()
    data["rpc_timeout"] = "PLACEHOLDER"
    text = yaml.safe_dump(data, sort_keys=False).replace("PLACEHOLDER", value)
    path.write_text(text)
    line = text.splitlines().index(f"rpc_timeout: {value}") + 1

    with pytest.raises(ConfigError) as caught:
        load_job_config(path)

    assert str(caught.value).startswith(
        f"{path}:{line}:1: key 'rpc_timeout': must be a finite"
    )


@pytest.mark.parametrize(
    ("changes", "key", "text"),
    [
        ({"seed": -1}, "seed", "-1 is outside the allowed range: an integer in [0, "),
        ({"epochs": 10**6}, "epochs", "an integer in [1, 100000]"),
        ({"rpc_timeout": 0}, "rpc_timeout", "a number in (0, 604800]"),
        ({"connect_timeout": -5}, "connect_timeout", "-5 is outside"),
        ({"align_timeout": 10**9}, "align_timeout", "1000000000 is outside"),
        ({"strategy": {"pipeline_size": 100}}, "strategy.pipeline_size", "[1, 64]"),
        ({"checkpoint": {"keep": 0}}, "checkpoint.keep", "an integer in [1, 1000]"),
        ({"recovery": {"timeout": 0}}, "recovery.timeout", "0 is outside"),
        ({"recovery": {"max_attempts": -1}}, "recovery.max_attempts", "-1 is"),
        ({"optimizer": {"learning_rate": 1e9}}, "optimizer.learning_rate", "(0, 10]"),
        ({"batch_size": 2**40}, "batch_size", "an integer in [1, 1000000]"),
    ],
)
def test_out_of_range_numbers_name_the_key_the_value_and_the_range(
    tmp_path, changes, key, text
):
    path, message = _job_error(tmp_path, _job(**changes))

    assert message.startswith(f"{path}: key '{key}': ")
    assert text in message


def test_an_empty_multi_hot_separator_is_refused(tmp_path):
    data = _party()
    data["features"].append(
        {"name": "G", "column": "Gender", "type": "multi_hot", "vocabulary": ["F"]}
    )
    data["features"][-1]["separator"] = ""
    path, message = _party_error(tmp_path, data)
    assert message.startswith(f"{path}: key 'features[")
    assert "separator': must not be empty" in message


def _with_history(**history) -> dict:
    data = copy.deepcopy(LABEL_PARTY)
    data["data"]["columns"] = ["ID", "MovieID", "History", "Rating"]
    data["features"].append({"name": "History", "type": "sequence", **history})
    return data


def test_a_sequence_feature_is_read_with_its_length_and_shared_table(tmp_path):
    data = _with_history(max_length=4, shares="MovieID")

    [movie, history] = load_party_config(_write(tmp_path, data)).features

    assert (history.kind, history.max_length, history.shares) == (
        "sequence",
        4,
        "MovieID",
    )
    assert (history.separator, history.padding) == (" ", "0")


@pytest.mark.parametrize(
    ("history", "key", "problem"),
    [
        ({"shares": "MovieID"}, "max_length", "needs 'max_length'"),
        ({"max_length": 0, "shares": "MovieID"}, "max_length", "outside"),
        ({"max_length": 4}, "shares", "encodes its tokens one way"),
        ({"max_length": 4, "shares": "MovieID", "bins": 9}, "bins", "one way"),
        ({"max_length": 4, "bins": 0}, "bins", "outside"),
        ({"max_length": 4, "vocabulary": []}, "vocabulary", "must not be empty"),
        ({"max_length": 4, "shares": "Title"}, "shares", "'Title' is not an index"),
        ({"max_length": 4, "shares": "History"}, "shares", "is not an index"),
    ],
)
def test_sequence_feature_keys_are_checked(tmp_path, history, key, problem):
    path, message = _party_error(tmp_path, _with_history(**history))

    assert message.startswith(f"{path}: key 'features[1].{key}': "), message
    assert problem in message


def test_the_bst_job_configs_load():
    alice = load_party_config(CONFIGS / "bst" / "alice.yaml")
    bob = load_party_config(CONFIGS / "bst" / "bob.yaml")
    job = load_job_config(CONFIGS / "bst" / "job.yaml")

    assert (alice.model.family, bob.model.family) == ("dnn", "bst")
    assert bob.data.path == (CONFIGS.parent / "data" / "bob_bst.csv").resolve()
    [history] = [f for f in bob.features if f.kind == "sequence"]
    assert (history.max_length, history.shares) == (4, "MovieID")
    assert (bob.model.attention_heads, bob.model.transformer_blocks) == (2, 1)
    assert job.job == "bst-ml1m"
    assert job.runs_dir == (CONFIGS.parent / "runs").resolve()


@pytest.mark.parametrize(
    ("model", "key", "problem"),
    [
        ({"attention_heads": 3}, "attention_heads", "3 heads do not divide"),
        ({"attention_heads": 0}, "attention_heads", "outside"),
        ({"transformer_blocks": 0}, "transformer_blocks", "outside"),
    ],
)
def test_bst_keys_are_checked(tmp_path, model, key, problem):
    data = copy.deepcopy(LABEL_PARTY)
    data["model"].update(family="bst", **model)

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'model.{key}': "), message
    assert problem in message


def test_a_bst_key_on_another_family_is_refused(tmp_path):
    data = _party()
    data["model"]["attention_heads"] = 2

    path, message = _party_error(tmp_path, data)

    assert message == (
        f"{path}: key 'model.attention_heads': belongs to model family bst, not "
        "deepfm; remove it"
    )


def test_a_numeric_feature_is_read_with_its_fill_indicator_and_scaling(tmp_path):
    data = _party()
    data["features"].append(
        {"name": "Hours", "type": "numeric", "fill": -1, "indicator": True}
    )
    data["features"].append({"name": "Gain", "type": "numeric", "scale": "minmax"})

    hours, gain = load_party_config(_write(tmp_path, data)).features[-2:]

    assert (hours.kind, hours.fill, hours.indicator, hours.scale) == (
        "numeric",
        -1.0,
        True,
        "standard",
    )
    assert (gain.fill, gain.indicator, gain.scale) == (0.0, False, "minmax")


@pytest.mark.parametrize(
    ("numeric", "key", "problem"),
    [
        ({"scale": "log"}, "scale", "unknown scaling 'log'; use one of"),
        ({"fill": "zero"}, "fill", "must be"),
        ({"fill": float("inf")}, "fill", "finite"),
        ({"indicator": "yes"}, "indicator", "must be"),
        (
            {"bins": 3},
            "bins",
            "is a setting of hashed / sequence features, not numeric",
        ),
    ],
)
def test_numeric_feature_keys_are_checked(tmp_path, numeric, key, problem):
    data = _party()
    data["features"].append({"name": "Hours", "type": "numeric", **numeric})

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'features[2].{key}': "), message
    assert problem in message


def test_a_sequence_cannot_share_a_numeric_feature(tmp_path):
    data = _with_history(max_length=2, shares="Price")
    data["features"].insert(0, {"name": "Price", "type": "numeric"})

    path, message = _party_error(tmp_path, data)

    assert "'Price' is not an index feature" in message


def test_a_label_may_be_a_text_that_equals_a_value(tmp_path):
    data = copy.deepcopy(LABEL_PARTY)
    data["label"] = {"column": "Rating", "equals": ">50K"}

    label = load_party_config(_write(tmp_path, data)).labels[0]

    assert (label.equals, label.positive_above, label.rule) == (
        ">50K",
        None,
        "Rating = >50K",
    )


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ({"column": "Rating"}, "positive_above"),
        ({"column": "Rating", "positive_above": 3, "equals": "5"}, "equals"),
    ],
)
def test_a_label_needs_exactly_one_rule(tmp_path, label, key):
    data = copy.deepcopy(LABEL_PARTY)
    data["label"] = label

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'label.{key}': give the label one rule")


def test_secure_aggregation_is_read_from_the_mapping_form(tmp_path):
    data = copy.deepcopy(LABEL_PARTY)
    data["model"].update(
        family="dnn", aggregation={"method": "average", "secure": True}
    )
    model = load_party_config(_write(tmp_path, data)).model
    assert (model.aggregation, model.secure_aggregation) == ("average", True)
    data["model"]["aggregation"] = {"method": "sum"}
    model = load_party_config(_write(tmp_path, data)).model
    assert (model.aggregation, model.secure_aggregation) == ("sum", False)


@pytest.mark.parametrize(
    ("aggregation", "key", "problem"),
    [
        ({"method": "concat", "secure": True}, "secure", "cannot take them side by"),
        ({"secure": True}, "method", "missing; use sum or average"),
        ({"method": "sum", "secure": "yes"}, "secure", "must be"),
        ({"method": "sum", "safe": True}, "safe", "unknown key"),
        ({"method": "max", "secure": True}, "method", "unknown aggregation 'max'"),
    ],
)
def test_a_bad_secure_aggregation_is_refused(tmp_path, aggregation, key, problem):
    data = copy.deepcopy(LABEL_PARTY)
    data["model"].update(family="dnn", aggregation=aggregation)

    path, message = _party_error(tmp_path, data)

    assert message.startswith(f"{path}: key 'model.aggregation.{key}': ")
    assert problem in message


@pytest.mark.parametrize(
    ("changes", "key", "needle"),
    [
        ({"listen": "127.0.0.1:70000"}, "listen", "port 70000 is outside"),
        ({"listen": "50051"}, "listen", "must be host:port, got '50051'"),
        (
            {"peers": [{"name": "bob", "address": "bob:0"}]},
            "peers[0].address",
            "port 0 is outside the allowed range: an integer in [1, 65535]",
        ),
    ],
)
def test_an_address_needs_a_port_in_range(tmp_path, changes, key, needle):
    path, message = _party_error(tmp_path, _party(**changes))

    assert message.startswith(f"{path}: key '{key}': {needle}")


# --- where a key error points ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        # A bad value: the key's own line and column, in block and flow style.
        ("epochs: 5\nbatch_size: 0\n", "2:1", "batch_size"),
        ("epochs: 5\nprivacy: {mid: {weight: -1}}\n", "2:17", "privacy.mid.weight"),
        # A key of a list item.
        (
            "parties:\n  - {name: alice, address: 127.0.0.1:1, identity: alice}\n"
            "  - {name: bob, address: 'no port', identity: bob}\n",
            "3:17",
            "parties[1].address",
        ),
        # An unknown key: where it is written.
        ("epochs: 5\nrecovery:\n  attempts: 3\n", "3:3", "recovery.attempts"),
        # A missing key: the section that lacks it.
        ("epochs: 5\nprivacy:\n  mid: {dim: 8}\n", "3:3", "privacy.mid.weight"),
    ],
)
def test_a_key_error_names_the_line_and_column_of_the_key(tmp_path, text, where, key):
    base = {k: v for k, v in _job().items() if k not in ("epochs", "parties")}
    if "parties:" not in text:
        base["parties"] = _job()["parties"]
    path = tmp_path / "job.yaml"
    path.write_text(text + yaml.safe_dump(base, sort_keys=False))

    with pytest.raises(ConfigError) as caught:
        load_job_config(path)

    assert str(caught.value).startswith(f"{path}:{where}: key '{key}': ")


def test_a_key_the_file_does_not_write_at_all_names_only_the_file(tmp_path):
    data = _job()
    del data["job"]
    path = _write(tmp_path, data)

    with pytest.raises(ConfigError) as caught:
        load_job_config(path)

    assert str(caught.value).startswith(f"{path}: key 'job': missing")
