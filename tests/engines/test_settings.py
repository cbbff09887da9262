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
    settings = Settings()
    assert settings.kokoro.resolved_max_batch_size("cpu") == settings.orpheus.resolved_max_batch_size("cuda") == 16


def test_a_models_settings_section_for_stats_masks_secrets():
    from engines import registry

    settings = Settings(CARTESIA_API_KEY="sk_car_secret", cartesia_model_id="sonic-2")
    shown = registry.public_settings(settings.section("cartesia/sonic-2"))
    assert shown["model_id"] == "sonic-2" and shown["api_key"] == registry.SECRET_MASK
    assert "sk_car_secret" not in str(shown) and "max_batch_size" not in shown  # a proxy: no local scheduling
    assert registry.public_settings(Settings(CARTESIA_API_KEY=None).cartesia)["api_key"] is None


def test_secret_fields_are_derived_from_the_types():
    from engines import registry
    from engines.cartesia.settings import CartesiaSettings

    assert registry.secret_fields(CartesiaSettings) == {"api_key"}
    assert registry.secret_fields(Settings) == {"api_keys"}  # list[SecretStr] counts too
