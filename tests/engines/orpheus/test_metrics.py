"""Orpheus's own Prometheus series on /metrics, labelled by model, read from the engine's stats."""

from __future__ import annotations

import httpx

from engines.orpheus.settings import ORPHEUS_MODEL
from server.app import create_app
from tests.engines.orpheus.conftest import settings_for
from tests.reliability.test_observability import samples, value
from tests.support.servers import serve_app

FRAME = 2048
MAX_TOKENS = 35  # 5 frames of 7 tokens


def test_orpheus_series_with_a_model_label(orpheus_dirs):
    app = create_app(settings_for(orpheus_dirs, warmup=False, max_batch_size=4))
    model = {"model": ORPHEUS_MODEL}
    with serve_app(app) as base:
        before = samples(httpx.get(f"{base}/metrics").text)
        assert value(before, "tts_orpheus_tokens_total", **model) == 0
        assert ("tts_orpheus_lm_batch_size_count", (("model", ORPHEUS_MODEL),)) not in before  # nothing ran yet

        body = {"model": ORPHEUS_MODEL, "input": "Hello there.", "voice": "tara", "seed": 1, "max_tokens": MAX_TOKENS}
        response = httpx.post(f"{base}/v1/audio/speech", json={**body, "response_format": "raw"}, timeout=120)
        assert response.status_code == 200
        frames = len(response.content) // 2 // FRAME  # 16-bit samples
        assert frames == MAX_TOKENS // 7
        text = httpx.get(f"{base}/metrics").text
        stats = httpx.get(f"{base}/stats").json()[ORPHEUS_MODEL]
    m = samples(text)
    for name, kind in (
        ("tts_orpheus_lm_batch_size", "histogram"),
        ("tts_orpheus_snac_windows_per_call", "histogram"),
        ("tts_orpheus_tokens_total", "counter"),
    ):
        assert f"# TYPE {name} {kind}\n" in text, name

    # The LM: every token of the request, one sequence per decode step (it ran alone).
    assert value(m, "tts_orpheus_tokens_total", **model) == stats["tokens_generated"] == MAX_TOKENS
    steps = value(m, "tts_orpheus_lm_batch_size_count", **model)
    assert steps == stats["decode_steps"] > 0
    assert value(m, "tts_orpheus_lm_batch_size_sum", **model) == steps  # batch size 1 at every step
    assert value(m, "tts_orpheus_lm_batch_size_bucket", le="1.0", **model) == steps
    assert value(m, "tts_orpheus_tokens_per_second", **model) > 0

    # SNAC: the windows that carried those frames, in the calls the codec stage made.
    calls = value(m, "tts_orpheus_snac_windows_per_call_count", **model)
    assert calls == stats["codec_calls"] > 0
    assert value(m, "tts_orpheus_snac_windows_per_call_sum", **model) == stats["codec_windows"] >= 2
    assert value(m, "tts_orpheus_snac_windows_per_call_bucket", le="+Inf", **model) == calls
