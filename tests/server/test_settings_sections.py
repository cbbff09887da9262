"""One settings section per model: its own values, the flat names as inherited defaults, env vs flags,
every flag in --help, and secrets that never show (server/settings_layout.py has the rules)."""

from __future__ import annotations

import argparse
import json
import logging

import httpx
import pytest

from engines import registry
from server import settings_layout
from server.app import create_app
from server.cli import _add_settings_flags, main, settings_from_args
from server.settings import Settings
from tests.support.fake_engine import FakeEngine
from tests.support.servers import serve_app

KOKORO, ORPHEUS, CARTESIA = "hexgrad/Kokoro-82M", "canopylabs/orpheus-3b-0.1-ft", "cartesia/sonic"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No TTS_* or CARTESIA_* variable of the machine running the tests leaks in."""
    import os

    for name in list(os.environ):
        if name.upper().startswith(("TTS_", "CARTESIA_")):
            monkeypatch.delenv(name)


def parsed(argv: list[str]) -> Settings:
    parser = argparse.ArgumentParser()
    _add_settings_flags(parser)
    return settings_from_args(parser.parse_args(argv))


def test_each_model_has_its_own_values():
    s = Settings(kokoro_device="cpu", orpheus_device="cuda:1", kokoro_max_batch_size=2, orpheus_max_queue_size=9)
    assert (s.kokoro.device, s.orpheus.device) == ("cpu", "cuda:1")
    assert (s.kokoro.max_batch_size, s.orpheus.max_batch_size) == (2, None)
    assert (s.kokoro.max_queue_size, s.orpheus.max_queue_size) == (64, 9)
    assert s.section("kokoro") is s.kokoro and s.section("cartesia/sonic-2") is s.cartesia


def test_sections_inherit_the_flat_names_unless_they_set_their_own(monkeypatch):
    monkeypatch.setenv("TTS_DEVICE", "cpu")
    monkeypatch.setenv("TTS_MAX_BATCH_SIZE", "6")
    monkeypatch.setenv("TTS_ORPHEUS_MAX_BATCH_SIZE", "3")
    s = Settings()
    assert (s.kokoro.device, s.orpheus.device) == ("cpu", "cpu")
    assert (s.kokoro.max_batch_size, s.orpheus.max_batch_size) == (6, 3)
    # Orpheus's own segment default (200, what its max_tokens holds) unless the flat one is set.
    assert (s.kokoro.segment_chars, s.orpheus.segment_chars) == (400, 200)
    monkeypatch.setenv("TTS_SEGMENT_CHARS", "300")
    assert (Settings().kokoro.segment_chars, Settings().orpheus.segment_chars) == (300, 300)


def test_a_section_name_beats_the_flat_one_and_a_flag_beats_the_env(monkeypatch):
    monkeypatch.setenv("TTS_KOKORO_DEVICE", "cuda:1")
    monkeypatch.setenv("TTS_ORPHEUS_MAX_QUEUE_SIZE", "11")
    s = parsed(["--device", "cpu", "--max-queue-size", "5"])
    assert (s.kokoro.device, s.orpheus.device) == ("cuda:1", "cpu")  # section env over the flat flag
    assert (s.kokoro.max_queue_size, s.orpheus.max_queue_size) == (5, 11)
    s = parsed(["--kokoro-device", "cpu", "--orpheus-max-queue-size", "4"])
    assert (s.kokoro.device, s.orpheus.max_queue_size) == ("cpu", 4)  # the section flag over its env


def test_older_environment_names_still_work(monkeypatch):
    monkeypatch.setenv("TTS_SNAC_SOURCE", "/old/snac")
    monkeypatch.setenv("CARTESIA_API_KEY", "sk_car_old_name")
    s = Settings()
    assert s.orpheus.snac_source == "/old/snac" and s.cartesia.api_key.get_secret_value() == "sk_car_old_name"
    monkeypatch.setenv("TTS_ORPHEUS_SNAC_SOURCE", "/new/snac")
    assert Settings().orpheus.snac_source == "/new/snac"  # the section's own name first


def test_cartesia_transport_is_a_setting(monkeypatch):
    assert Settings().cartesia.realtime_transport == "websocket"
    monkeypatch.setenv("TTS_CARTESIA_REALTIME_TRANSPORT", "http")
    assert Settings().cartesia.realtime_transport == "http"
    assert main(["serve", "--cartesia-realtime-transport", "carrier-pigeon"]) == 2


def test_a_bad_section_value_names_its_section(capsys):
    assert main(["serve", "--orpheus-max-batch-size", "0"]) == 2
    err = capsys.readouterr().err
    assert "orpheus.max_batch_size" in err


def test_help_lists_every_sections_flags_and_no_secret(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    fields = settings_layout.all_section_fields()
    assert {f.section for f in fields} == {spec.section for spec in registry.ENGINES}
    for field in fields:
        assert (field.flag in out) != field.secret, field.flag
        assert field.env_names[0] in out or field.secret
    for spec in registry.ENGINES:
        assert f"{spec.section} settings" in out
    assert "--device" in out and "--api-keys" not in out


def test_every_engine_section_is_a_settings_field_of_its_class():
    for spec in registry.ENGINES:
        assert Settings.model_fields[spec.section].annotation is registry.section_class(spec)
    flat = set(Settings.model_fields) - {spec.section for spec in registry.ENGINES}
    # A flat name that looked like <section>_<field> would make keywords ambiguous.
    keywords = {field.keyword for field in settings_layout.all_section_fields()}
    assert not flat & keywords


def secret_env() -> dict[str, str]:
    """A distinctive value for every secret field, flat and per section, found from the types."""
    env = {f"TTS_{name.upper()}": f"zz-flat-{name}-secret-71" for name in registry.secret_fields(Settings)}
    for field in settings_layout.all_section_fields():
        if field.secret:
            env[field.env_names[0]] = f"zz-{field.keyword}-secret-71"
    return env


def test_secrets_never_show_in_stats_config_or_logs(monkeypatch, capsys, caplog):
    env = secret_env()
    assert "TTS_API_KEYS" in env and "TTS_CARTESIA_API_KEY" in env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(models=[], warmup=False)
    assert settings.cartesia.api_key.get_secret_value() == env["TTS_CARTESIA_API_KEY"]  # each was read
    assert settings.api_keys[0].get_secret_value() == env["TTS_API_KEYS"]

    assert main(["config"]) == 0
    config = capsys.readouterr().out
    shown = json.loads(config)
    assert shown["cartesia"]["api_key"] == registry.SECRET_MASK and shown["kokoro"]["device"] == "auto"

    caplog.set_level(logging.DEBUG)
    engines = {name: FakeEngine(model_id=name) for name in (KOKORO, CARTESIA)}
    with serve_app(create_app(settings, engines=engines)) as base:
        headers = {"Authorization": f"Bearer {env['TTS_API_KEYS']}"}
        stats = httpx.get(f"{base}/stats", headers=headers)
        assert stats.status_code == 200
        speech = httpx.post(
            f"{base}/v1/audio/speech", headers=headers, json={"model": KOKORO, "input": "Hi.", "voice": "alpha"}
        )
        assert speech.status_code == 200
    assert stats.json()[CARTESIA]["settings"]["api_key"] == registry.SECRET_MASK
    assert stats.json()[KOKORO]["settings"]["batch_policy"] == "auto"
    logs = "\n".join(record.getMessage() for record in caplog.records) + capsys.readouterr().err
    for value in env.values():
        assert value not in stats.text and value not in config and value not in logs


def test_config_prints_the_effective_sections(capsys):
    assert main(["config", "--kokoro-device", "cpu", "--max-batch-size", "3", "--orpheus-max-batch-size", "7"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kokoro"]["device"] == "cpu" and shown["orpheus"]["device"] == "auto"
    assert (shown["max_batch_size"], shown["kokoro"]["max_batch_size"], shown["orpheus"]["max_batch_size"]) == (3, 3, 7)
    assert "max_batch_size" not in shown["cartesia"]  # a proxy has no local scheduling
