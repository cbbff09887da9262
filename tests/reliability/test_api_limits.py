"""Deadlines, strict types and safe ranges at the API, on the stand-in engine (fast, exact).

Each case here is a defect the black-box probe found: no deadline; ``"stream": "yes"`` and
``"seed": true`` accepted; Orpheus ``temperature`` 1e-40 and ``top_p`` 1e-46 accepted (then a 500
that took the whole batch down); NaN through Python's JSON parser.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from server.app import create_app
from server.settings import Settings
from tests.reliability.helpers import MODEL, assert_error, sse_events
from tests.support.fake_engine import FakeEngine
from tests.support.servers import serve_app

GOOD = {"model": MODEL, "input": "Hello there.", "voice": "alpha"}


@pytest.fixture(scope="module")
def slow():
    """Each chunk takes 0.3 s; the deadline is 1 s."""
    engine = FakeEngine(chunks=20, delay_s=0.3)
    settings = Settings(models=[MODEL], warmup=False, request_timeout_s=1.0)
    with serve_app(create_app(settings, engines={MODEL: engine})) as base:
        yield base, engine


def test_deadline_before_the_response_starts_is_504(slow):
    base, engine = slow
    closed = engine.closed_early
    started = time.monotonic()
    error = assert_error(httpx.post(f"{base}/v1/audio/speech", json=GOOD, timeout=30), 504, "deadline_exceeded")
    assert "TTS_REQUEST_TIMEOUT_S" in error["message"] and time.monotonic() - started < 3
    assert engine.closed_early == closed + 1  # the session was closed: the model stops working for it


def test_deadline_during_a_stream_is_a_final_error_event_then_done(slow):
    base, _ = slow
    body = {**GOOD, "stream": True, "response_format": "raw"}
    with httpx.stream("POST", f"{base}/v1/audio/speech", json=body, timeout=30) as r:
        assert r.status_code == 200
        events = sse_events(list(r.iter_lines()))
    assert events[-1] == "[DONE]" and events[-2]["error"]["code"] == "deadline_exceeded"
    assert 1 <= sum("b64" in e for e in events[:-2]) < 20


def test_deadline_on_the_openai_sse_route(slow):
    base, _ = slow
    # pcm: its first bytes leave with the first chunk (MP3's encoder holds the first ~0.1 s back, and on a
    # loaded machine the deadline then came before the stream began: a 504, not this event).
    body = {**GOOD, "model": "tts-1", "stream_format": "sse", "voice": "alpha", "response_format": "pcm"}
    with httpx.stream("POST", f"{base}/v1/audio/speech", json=body, timeout=30) as r:
        events = sse_events(list(r.iter_lines()))
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "deadline_exceeded"


@pytest.mark.parametrize(
    "patch,param",
    [
        ({"stream": "yes"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"seed": True}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"sample_rate": "24000"}, "sample_rate"),
        ({"speed": "1.0"}, "speed"),
        ({"word_timestamps": "true"}, "word_timestamps"),
        ({"temperature": 1e-40}, "temperature"),
        ({"top_p": 1e-46}, "top_p"),
        ({"temperature": 0}, "temperature"),
        ({"max_tokens": 7.5}, "max_tokens"),
    ],
)
def test_loose_types_and_unsafe_ranges_are_400(api, patch, param):
    r = httpx.post(f"{api[0]}/v1/audio/speech", json={**GOOD, **patch})
    assert assert_error(r, 400)["param"] == param


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_400(api, literal):
    content = f'{{"model": "{MODEL}", "input": "Hi.", "voice": "alpha", "speed": {literal}}}'.encode()
    r = httpx.post(f"{api[0]}/v1/audio/speech", content=content, headers={"content-type": "application/json"})
    assert assert_error(r, 400)["param"] == "speed"


def test_the_openai_dialect_is_strict_too_and_still_works(api):
    base = api[0]
    body = {"model": "tts-1", "input": "Hi.", "voice": "alpha"}
    assert httpx.post(f"{base}/v1/audio/speech", json={**body, "seed": 3}).headers["content-type"] == "audio/mpeg"
    assert assert_error(httpx.post(f"{base}/v1/audio/speech", json={**body, "seed": True}), 400)["param"] == "seed"
    assert assert_error(httpx.post(f"{base}/v1/audio/speech", json={**body, "speed": "2"}), 400)["param"] == "speed"
    # "stream" is Together's field: with it the body is Together's, and "yes" is still a 400.
    r = httpx.post(f"{base}/v1/audio/speech", json={**body, "model": MODEL, "stream": "yes"})
    assert assert_error(r, 400)["param"] == "stream"


def test_request_id_header_and_json_log_line_without_the_text(api, caplog):
    base = api[0]
    secret_text = "My secret sentence."
    with caplog.at_level("INFO", logger="tts_server.requests"):
        body = {**GOOD, "input": secret_text}
        r = httpx.post(f"{base}/v1/audio/speech", json=body, headers={"X-Request-ID": "abc-1"})
        mine = httpx.post(f"{base}/v1/audio/speech", json=GOOD)
    assert r.headers["x-request-id"] == "abc-1" and len(mine.headers["x-request-id"]) == 32
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "tts_server.requests"]
    records = [json.loads(line) for line in lines]
    first = next(rec for rec in records if rec["request_id"] == "abc-1")
    assert first["status"] == 200 and first["model"] == MODEL and first["voice"] == "alpha"
    assert first["chars"] == len(secret_text) and first["audio_s"] > 0 and first["first_audio_s"] <= first["total_s"]
    assert all(secret_text not in line for line in lines)
