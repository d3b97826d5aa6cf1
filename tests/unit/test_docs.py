"""Docs that are generated from code stay equal to it."""

from __future__ import annotations

from pathlib import Path

from pixtools.settings import settings_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_table_matches_settings() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    table = doc.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table == settings_markdown()


def test_readme_quick_start_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pixtools dev" in readme and "task test" in readme
