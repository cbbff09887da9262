"""The engine contract: loading, voices, validation, reproducible synthesis."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from pydantic import ValidationError

from engines.hub import WeightsUnavailable
from engines.orpheus import loader
from engines.orpheus.engine import OrpheusEngine
from engines.orpheus.settings import ORPHEUS_MODEL
from engines.registry import create_engine
from server.errors import InvalidRequest, InvalidVoice, UnsupportedLanguage, http_status
from server.settings import Settings
from tests.engines.orpheus.helpers import request, synthesize, wait_until

FRAME = 2048


def test_registry_builds_the_engine(orpheus_settings):
    engine = create_engine("orpheus", orpheus_settings.orpheus)
    assert isinstance(engine, OrpheusEngine) and engine.model_id == ORPHEUS_MODEL
    assert engine.sample_rate == 24000 and engine.languages == {"en"}


def test_voices_catalog(orpheus_engine):
    voices = {v.id: v for v in orpheus_engine.voices()}
    assert list(voices) == ["tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"]
    assert {v.gender for v in voices.values()} == {"female", "male"}
    assert voices["leo"].gender == "male" and voices["tara"].language == "en-US"


async def test_validate_rejects_unknown_voice_other_languages_and_unstable_sampling(orpheus_engine):
    await orpheus_engine.validate(request())
    with pytest.raises(InvalidVoice) as info:
        await orpheus_engine.validate(request(voice="af_heart"))
    assert http_status(info.value) == 400 and "tara" in info.value.message
    with pytest.raises(UnsupportedLanguage) as lang:
        await orpheus_engine.validate(request(language="fr"))
    assert http_status(lang.value) == 400
    with pytest.raises(InvalidRequest):
        await orpheus_engine.validate(request(repetition_penalty=1.0))


def test_voice_names_ignore_case_and_reach_the_prompt_as_trained(orpheus_engine):
    assert orpheus_engine.plan(request(voice="Tara")).voice == "tara"


async def test_audio_is_whole_frames_and_a_seed_reproduces_it(orpheus_engine):
    first = await synthesize(orpheus_engine, seed=7, max_tokens=35)
    assert first.shape == (5 * FRAME,)  # 35 tokens = 5 frames, all emitted
    assert np.isfinite(first).all() and np.abs(first).max() > 0
    again = await synthesize(orpheus_engine, seed=7, max_tokens=35)
    assert np.array_equal(first, again)
    other = await synthesize(orpheus_engine, seed=8, max_tokens=35)
    assert not np.allclose(first, other)


async def test_server_default_max_tokens_applies(orpheus_engine):
    audio = await synthesize(orpheus_engine, seed=3)  # orpheus_max_tokens=35 in the test settings
    assert audio.size == 5 * FRAME


async def test_stats_expose_batching_and_grow_with_each_request(orpheus_engine):
    await wait_until(lambda: orpheus_engine.stats()["active"] == 0)  # earlier tests' jobs have left
    before = orpheus_engine.stats()
    audio = await synthesize(orpheus_engine, seed=4, max_tokens=14)
    stats = orpheus_engine.stats()
    for key in (
        "lm_batch_size_histogram",
        "max_lm_batch_size_seen",
        "batch_size_histogram",
        "tokens_generated",
        "codec_calls",
        "frames_decoded",
        "frames_invalid",
        "queued",
        "active",
        "audio_seconds",
        "synthesis_seconds",
    ):
        assert key in stats
    assert stats["frames_invalid"] == 0
    assert stats["tokens_generated"] - before["tokens_generated"] == 14
    assert stats["frames_decoded"] - before["frames_decoded"] == 2
    assert stats["prefills"] - before["prefills"] == 1
    assert stats["steps"] > before["steps"] and stats["codec_calls"] > before["codec_calls"]
    assert stats["audio_seconds"] - before["audio_seconds"] == pytest.approx(audio.size / 24000, abs=2e-3)
    assert stats["synthesis_seconds"] > before["synthesis_seconds"]
    # The worker counts a finished job after the step that finished it, maybe after we saw the end.
    await wait_until(lambda: orpheus_engine.stats()["jobs_completed"] > before["jobs_completed"])


def test_snac_lookahead_must_be_at_least_one():
    with pytest.raises(ValidationError):
        Settings(orpheus_snac_lookahead_frames=0)
    assert Settings(orpheus_snac_lookahead_frames=1).orpheus.snac_lookahead_frames == 1


async def test_a_session_is_planned_once_however_its_text_arrives(make_engine, monkeypatch):
    engine = await make_engine()
    planned = []
    original = engine.plan
    monkeypatch.setattr(engine, "plan", lambda request: planned.append(request) or original(request))
    session = await engine.open_session(request(seed=6, max_tokens=14))
    for piece in ("Hello", " there.", " And more", " text."):
        await session.feed(piece)
    await session.commit()
    audio = [event async for event in session.events()]
    assert len(planned) == 1 and len(audio) > 1


async def test_warmup_runs(make_engine):
    engine = await make_engine()
    await engine.warmup()
    stats = engine.stats()
    assert stats["prefills"] == 1 and stats["tokens_generated"] == 28  # 4 frames of "Hello."
    await engine.close()


def test_prefetch_names_both_local_directories(orpheus_settings, orpheus_dirs):
    lines = OrpheusEngine.prefetch(orpheus_settings.orpheus)
    assert len(lines) == 2
    assert str(orpheus_dirs[0]) in lines[0] and str(orpheus_dirs[1]) in lines[1]


def test_offline_without_cache_is_a_clear_startup_error(tmp_path):
    settings = Settings(offline=True, cache_dir=tmp_path, device="cpu")
    with pytest.raises(WeightsUnavailable) as info:
        OrpheusEngine.prefetch(settings.orpheus)
    assert "tts-server download" in info.value.message and "orpheus-source" in info.value.message
    with pytest.raises(WeightsUnavailable):  # the same error at startup, never at request time
        asyncio.run(OrpheusEngine(ORPHEUS_MODEL, settings.orpheus).load())


def test_incomplete_local_directory_is_refused(tmp_path, orpheus_dirs):
    (tmp_path / "config.json").write_text("{}")
    settings = Settings(orpheus_source=str(tmp_path), orpheus_snac_source=str(orpheus_dirs[1]), device="cpu")
    with pytest.raises(WeightsUnavailable) as info:
        loader.lm_dir(settings.orpheus)
    assert "tokenizer.json" in info.value.message


@pytest.mark.parametrize(
    ("positions", "setting", "expected"),
    [
        (2048, None, 2048),  # the model's own limit, with no flag
        (131072, None, loader.MAX_MODEL_LEN_CAP),  # Llama 3.2's 131,072: capped
        (None, None, loader.MAX_MODEL_LEN_CAP),  # a config that does not say
        (2048, 1024, 1024),  # an explicit value within the limit is kept
        (2048, 2048, 2048),
    ],
)
def test_max_model_len_defaults_to_the_models_own_limit_capped(tmp_path, positions, setting, expected):
    config = {"model_type": "llama"} | ({"max_position_embeddings": positions} if positions else {})
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert loader.resolve_max_model_len(setting, tmp_path) == expected


def test_max_model_len_above_the_models_limit_is_a_load_error_naming_both(orpheus_dirs):
    # The tiny model allows 8192 positions; 9000 is refused before anything loads, naming both numbers.
    settings = Settings(
        orpheus_source=str(orpheus_dirs[0]),
        orpheus_snac_source=str(orpheus_dirs[1]),
        device="cpu",
        orpheus_max_model_len=9000,
    )
    for load in (loader.load_all, loader.load_for_vllm):
        with pytest.raises(ValueError, match=r"orpheus_max_model_len.* is 9000.*allows 8192 positions"):
            load(settings.orpheus)


@pytest.mark.parametrize(
    ("setting", "vllm_installed", "device", "expected"),
    [
        ("auto", True, "cuda:0", "vllm"),
        ("auto", True, "cuda", "vllm"),
        ("auto", True, "cpu", "transformers"),  # vLLM installed, but no GPU
        ("auto", False, "cuda:0", "transformers"),  # a GPU, but no vLLM
        ("auto", False, "cpu", "transformers"),
        ("vllm", False, "cpu", "vllm"),  # explicit values pass through, whatever is installed
        ("transformers", True, "cuda:0", "transformers"),
    ],
)
def test_resolve_backend_picks_vllm_only_when_importable_on_cuda(
    monkeypatch, setting, vllm_installed, device, expected
):
    import importlib.util

    from engines.orpheus.engine import resolve_backend

    looked_up = []
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name != "vllm":
            return real_find_spec(name, *args, **kwargs)
        looked_up.append(name)
        return object() if vllm_installed else None

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert resolve_backend(setting, device) == expected
    if setting != "auto":
        assert looked_up == []  # an explicit choice never probes for vLLM
