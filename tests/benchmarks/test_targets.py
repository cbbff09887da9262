"""Targets (specs, request bodies for both dialects, keys) and the server view's arithmetic."""

from __future__ import annotations

import json
from string import Template

import pytest

from benchmarks.bench.server_view import headline_from_metrics, metrics_delta, parse_prometheus, stats_delta
from benchmarks.bench.targets import Target, load_targets_file, parse_target

DEFAULTS = Target("http://127.0.0.1:8000")


def test_together_bodies():
    body = Target("http://h/v1", encoding="pcm_mulaw", sample_rate=8000, extra={"seed": 3}).body("Hi")
    assert body == {"model": "hexgrad/Kokoro-82M", "input": "Hi", "voice": "af_heart", "response_format": "raw",
                    "response_encoding": "pcm_mulaw", "sample_rate": 8000, "stream": True, "seed": 3}  # fmt: skip
    wav = Target("http://h", format="wav", stream="off").body("Hi")
    assert wav["stream"] is False and "response_encoding" not in wav
    assert Target("http://h/v1/").base == "http://h"


def test_openai_bodies_and_audio_specs():
    sse = Target("http://h", api="openai", format="pcm", stream="sse", model="tts-1", voice="alloy")
    assert sse.body("Hi") == {"model": "tts-1", "input": "Hi", "voice": "alloy", "response_format": "pcm",
                              "stream_format": "sse"}  # fmt: skip
    assert (sse.audio.format, sse.audio.encoding, sse.audio.sample_rate) == ("pcm", "pcm_s16le", 24000)
    assert Target("http://h", api="openai", format="opus", stream="bytes").body("x")["stream_format"] == "audio"
    assert "stream_format" not in Target("http://h", api="openai", format="flac", stream="off").body("x")
    assert Target("http://h", stream="ws").audio.encoding == "pcm_s16le"


def test_invalid_targets():
    for bad in ({"format": "opus"}, {"api": "grpc"}, {"stream": "carrier-pigeon"}, {"format": "mp3"},
                {"api": "openai", "format": "mp3", "stream": "ws"}):  # fmt: skip
        with pytest.raises(ValueError):
            Target("http://h", **bad)


def test_target_specs():
    t = parse_target("url=http://a:1,voice=jf_alpha,rate=16000,name=mine,stream=off,format=wav", DEFAULTS)
    assert (t.url, t.voice, t.sample_rate, t.name, t.stream, t.format) == (
        "http://a:1", "jf_alpha", 16000, "mine", "off", "wav"
    )  # fmt: skip
    assert parse_target("http://b:2", DEFAULTS).name == "b:2 Kokoro-82M"
    openai = parse_target("url=http://c,api=openai,model=tts-1", DEFAULTS)
    assert (openai.format, openai.name) == ("pcm", "c tts-1")  # the dialect's default format
    with pytest.raises(ValueError, match="command line"):
        parse_target("url=http://a,key=sk-123", DEFAULTS)
    with pytest.raises(ValueError, match="unknown"):
        parse_target("url=http://a,colour=red", DEFAULTS)


def test_keys_from_env_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-env")
    assert Target("http://h", key_env="MY_KEY").headers() == {"Authorization": "Bearer sk-env"}
    assert Target("http://h", key_env="UNSET_KEY_VAR").headers() == {}
    path = tmp_path / "targets.json"
    path.write_text(json.dumps([{"url": "http://h", "key": "sk-file", "name": "f"}, {"url": "http://i", "rate": 8000}]))
    targets = load_targets_file(str(path), DEFAULTS)
    assert targets[0].headers() == {"Authorization": "Bearer sk-file"} and targets[1].sample_rate == 8000
    assert "key" not in targets[0].public() and targets[0].public()["has_key"] is True
    assert "sk-file" not in repr(targets[0])


METRICS = Template("""# HELP tts_queue_wait_seconds Time in queue.
# TYPE tts_queue_wait_seconds histogram
tts_queue_wait_seconds_bucket{model="kokoro",le="0.1"} $b
tts_queue_wait_seconds_sum{model="kokoro"} $s
tts_queue_wait_seconds_count{model="kokoro"} $c
# TYPE tts_batch_size histogram
tts_batch_size_sum{model="kokoro",stage="front"} $bs
tts_batch_size_count{model="kokoro",stage="front"} $bc
# TYPE tts_tokens_generated_total counter
tts_tokens_generated_total{model="orpheus"} $tok
tts_tokens_generated_created{model="orpheus"} 1.7e9
tts_queue_depth{model="kokoro"} 3
""")


def test_prometheus_deltas():
    before = parse_prometheus(METRICS.substitute(b=1, s=0.5, c=2, bs=4, bc=2, tok=100))
    after = parse_prometheus(METRICS.substitute(b=5, s=1.7, c=6, bs=24, bc=7, tok=1100))
    assert before[("tts_queue_depth", (("model", "kokoro"),))] == 3
    delta = metrics_delta(before, after, wall_s=4.0)
    assert delta["kokoro"]["tts_queue_wait_seconds"]["mean"] == pytest.approx(1.2 / 4)
    assert delta["kokoro"]["tts_batch_size"]["mean"] == pytest.approx(4.0)
    assert delta["orpheus"]["tts_tokens_generated_total"]["per_s"] == 250.0
    headline = headline_from_metrics(delta)
    assert headline["kokoro"] == {"mean_batch": 4.0, "mean_queue_wait_s": pytest.approx(0.3)}
    assert headline["orpheus"] == {"tokens_per_s": 250.0}


def test_stats_deltas():
    before = {"kokoro": {"status": "ready", "steps": 10, "batch_size_histogram": {"1": 10},
                         "front_batch_histogram": {"1": 10}, "real_tokens": 100, "padded_tokens": 100,
                         "audio_seconds": 10.0, "synthesis_seconds": 5.0},
              "orpheus": {"status": "ready", "lm_batch_size_histogram": {}, "tokens_generated": 0,
                          "codec_calls": 0, "codec_windows": 0}}  # fmt: skip
    after = {"kokoro": {"status": "ready", "steps": 14, "batch_size_histogram": {"1": 10, "3": 2, "2": 2},
                        "front_batch_histogram": {"1": 11, "2": 3}, "real_tokens": 160, "padded_tokens": 180,
                        "audio_seconds": 30.0, "synthesis_seconds": 9.0},
             "orpheus": {"status": "ready", "lm_batch_size_histogram": {"4": 10}, "tokens_generated": 280,
                         "codec_calls": 5, "codec_windows": 15}}  # fmt: skip
    delta = stats_delta(before, after, wall_s=2.0)
    kokoro, orpheus = delta["kokoro"], delta["orpheus"]
    assert kokoro["step_batch_histogram"] == {2: 2, 3: 2} and kokoro["mean_step_batch"] == 2.5
    assert kokoro["mean_front_batch"] == pytest.approx(7 / 4) and kokoro["steps"] == 4
    assert kokoro["token_efficiency"] == pytest.approx(60 / 80) and kokoro["engine_rtf"] == pytest.approx(0.2)
    assert orpheus["mean_lm_batch"] == 4 and orpheus["tokens_per_s"] == 140 and orpheus["windows_per_codec_call"] == 3
