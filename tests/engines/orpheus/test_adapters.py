"""Orpheus LoRA adapter voices: configuration, checks at load, and the transformers backend's 400."""

from __future__ import annotations

import json

import pytest

from benchmarks.models.orpheus import build_adapter
from engines.base import SessionParams
from engines.hub import WeightsUnavailable
from engines.orpheus.adapters import load_adapters, split_target, vllm_lora_args
from engines.orpheus.settings import ORPHEUS_MODEL
from server.errors import Unsupported, http_status
from server.settings import Settings

BUILTIN = {"tara", "leo"}


def fake_adapter(directory, rank: int = 8):
    """What load-time checks read: a PEFT directory's config and a weights file."""
    directory.mkdir(parents=True)
    (directory / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
    (directory / "adapter_model.safetensors").write_bytes(b"")
    return directory


def test_settings_take_pairs_or_json_with_an_optional_trained_voice(monkeypatch):
    monkeypatch.setenv("TTS_ORPHEUS_ADAPTERS", "alice=/a/alice:tara, bob=/b/bob")
    assert Settings().orpheus.adapters == {"alice": "/a/alice:tara", "bob": "/b/bob"}
    monkeypatch.setenv("TTS_ORPHEUS_ADAPTERS", '{"carol": "/c/carol"}')
    assert Settings().orpheus.adapters == {"carol": "/c/carol"}
    monkeypatch.setenv("TTS_ORPHEUS_ADAPTERS", "no-equals-sign")
    with pytest.raises(ValueError, match="name=directory"):
        Settings()
    assert split_target("/a/alice:tara") == ("/a/alice", "tara")
    assert split_target("/a/alice") == ("/a/alice", None)
    assert split_target("/odd:dir/alice") == ("/odd:dir/alice", None)  # a colon inside the path is the path's


def test_adapters_are_checked_at_load_with_the_path_in_the_message(tmp_path):
    good = fake_adapter(tmp_path / "alice")
    adapters = load_adapters({"Alice": f"{good}:tara", "bob": str(fake_adapter(tmp_path / "bob"))}, BUILTIN, 64)
    assert adapters["alice"].prompt_voice == "tara" and adapters["alice"].path == good.resolve()
    assert adapters["bob"].prompt_voice == "bob"  # no trained name given: the voice's own
    assert [a.lora_id for a in adapters.values()] == [1, 2]
    assert adapters["alice"].voice().kind == "adapter"

    missing = tmp_path / "nowhere" / "ghost"
    with pytest.raises(WeightsUnavailable, match=str(missing)):
        load_adapters({"ghost": str(missing)}, BUILTIN, 64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsUnavailable, match="adapter_config.json"):
        load_adapters({"x": str(tmp_path / "empty")}, BUILTIN, 64)
    with pytest.raises(WeightsUnavailable, match="rank 128"):
        load_adapters({"big": str(fake_adapter(tmp_path / "big", rank=128))}, BUILTIN, 64)
    with pytest.raises(WeightsUnavailable, match="already a voice"):
        load_adapters({"TARA": str(good)}, BUILTIN, 64)
    with pytest.raises(WeightsUnavailable, match="not a valid voice name"):
        load_adapters({"a b": str(good)}, BUILTIN, 64)


def test_vllm_gets_lora_settings_only_with_adapters(tmp_path):
    settings = Settings(orpheus_max_loras=3, orpheus_max_lora_rank=20).orpheus
    assert vllm_lora_args(settings, {}) == {}
    adapters = load_adapters({"a": str(fake_adapter(tmp_path / "a", rank=16))}, BUILTIN, 20)
    args = vllm_lora_args(settings, adapters)
    assert args == {"enable_lora": True, "max_loras": 1, "max_lora_rank": 32, "max_cpu_loras": 3}


def test_peft_builds_an_adapter_the_checks_accept(orpheus_dirs, tmp_path):
    pytest.importorskip("peft")
    directory = build_adapter(orpheus_dirs[0], tmp_path / "alice", seed=1, rank=4)
    assert load_adapters({"alice": str(directory)}, BUILTIN, 8)["alice"].rank == 4


async def test_transformers_backend_lists_adapter_voices_and_answers_400_naming_vllm(make_engine, tmp_path):
    engine = await make_engine(orpheus_adapters={"alice": f"{fake_adapter(tmp_path / 'alice')}:tara"})
    assert engine.backend == "transformers"
    listed = {v.id: v for v in engine.voices()}
    assert listed["alice"].kind == "adapter" and listed["tara"].kind == "builtin"
    assert engine.describe_voice("ALICE").id == "alice"
    with pytest.raises(Unsupported) as info:
        await engine.open_session(SessionParams(model=ORPHEUS_MODEL, voice="alice"))
    assert http_status(info.value) == 400 and "vLLM" in info.value.message and info.value.param == "voice"
    session = await engine.open_session(SessionParams(model=ORPHEUS_MODEL, voice="tara"))  # its own voices serve
    await session.close()


async def test_a_wrong_adapter_path_fails_the_load_before_the_model(tmp_path):
    from engines.orpheus.engine import OrpheusEngine

    missing = tmp_path / "missing-adapter"
    engine = OrpheusEngine(ORPHEUS_MODEL, Settings(device="cpu", orpheus_adapters={"ghost": str(missing)}).orpheus)
    with pytest.raises(WeightsUnavailable, match=str(missing)):
        await engine.load()  # no weights configured either: the adapter check comes first
