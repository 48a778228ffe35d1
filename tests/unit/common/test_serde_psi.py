"""PSI value chunks: split into messages and joined back, with checks."""

from __future__ import annotations

import pytest

from splitrec.common.errors import InvalidMessageError
from splitrec.v1 import peer_pb2
from splitrec.wire import serde


def _joined(messages, stage, width, expected=None) -> bytes:
    return b"".join(serde.psi_value_chunks(iter(messages), stage, width, expected))


def test_values_round_trip_across_chunks(monkeypatch):
    monkeypatch.setattr(serde, "PSI_CHUNK_VALUES", 3)
    values = bytes(range(16 * 7))
    messages = serde.psi_values_to_proto("double_blinded", values, 16)
    assert len(messages) == 3
    assert [m.values.last for m in messages] == [False, False, True]
    joined = _joined(messages, "double_blinded", 16, 7)
    assert joined == values


def test_no_values_is_one_last_message():
    [message] = serde.psi_values_to_proto("aligned", b"", 16)
    assert message.values.last and message.values.values == b""
    assert _joined([message], "aligned", 16) == b""


@pytest.mark.parametrize(
    ("messages", "expected", "error"),
    [
        ([], None, "ended before the blinded values"),
        (
            [peer_pb2.PsiMessage(done=peer_pb2.PsiDone(rows=1))],
            None,
            "expected blinded values in the PSI stream, got done",
        ),
        (
            serde.psi_values_to_proto("aligned", b"x" * 32, 32),
            None,
            "got stage PSI_STAGE_ALIGNED width 32",
        ),
        (
            serde.psi_values_to_proto("blinded", b"x" * 33, 32),
            None,
            "a PSI chunk of 33 bytes is not whole 32-byte values",
        ),
        (
            serde.psi_values_to_proto("blinded", b"x" * 64, 32),
            3,
            "expected 3 blinded values, got 2",
        ),
    ],
)
def test_bad_chunks_are_refused(messages, expected, error):
    with pytest.raises(InvalidMessageError, match=error):
        _joined(messages, "blinded", 32, expected)
