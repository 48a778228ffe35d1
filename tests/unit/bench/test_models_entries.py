"""``--models`` entries: families, and BST with the length of its histories."""

from __future__ import annotations

import pytest

from bench.models import parse_model


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [("dnn", ("dnn", 0)), ("bst", ("bst", 4)), ("bst:20", ("bst", 20))],
)
def test_entries_name_a_family_and_a_history_length(entry, parsed):
    assert parse_model(entry) == parsed


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("dnn:4", "only bst takes a :length"),
        ("bst:0", "the history length must be 1 to 1024"),
        ("bst:x", "the history length must be 1 to 1024"),
    ],
)
def test_bad_entries_are_refused(entry, needle):
    with pytest.raises(ValueError, match=needle):
        parse_model(entry)
