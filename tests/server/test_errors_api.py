"""Every error leaves in Together's shape with the right status; none is a 422 or a traceback."""

import json
import threading
import time

import httpx
import pytest

from tests.support.fake_engine import FakeEngine

MODEL = "hexgrad/Kokoro-82M"


def post(base, body=None, **kw):
    return httpx.post(f"{base}/v1/audio/speech", timeout=30, **({"json": body} if body is not None else kw))


def assert_error(r, status, param=None, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    assert body["error"]["param"] == param
    if code:
        assert body["error"]["code"] == code
    return body["error"]


GOOD = {"model": MODEL, "input": "Hello.", "voice": "alpha"}


@pytest.mark.parametrize(
    "patch,param",
    [
        ({"input": ""}, "input"),
        ({"input": "   "}, "input"),
        ({"response_format": "ogg"}, "response_format"),
        ({"response_encoding": "pcm_u8"}, "response_encoding"),
        ({"sample_rate": 1000}, "sample_rate"),
        ({"sample_rate": "fast"}, "sample_rate"),
        ({"bit_rate": 100}, "bit_rate"),
        ({"language": "xx"}, "language"),
        ({"stream": "maybe"}, "stream"),
        ({"speed": 0}, "speed"),
    ],
)
def test_invalid_fields_are_400_naming_the_param(api, patch, param):
    assert_error(post(api[0], {**GOOD, **patch}), 400, param)


@pytest.mark.parametrize("missing", ["model", "input", "voice"])
def test_missing_required_field(api, missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    assert_error(post(api[0], body), 400, missing)


def test_body_that_is_not_json(api):
    r = post(api[0], content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 400)


def test_unknown_model_is_404(api):
    err = assert_error(post(api[0], {**GOOD, "model": "acme/tts-9000"}), 404, "model", "model_not_available")
    assert "acme/tts-9000" in err["message"]


def test_known_but_unloaded_model_is_404(api):
    assert_error(post(api[0], {**GOOD, "model": "canopylabs/orpheus-3b-0.1-ft"}), 404, "model")


def test_unknown_voice_is_400(api):
    assert_error(post(api[0], {**GOOD, "voice": "nobody"}), 400, "voice", "invalid_voice")


def test_language_the_model_cannot_speak_is_400(api):
    err = assert_error(post(api[0], {**GOOD, "language": "ko"}), 400, "language", "unsupported_language")
    assert "en, fr" in err["message"]


def test_input_over_limit_is_400(fake_server):
    with fake_server(max_input_chars=10) as (base, _):
        err = assert_error(post(base, {**GOOD, "input": "x" * 11}), 400, "input", "input_too_long")
        assert "10" in err["message"]
        assert post(base, {**GOOD, "input": "x" * 10}).status_code == 200


def test_stream_with_wav_is_400(api):
    assert_error(post(api[0], {**GOOD, "stream": True, "response_format": "wav"}), 400, "response_format")


def test_mp3_at_unsupported_rate_is_400(api):
    assert_error(post(api[0], {**GOOD, "response_format": "mp3", "sample_rate": 17000}), 400, "sample_rate")


def test_unknown_route_and_method_use_the_error_shape(api):
    assert_error(httpx.get(f"{api[0]}/v1/nothing-here"), 404)
    assert_error(httpx.get(f"{api[0]}/v1/audio/speech"), 405)


def test_failure_before_audio_is_500_without_internals(fake_server):
    with fake_server(FakeEngine(fail_after=0)) as (base, _):
        err = assert_error(post(base, GOOD), 500, None, "internal_error")
        assert "synthetic" in err["message"]  # an APIError's own message is safe to show


class Crashes(FakeEngine):
    async def open_session(self, params):
        session = await super().open_session(params)

        async def crash():
            raise RuntimeError("secret detail at /srv/models/key=abc")
            yield  # pragma: no cover

        session.events = crash
        return session


def test_unexpected_exception_is_500_that_reveals_nothing(fake_server):
    with fake_server(Crashes()) as (base, _):
        err = assert_error(post(base, GOOD), 500, None, "internal_error")
        assert "secret" not in err["message"] and "RuntimeError" not in err["message"]
        streamed = post(base, {**GOOD, "stream": True, "response_format": "raw"})
        assert streamed.status_code == 500 and "secret" not in streamed.text


def test_error_after_stream_started_is_a_final_sse_event(fake_server):
    with fake_server(FakeEngine(chunks=3, fail_after=1)) as (base, _):
        r = post(base, {**GOOD, "stream": True, "response_format": "raw"})
        assert r.status_code == 200
        payloads = [line[6:] for line in r.text.split("\n\n") if line]
        assert json.loads(payloads[0])["object"] == "audio.tts.chunk"
        error = json.loads(payloads[1])
        assert set(error) == {"error"} and error["error"]["code"] == "internal_error"
        assert payloads[2] == "[DONE]"


def test_client_disconnect_stops_generation(fake_server):
    engine = FakeEngine(chunks=50, delay_s=0.05)
    with fake_server(engine) as (base, _):
        body = {**GOOD, "stream": True, "response_format": "raw"}
        with httpx.stream("POST", f"{base}/v1/audio/speech", json=body, timeout=30) as r:
            next(r.iter_lines())
        deadline = time.monotonic() + 5
        while engine.closed_early == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.closed_early == 1
        assert engine.produced < 50


def test_client_disconnect_during_buffered_wav_stops_generation(fake_server):
    engine = FakeEngine(chunks=50, delay_s=0.05)
    with fake_server(engine) as (base, _):

        def give_up():
            try:
                httpx.post(f"{base}/v1/audio/speech", json=GOOD, timeout=0.5)
            except httpx.TimeoutException:
                pass

        thread = threading.Thread(target=give_up)
        thread.start()
        thread.join()
        deadline = time.monotonic() + 5
        while engine.closed_early == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.closed_early == 1 and engine.produced < 50


def test_disconnect_before_the_first_audio_is_quiet(fake_server, caplog):
    engine = FakeEngine(chunks=3, delay_s=1.0)
    with fake_server(engine) as (base, _):
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{base}/v1/audio/speech", json=GOOD, timeout=0.3)
        deadline = time.monotonic() + 5
        while engine.closed_early == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.closed_early == 1 and engine.produced <= 1
    assert "unhandled error" not in caplog.text  # no 500 and no traceback for a client that left


@pytest.mark.parametrize("fmt", ["mp3", "wav", "raw"])
def test_no_audio_at_all_is_still_a_valid_response(fake_server, fmt):
    with fake_server(FakeEngine(chunks=0)) as (base, _):
        r = post(base, {**GOOD, "response_format": fmt})
        assert r.status_code == 200
        assert len(r.content) == {"mp3": 0, "wav": 44, "raw": 0}[fmt]


def test_error_after_a_raw_body_started_ends_the_body_cleanly(fake_server, caplog):
    with fake_server(FakeEngine(chunks=3, fail_after=1)) as (base, engine):
        r = post(base, {**GOOD, "response_format": "raw"})
        assert r.status_code == 200  # the status line left with the first chunk
        assert len(r.content) == engine.chunk_samples * 2  # that chunk in s16le, then the body ends
    assert "audio body ended early" in caplog.text and "Traceback" not in caplog.text
