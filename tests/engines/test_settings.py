"""The local engines' common settings: defaults that follow the device."""

import pytest

from engines.settings import LocalEngineSettings
from server.settings import Settings


@pytest.mark.parametrize(("device", "expected"), [("cpu", 8), ("cuda", 32), ("cuda:1", 32)])
def test_batch_size_defaults_follow_the_device(device, expected):
    assert LocalEngineSettings().resolved_max_batch_size(device) == expected


def test_an_explicit_batch_size_wins_everywhere(monkeypatch):
    assert LocalEngineSettings(max_batch_size=4).resolved_max_batch_size("cuda") == 4
    monkeypatch.setenv("TTS_MAX_BATCH_SIZE", "16")
    assert Settings().resolved_max_batch_size("cpu") == 16
