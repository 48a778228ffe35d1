"""The mkdocs hook: markers replaced by the generated parts."""

from __future__ import annotations

import generated_pages
import pytest
from mkdocs.exceptions import PluginError


def test_the_config_marker_becomes_every_key_of_the_config() -> None:
    text = generated_pages.on_page_markdown(
        "# Config\n\n<!-- generated: config-schema job -->\n", None, None, None
    )
    assert "<!-- generated" not in text
    for key in ("`epochs`", "`batch_size`", "`parties[].address`", "`tls.ca`"):
        assert key in text, key


def test_an_unknown_marker_is_an_error() -> None:
    with pytest.raises(PluginError, match="unknown generated part: nonsense"):
        generated_pages.on_page_markdown(
            "<!-- generated: nonsense -->\n", None, None, None
        )


def test_markers_inside_text_are_left_alone() -> None:
    text = "Write `<!-- generated: grpc-api -->` on a line of its own.\n"
    assert generated_pages.on_page_markdown(text, None, None, None) == text
