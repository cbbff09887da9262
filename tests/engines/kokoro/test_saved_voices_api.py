"""Saved voices over the API with Kokoro (full-size, random weights): POST/GET/DELETE /v1/voices."""

from __future__ import annotations

import asyncio
import io

import httpx
import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors

from server.app import create_app
from tests.engines.kokoro.conftest import MODEL, kokoro_settings_for
from tests.reliability.helpers import assert_error
from tests.support.realtime import append as ws_append
from tests.support.realtime import commit, connect, pcm_of, recv, until
from tests.support.servers import serve_app

KEY = "admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXT = "Hello there."


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def settings_for(kokoro_dir, data_dir, **overrides):
    return kokoro_settings_for(kokoro_dir, models=[MODEL], warmup=False, data_dir=data_dir, api_keys=KEY, **overrides)


def speak(base: str, voice: str, seed: int = 11) -> np.ndarray:
    body = {"model": MODEL, "input": TEXT, "voice": voice, "seed": seed, "response_format": "raw"}
    r = httpx.post(f"{base}/v1/audio/speech", json=body, headers=AUTH, timeout=300)
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, "<i2")


def save(base: str, headers=AUTH, **body) -> httpx.Response:
    return httpx.post(f"{base}/v1/voices", json={"model": MODEL, **body}, headers=headers, timeout=60)


def upload(base: str, name: str, data: bytes, filename: str = "pack.pt", **fields) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/voices",
        data={"model": MODEL, "name": name, **fields},
        files={"file": (filename, data, "application/octet-stream")},
        headers=AUTH,
        timeout=60,
    )


def listed(base: str) -> dict[str, dict]:
    r = httpx.get(f"{base}/v1/voices", params={"model": MODEL}, headers=AUTH)
    return {v["id"]: v for v in r.json()["data"][0]["voices"]}


def torch_bytes(tensor) -> bytes:
    buffer = io.BytesIO()
    torch.save(tensor, buffer)
    return buffer.getvalue()


def test_save_list_use_survive_a_restart_and_delete(kokoro_dir, data_dir):
    settings = settings_for(kokoro_dir, data_dir)
    with serve_app(create_app(settings)) as base:
        r = save(base, name="narrator", voice="af_bella(2)+af_heart(1)", description="Warm.")
        assert r.status_code == 201, r.text
        assert r.json() == {
            "id": "narrator",
            "object": "voice",
            "model": MODEL,
            "name": "narrator",
            "kind": "saved",
            "language": "en-US",
            "gender": "female",
            "description": "Warm.",
            "source": "af_bella(0.666667)+af_heart(0.333333)",
        }
        assert listed(base)["narrator"] == {
            "id": "narrator",
            "name": "narrator",
            "language": "en-US",
            "gender": "female",
        }
        saved = speak(base, "narrator")
        inline = speak(base, "af_bella(2)+af_heart(1)")
        assert saved.shape == inline.shape and np.abs(saved.astype(int) - inline).max() <= 1
        assert not np.array_equal(saved, speak(base, "af_bella"))
        # Inside a mix, and in any case spelling, like any voice.
        assert speak(base, "NARRATOR(1)+af_heart(1)").size > 0

        # An uploaded voicepack (safetensors here), with its own language.
        pack = torch.load(kokoro_dir / "voices" / "bm_george.pt", weights_only=True) * 0.7
        r = upload(base, "lewis", save_safetensors({"v": pack}), "lewis.safetensors", language="en-GB", gender="male")
        assert r.status_code == 201, r.text
        assert (r.json()["kind"], r.json()["language"], r.json()["gender"]) == ("saved", "en-GB", "male")

        # The websocket speaks saved voices too.
        async def talk() -> bytes:
            async with connect(base, model=MODEL, voice="narrator", api_key=KEY) as ws:
                assert (await recv(ws))["type"] == "session.created"
                await ws_append(ws, TEXT)
                await commit(ws)
                return pcm_of(await until(ws, "conversation.item.audio_output.done", timeout=240))

        assert len(asyncio.run(talk())) > 0

    # A new server on the same data directory still has both (and the same audio for the same seed).
    with serve_app(create_app(settings_for(kokoro_dir, data_dir))) as base:
        voices = listed(base)
        assert voices["narrator"]["language"] == "en-US" and voices["lewis"]["language"] == "en-GB"
        described = httpx.get(f"{base}/v1/voices/narrator", headers=AUTH).json()
        assert described["source"] == "af_bella(0.666667)+af_heart(0.333333)" and described["description"] == "Warm."
        assert np.abs(speak(base, "narrator").astype(int) - saved).max() <= 1
        assert httpx.get(f"{base}/v1/voices/af_heart", headers=AUTH).json()["kind"] == "builtin"

        r = httpx.delete(f"{base}/v1/voices/narrator", headers=AUTH)
        assert r.status_code == 200 and r.json() == {
            "id": "narrator",
            "object": "voice",
            "model": MODEL,
            "deleted": True,
        }
        assert "narrator" not in listed(base)
        assert not (data_dir / "voices" / "hexgrad--Kokoro-82M" / "narrator.pt").exists()
        r = httpx.post(
            f"{base}/v1/audio/speech", json={"model": MODEL, "input": TEXT, "voice": "narrator"}, headers=AUTH
        )
        assert_error(r, 400, "invalid_voice")
        assert_error(httpx.delete(f"{base}/v1/voices/narrator", headers=AUTH), 404, "voice_not_found")
        assert_error(httpx.get(f"{base}/v1/voices/narrator", headers=AUTH), 404, "voice_not_found")
        # The model's own voices stay.
        r = httpx.delete(f"{base}/v1/voices/af_heart", headers=AUTH)
        assert_error(r, 400, "invalid_request")
        assert "cannot be deleted" in r.json()["error"]["message"]
        assert "lewis" in listed(base)


def test_refusals_are_400s_and_401s_in_togethers_shape(kokoro_dir, tmp_path):
    with serve_app(create_app(settings_for(kokoro_dir, tmp_path, kokoro_max_saved_voices=1))) as base:
        # No key, or a wrong one: nothing is saved or deleted.
        assert_error(save(base, headers={}, name="x", voice="af_heart"), 401, "missing_api_key")
        assert_error(save(base, headers={"Authorization": "Bearer nope"}, name="x", voice="af_heart"), 401)
        assert_error(httpx.delete(f"{base}/v1/voices/af_heart"), 401)
        # Bad names, taken names, unknown base voices, bad specs.
        for name in ("has space", "../escape", "", "a" * 65, "mix+plus"):
            r = save(base, name=name, voice="af_heart")
            assert_error(r, 400)
            assert r.json()["error"]["param"] == "name", r.text
        assert_error(save(base, name="AF_HEART", voice="af_bella"), 400, "voice_exists")
        r = save(base, name="fresh", voice="af_bella+af_nobody")
        assert_error(r, 400, "invalid_voice")
        assert "af_nobody" in r.json()["error"]["message"]
        assert_error(save(base, name="fresh", voice="af_bella(0)"), 400, "invalid_voice")
        assert_error(save(base, name="fresh", voice="af_bella", language="klingon"), 400)
        assert_error(save(base, name="fresh"), 400)  # no voice
        assert_error(save(base, name="fresh", voice="af_bella", extra=1), 400)
        r = httpx.post(f"{base}/v1/voices", content=b"[1,", headers={**AUTH, "content-type": "application/json"})
        assert_error(r, 400)
        # Uploads of the wrong shape or dtype, or not a tensor at all.
        r = upload(base, "wrong", torch_bytes(torch.zeros(510, 1, 128)))
        assert_error(r, 400, "invalid_voicepack")
        assert "[510, 1, 128]" in r.json()["error"]["message"] and r.json()["error"]["param"] == "file"
        assert_error(upload(base, "wrong", torch_bytes(torch.zeros(510, 1, 256, dtype=torch.long))), 400)
        assert_error(upload(base, "wrong", b"garbage bytes"), 400, "invalid_voicepack")
        r = httpx.post(
            f"{base}/v1/voices", data={"model": MODEL, "name": "nofile"}, files={"x": ("a", b"1")}, headers=AUTH
        )
        assert_error(r, 400)
        assert_error(httpx.get(f"{base}/v1/voices/nobody", headers=AUTH), 404, "voice_not_found")
        # Nothing was stored by any of them.
        assert "fresh" not in listed(base) and "wrong" not in listed(base)
        assert not list((tmp_path / "voices").rglob("*.pt"))
        # Saved voices are bounded (TTS_KOKORO_MAX_SAVED_VOICES=1 here).
        assert save(base, name="first", voice="af_bella").status_code == 201
        r = save(base, name="second", voice="af_bella")
        assert_error(r, 400)
        assert "TTS_KOKORO_MAX_SAVED_VOICES" in r.json()["error"]["message"] and "second" not in listed(base)
