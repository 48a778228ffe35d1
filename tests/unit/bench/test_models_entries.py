"""``--models`` entries: families, BST with the length of its histories, and
MMoE on the census job or on MovieLens."""

from __future__ import annotations

import pytest

from splitrec.bench.models import parse_model


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("dnn", ("dnn", "reference", 0)),
        ("bst", ("bst", "bst", 4)),
        ("bst:20", ("bst", "bst", 20)),
        ("mmoe", ("mmoe", "census", 0)),
        ("mmoe:ml1m", ("mmoe", "two-tasks", 0)),
    ],
)
def test_entries_name_a_family_a_layout_and_a_history_length(entry, parsed):
    assert parse_model(entry) == parsed


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("dnn:4", "only bst and mmoe take a :option"),
        ("bst:0", "the history length must be 1 to 1024"),
        ("bst:x", "the history length must be 1 to 1024"),
        ("mmoe:adult", "mmoe runs on census"),
    ],
)
def test_bad_entries_are_refused(entry, needle):
    with pytest.raises(ValueError, match=needle):
        parse_model(entry)
