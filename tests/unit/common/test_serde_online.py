"""Online scoring messages: requests, feature answers and pushed chunks."""

from __future__ import annotations

import re

import numpy as np
import pytest

from splitrec.common.errors import InvalidMessageError
from splitrec.common.online import (
    Embedded,
    ExportIdentity,
    KeptOut,
    PartView,
    Pushed,
    Scored,
    ServingView,
)
from splitrec.wire import serde


def test_a_score_request_round_trips_and_a_party_named_twice_is_refused():
    keys = {"alice": ["7"], "bob": ["1", "2", "3"]}
    assert serde.score_request_from_proto(serde.score_request_to_proto(keys)) == keys
    message = serde.score_request_to_proto(keys)
    message.entities.add(party="alice", keys=["8"])
    with pytest.raises(InvalidMessageError, match="'alice' is named twice"):
        serde.score_request_from_proto(message)


def test_an_embed_answer_round_trips_with_its_unknown_positions():
    outputs = np.arange(6, dtype=np.float32).reshape(3, 2)
    sent = Embedded("m", "t", outputs, np.array([1], np.int32))
    got = serde.embed_reply_from_proto(serde.embed_reply_to_proto(sent), 4)
    assert (got.model_digest, got.table_digest) == ("m", "t")
    assert got.outputs.tolist() == outputs.tolist() and got.unknown.tolist() == [1]


@pytest.mark.parametrize(
    ("rows", "unknown", "keys", "message"),
    [
        (3, [1], 3, "expected shape (2, '?'), got (3, 2)"),
        (2, [5], 3, "outside 0..2"),
        (1, [0, 0], 3, "or repeated"),
    ],
)
def test_an_embed_answer_that_does_not_fit_the_request_is_refused(
    rows, unknown, keys, message
):
    outputs = np.zeros((rows, 2), np.float32)
    sent = Embedded("m", "t", outputs, np.array(unknown, np.int32))
    with pytest.raises(InvalidMessageError, match=re.escape(message)):
        serde.embed_reply_from_proto(serde.embed_reply_to_proto(sent), keys)


def test_a_pushed_chunk_holds_one_row_per_key():
    chunk = Pushed("m", "t", ["1", "2"], np.ones((2, 3), np.float32))
    got = serde.pushed_from_proto(serde.pushed_to_proto(chunk))
    assert got.keys == ["1", "2"] and got.outputs.shape == (2, 3)
    message = serde.pushed_to_proto(chunk)
    message.keys.append("3")
    with pytest.raises(InvalidMessageError, match="pushed outputs"):
        serde.pushed_from_proto(message)


def test_answers_name_the_export_their_part_came_from():
    export = ExportIdentity("job", "v1", 2, "e1")
    outputs, unknown = np.zeros((1, 2), np.float32), np.array([], np.int32)
    embedded = Embedded("m", "t", outputs, unknown, export)
    got = serde.embed_reply_from_proto(serde.embed_reply_to_proto(embedded), 1)
    assert got.export == export
    chunk = Pushed("m", "t", ["1"], np.ones((1, 3), np.float32), export)
    assert serde.pushed_from_proto(serde.pushed_to_proto(chunk)).export == export
    prepared = serde.prepared_serving_to_proto("m", 5, export)
    assert serde.export_identity_from_proto(prepared.export) == export
    assert export.differs(ExportIdentity("job", "v1", 2, "e2")) == (
        "export id 'e2' (not 'e1')"
    )


def test_the_serving_status_lists_what_was_kept_out():
    kept = KeptOut("version", "v2", "party bob: file model.json differs")
    view = ServingView(
        True,
        "",
        "job",
        "v1",
        parts=(PartView("bob", "m", "MovieID", 3, "t", ExportIdentity(epoch=2)),),
        kept_out=(kept,),
    )
    message = serde.serving_view_to_proto(view)
    assert [serde.kept_out_from_proto(k) for k in message.kept_out] == [kept]
    assert message.parts[0].epoch == 2


def test_rows_with_a_problem_carry_no_scores():
    scores = np.array([[0.25], [np.nan]], np.float32)
    scored = Scored(
        "v1", ("label",), scores, ["", "party bob holds no MovieID '9'"], 1, 0
    )
    message = serde.scored_to_proto(scored)
    assert list(message.rows[0].scores) == [0.25] and not message.rows[0].problem
    assert not message.rows[1].scores
    assert message.rows[1].problem == "party bob holds no MovieID '9'"
    assert (message.version, list(message.tasks)) == ("v1", ["label"])
