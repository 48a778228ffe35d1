"""The gRPC API page, rendered from a tiny .proto file and its comments."""

from __future__ import annotations

from pathlib import Path

from docgen.proto_api import api_markdown

PROTO = """\
// The demo service: for tests.
syntax = "proto3";

package splitrec.v1;

service Demo {
  // Says hello | twice.
  rpc Hello(Ask) returns (stream Answer);
  rpc Talk(stream Ask) returns (Answer);
}

// A question.
message Ask {
  // Who asks.
  string who = 1;
  map<string, int64> counts = 2;
  repeated Answer earlier = 3;
  oneof kind {
    bool yes = 4;
    Mood mood = 5;
  }
  optional double weight = 6;  // Trailing note.
  // Inside.
  message Inner {
    uint64 n = 1;
  }
}

message Answer {}

// How one feels.
enum Mood {
  MOOD_UNSPECIFIED = 0;
  // Fine.
  MOOD_GOOD = 1;
}
"""


def render(tmp_path: Path) -> str:
    folder = tmp_path / "splitrec" / "v1"
    folder.mkdir(parents=True)
    (folder / "demo.proto").write_text(PROTO, encoding="utf-8")
    return api_markdown(tmp_path)


def test_services_are_tables_of_rpcs_with_streams_and_comments(
    tmp_path: Path,
) -> None:
    text = render(tmp_path)
    assert text.startswith("## `demo.proto`\n\nThe demo service: for tests.\n")
    assert "### Service `splitrec.v1.Demo`" in text
    assert (
        "| `Hello` | [Ask](#splitrec-v1-ask) | stream [Answer](#splitrec-v1-answer)"
        " | Says hello \\| twice. |" in text
    )
    assert (
        "| `Talk` | stream [Ask](#splitrec-v1-ask) | [Answer](#splitrec-v1-answer) |"
        in text
    )


def test_messages_list_fields_with_types_labels_and_comments(tmp_path: Path) -> None:
    text = render(tmp_path)
    assert "### `Ask` { #splitrec-v1-ask }\n\nA question.\n" in text
    assert "| `who` | 1 | `string` | Who asks. |" in text
    assert "| `counts` | 2 | map<`string`, `int64`> |  |" in text
    assert "| `earlier` | 3 | repeated [Answer](#splitrec-v1-answer) |  |" in text
    assert "| `yes` | 4 | oneof `kind`: `bool` |  |" in text
    assert "| `mood` | 5 | oneof `kind`: [Mood](#splitrec-v1-mood) |  |" in text
    assert "| `weight` | 6 | optional `double` | Trailing note. |" in text
    assert "### `Ask.Inner` { #splitrec-v1-ask-inner }\n\nInside.\n" in text
    assert "### `Answer` { #splitrec-v1-answer }\n\nNo fields.\n" in text
    assert "CountsEntry" not in text


def test_enums_list_values_with_comments(tmp_path: Path) -> None:
    text = render(tmp_path)
    assert "### Enum `splitrec.v1.Mood` { #splitrec-v1-mood }" in text
    assert "| `MOOD_GOOD` | 1 | Fine. |" in text


def test_the_projects_own_protos_render(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    text = api_markdown(root / "proto")
    assert "### Service `splitrec.v1.Control`" in text
    assert "### Service `splitrec.v1.Peer`" in text
    assert "### Service `splitrec.v1.Scoring`" in text
