"""The CPU defaults that trade exactness for speed, checked on the real weights against eager fp32.

On a CPU the decoder runs compiled (``TTS_KOKORO_COMPILE=auto``) and, where the CPU has AMX, in
bf16 (``TTS_KOKORO_DTYPE=auto``, ``engines/kokoro/precision.py``). Here both are forced on, whatever
this machine's CPU, and set against the same engine in eager fp32 on the same texts, voices and seeds:
the same length to the sample (the front is fp32 either way) and Whisper hears the words as well.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmarks.kokoro_bench import one_request
from engines.kokoro.engine import KokoroEngine
from server.settings import Settings
from tests.e2e.test_real_speech import MODEL, SENTENCES, realweights, word_error_rate  # noqa: F401

pytestmark = pytest.mark.realweights


def speak_all(realweights, **overrides) -> dict[str, np.ndarray]:  # noqa: F811
    async def run() -> dict[str, np.ndarray]:
        settings = Settings(kokoro_source=realweights["KOKORO_DIR"], device="cpu", warmup=False, **overrides)
        engine = KokoroEngine(MODEL, settings.kokoro)
        await engine.load()
        try:
            assert engine.stats()["decoder_dtype"] == overrides["kokoro_dtype"]
            return {voice: (await one_request(engine, text, voice, seed=5))[2] for voice, text in SENTENCES.items()}
        finally:
            await engine.close()

    return asyncio.run(run())


def test_compiled_bf16_decoding_is_heard_as_well_as_eager_fp32(realweights, tmp_path):  # noqa: F811
    eager = speak_all(realweights, kokoro_dtype="float32", kokoro_compile="off")
    fast = speak_all(realweights, kokoro_dtype="bfloat16", kokoro_compile="on")
    for voice, text in SENTENCES.items():
        assert fast[voice].size == eager[voice].size  # durations come from the fp32 front either way
        scores = {}
        for name, audio in (("eager fp32", eager[voice]), ("compiled bf16", fast[voice])):
            wav = tmp_path / f"{voice}-{name.replace(' ', '-')}.wav"
            sf.write(wav, audio, 24000)
            scores[name] = word_error_rate(realweights, text, Path(wav))
        print(voice, scores)
        assert scores["compiled bf16"][0] <= max(0.15, scores["eager fp32"][0]), scores
