"""The mkdocs hook: markers replaced, the config schema provider found or not."""

from __future__ import annotations

import sys
from pathlib import Path

import generated_pages
import pytest
from mkdocs.exceptions import PluginError

SCHEMA = {
    "type": "object",
    "properties": {"epochs": {"type": "integer", "default": 5, "minimum": 1}},
}


@pytest.fixture
def provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A schema provider module importable as `fake_docs_schema`."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        generated_pages, "SCHEMA_PROVIDERS", ("absent_docs_schema", "fake_docs_schema")
    )
    yield tmp_path
    sys.modules.pop("fake_docs_schema", None)


def test_the_second_provider_is_used_when_the_first_is_absent(provider: Path) -> None:
    (provider / "fake_docs_schema.py").write_text(
        f"def json_schema(kind):\n    return {SCHEMA!r}\n", encoding="utf-8"
    )
    assert generated_pages.load_schema("job") == SCHEMA
    text = generated_pages.on_page_markdown(
        "# Config\n\n<!-- generated: config-schema job -->\n", None, None, None
    )
    assert "| `epochs` | integer | `5` | Must be ≥ 1. |" in text
    assert "<!-- generated" not in text


def test_a_provider_that_fails_to_import_is_an_error(
    provider: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (provider / "fake_docs_schema.py").write_text(
        "import no_such_module_here\n", encoding="utf-8"
    )
    monkeypatch.setenv(generated_pages.SKIP_CONFIG, "1")
    with pytest.raises(ModuleNotFoundError, match="no_such_module_here"):
        generated_pages.config_reference("job")


def test_no_provider_fails_the_build_unless_skipped(
    provider: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(generated_pages.SKIP_CONFIG, raising=False)
    with pytest.raises(PluginError, match="SPLITREC_DOCS_SKIP_CONFIG=1"):
        generated_pages.config_reference("party")
    monkeypatch.setenv(generated_pages.SKIP_CONFIG, "1")
    assert "left out of this build" in generated_pages.config_reference("party")


def test_an_unknown_marker_is_an_error() -> None:
    with pytest.raises(PluginError, match="unknown generated part: nonsense"):
        generated_pages.on_page_markdown(
            "<!-- generated: nonsense -->\n", None, None, None
        )


def test_markers_inside_text_are_left_alone() -> None:
    text = "Write `<!-- generated: grpc-api -->` on a line of its own.\n"
    assert generated_pages.on_page_markdown(text, None, None, None) == text
