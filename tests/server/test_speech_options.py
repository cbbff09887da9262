"""POST /v1/audio/speech with the fields of Together's current docs: mulaw, locales, segment,
extra_params.pronunciation_dict, alignment (stand-in engine; engines have their own tests)."""

import base64
import json

import httpx
import pytest
import soxr

from engines.errors import Unsupported
from server.audio.pcm import encode_pcm
from tests.support.fake_engine import RATE, FakeEngine, tone

MODEL = "hexgrad/Kokoro-82M"
FULL = tone(3 * 2400)


def speech(base, **body):
    payload = {"model": MODEL, "input": "Hello.", "voice": "alpha", **body}
    return httpx.post(f"{base}/v1/audio/speech", json=payload, timeout=30)


def stream_audio(r) -> bytes:
    events = [json.loads(e[6:]) for e in r.text.split("\n\n") if e.startswith("data: {")]
    return b"".join(base64.b64decode(e["delta"]) for e in events if "delta" in e)


def test_mulaw_is_one_byte_per_sample_and_the_same_as_raw_pcm_mulaw(api):
    base, _ = api
    r = speech(base, response_format="mulaw")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert len(r.content) == FULL.size  # byte length = samples, at the model's rate
    assert r.content == speech(base, response_format="raw", response_encoding="pcm_mulaw").content
    assert r.content == encode_pcm(FULL, "pcm_mulaw")


def test_mulaw_streams_and_honours_an_explicit_rate(api):
    base, engine = api
    streamed = speech(base, response_format="mulaw", stream=True)
    assert stream_audio(streamed) == encode_pcm(FULL, "pcm_mulaw")
    phone = speech(base, response_format="mulaw", sample_rate=8000)
    assert engine.last_request.output.encoding == "pcm_mulaw" and engine.last_request.output.sample_rate == 8000
    want = soxr.resample(FULL, RATE, 8000, quality="HQ")
    assert abs(len(phone.content) - want.size) <= 1


def test_mulaw_keeps_its_encoding_even_under_hosted_compat(fake_server):
    with fake_server(hosted_compat=True) as (base, _):
        r = speech(base, response_format="mulaw", response_encoding="pcm_f32le", sample_rate=8000)
        assert r.content == encode_pcm(FULL, "pcm_mulaw")  # hosted rate (24 kHz), mu-law bytes


@pytest.mark.parametrize("locale", ["en-us", "en-gb", "fr-ca", "fr"])
def test_lowercase_locales_reach_the_engine_where_it_speaks_their_language(api, locale):
    base, engine = api
    assert speech(base, language=locale).status_code == 200
    assert engine.last_request.language == locale


@pytest.mark.parametrize("locale", ["xx-zz", "de", "pt-br"])
def test_a_language_the_model_does_not_speak_is_a_400_naming_its_languages(api, locale):
    base, _ = api
    r = speech(base, language=locale)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "language" and error["code"] == "unsupported_language"
    assert f"'{locale}'" in error["message"] and "en, fr" in error["message"]


@pytest.mark.parametrize("locale", ["EN-GB", "en_gb", "english", ""])
def test_locales_must_be_lowercase_codes(api, locale):
    base, _ = api
    r = speech(base, language=locale)
    assert r.status_code == 400 and r.json()["error"]["param"] == "language"


@pytest.mark.parametrize("segment", ["sentence", "immediate", "never"])
def test_segment_reaches_the_engine(api, segment):
    base, engine = api
    assert speech(base, segment=segment).status_code == 200
    assert engine.last_request.segment == segment


def test_an_unknown_segment_mode_is_a_400(api):
    base, _ = api
    r = speech(base, segment="paragraph")
    assert r.status_code == 400 and r.json()["error"]["param"] == "segment"


def test_pronunciation_entries_reach_the_engine(api):
    base, engine = api
    r = speech(base, extra_params={"pronunciation_dict": ["omg/oh my god", "tomato//təmˈɑːtQ/"]})
    assert r.status_code == 200
    assert engine.last_request.pronunciations == (("omg", "oh my god"), ("tomato", "/təmˈɑːtQ/"))
    assert speech(base, extra_params={"other": 1}).status_code == 200 and engine.last_request.pronunciations == ()


@pytest.mark.parametrize("value", ["omg/oh my god", ["omg"], ["/x"], [{"omg": "oh my god"}]])
def test_a_malformed_pronunciation_dict_is_a_400_in_togethers_shape(api, value):
    base, _ = api
    r = speech(base, extra_params={"pronunciation_dict": value})
    assert r.status_code == 400
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == "extra_params.pronunciation_dict" and error["type"] == "invalid_request_error"


def test_the_server_wide_dictionary_applies_and_the_requests_entries_win(fake_server, tmp_path):
    path = tmp_path / "pronunciations.txt"
    path.write_text("# house style\nomg/oh my gosh\nSQL/sequel\n", encoding="utf-8")
    with fake_server(pronunciation_dict=path) as (base, engine):
        speech(base)
        assert engine.last_request.pronunciations == (("omg", "oh my gosh"), ("SQL", "sequel"))
        speech(base, extra_params={"pronunciation_dict": ["OMG/oh my god"]})
        assert dict(engine.last_request.pronunciations) == {"SQL": "sequel", "OMG": "oh my god"}


class NoWords(FakeEngine):
    async def open_session(self, params):
        if params.word_timestamps:
            raise Unsupported("This model has no word timestamps.", param="word_timestamps")
        return await super().open_session(params)


def test_a_model_without_timestamps_names_the_field_the_client_sent(fake_server):
    with fake_server(NoWords()) as (base, _):
        for field, value in (("alignment", "word"), ("word_timestamps", True)):
            r = speech(base, stream=True, response_format="raw", **{field: value})
            assert r.status_code == 400 and r.json()["error"]["param"] == field
