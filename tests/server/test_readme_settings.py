"""The README's settings table is generated from the code (`tts-server config --markdown`)."""

from pathlib import Path

import pytest

from server.cli import main
from server.settings_doc import TABLE_MARKER, markdown_table, readme_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_is_the_generated_one():
    expected = markdown_table()
    assert readme_table(README.read_text(encoding="utf-8")) == expected, (
        "README.md's settings table is out of date: replace the lines between the two "
        f"'{TABLE_MARKER}' markers with the output of `tts-server config --markdown`."
    )


def test_the_table_has_a_row_for_every_flag_and_env_name(capsys):
    assert main(["config", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert table == markdown_table()
    for name in ("`TTS_DEVICE`", "`TTS_KOKORO_DEVICE`", "`--orpheus-codec-device`", "`TTS_SNAC_SOURCE`"):
        assert name in table
    assert "`--cartesia-api-key`" not in table  # secrets: env only


def test_a_changed_table_is_noticed():
    readme = README.read_text(encoding="utf-8")
    edited = readme.replace("`TTS_KOKORO_DEVICE`", "`TTS_KOKORO_DEVIZE`", 1)
    assert readme_table(edited) != markdown_table()
    with pytest.raises(ValueError):
        readme_table("no markers here")
