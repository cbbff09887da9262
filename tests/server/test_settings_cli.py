import subprocess
import sys

from server.cli import main, settings_from_args
from server.settings import Settings


def test_env_vars_are_read_when_settings_are_made(monkeypatch):
    monkeypatch.setenv("TTS_MODELS", "hexgrad/Kokoro-82M, cartesia/sonic")
    monkeypatch.setenv("TTS_API_KEYS", "key-alpha-7,key-beta-9")
    monkeypatch.setenv("TTS_MAX_QUEUE_SIZE", "3")
    monkeypatch.setenv("TTS_HOSTED_COMPAT", "true")
    monkeypatch.setenv("CARTESIA_API_KEY", "cartesia-secret-42")
    s = Settings()
    assert s.models == ["hexgrad/Kokoro-82M", "cartesia/sonic"]
    assert [k.get_secret_value() for k in s.api_keys] == ["key-alpha-7", "key-beta-9"]
    assert (s.max_queue_size, s.hosted_compat, s.cartesia.api_key.get_secret_value()) == (3, True, "cartesia-secret-42")
    assert "cartesia-secret-42" not in repr(s) and "key-alpha-7" not in repr(s)  # secrets never print


def test_cli_flags_override_env(monkeypatch):
    import argparse

    from server.cli import _add_settings_flags

    monkeypatch.setenv("TTS_PORT", "9000")
    monkeypatch.setenv("TTS_DEVICE", "cuda")
    parser = argparse.ArgumentParser()
    _add_settings_flags(parser)
    s = settings_from_args(parser.parse_args(["--port", "8123", "--no-warmup", "--models", "kokoro"]))
    assert (s.port, s.device, s.warmup, s.models) == (8123, "cuda", False, ["kokoro"])


def test_invalid_setting_exits_2(capsys):
    assert main(["serve", "--max-queue-size", "0"]) == 2
    assert "max_queue_size" in capsys.readouterr().err


def test_serve_fails_fast_with_instructions_when_weights_cannot_be_had(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--offline", "--cache-dir", str(tmp_path), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "tts-server download" in result.stderr and "--kokoro-source" in result.stderr
    assert "Traceback" not in result.stderr


def test_download_with_a_local_copy(kokoro_dir):
    assert main(["download", "--kokoro-source", str(kokoro_dir)]) == 0


def test_secrets_are_not_cli_flags():
    import argparse

    import pytest

    from server.cli import _add_settings_flags

    parser = argparse.ArgumentParser()
    _add_settings_flags(parser)
    for flag in ("--api-keys", "--cartesia-api-key"):
        with pytest.raises(SystemExit):
            parser.parse_args([flag, "x"])
