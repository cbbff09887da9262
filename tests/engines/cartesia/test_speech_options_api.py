"""cartesia/sonic with Together's newer fields, through the real server against the fake Cartesia:
word alignment, pronunciation dictionaries, mulaw, locales, and the sonic-2/sonic-3 listing."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.engines.cartesia.fake_cartesia import FakeCartesia, audio_part
from tests.engines.cartesia.test_api import MODEL, speech, sse_payloads, tts_server


@pytest.fixture(scope="module")
def shared_base(cartesia_server: FakeCartesia) -> Iterator[str]:
    with tts_server(cartesia_server) as base:
        yield base


@pytest.fixture
def base(shared_base: str, fake: FakeCartesia) -> str:
    return shared_base


def word_events(text: str) -> list[dict]:
    kind = "conversation.item.word_timestamps"
    return [e for e in sse_payloads(text) if isinstance(e, dict) and e.get("type") == kind]


def test_alignment_word_streams_togethers_word_events(base: str, fake: FakeCartesia) -> None:
    fake.behaviour.transcript_timestamps = True
    r = speech(base, input="Hello big wide world.", stream=True, response_format="raw", alignment="word")
    assert r.status_code == 200
    events = word_events(r.text)
    assert [sorted(e) for e in events] == [["end_seconds", "item_id", "start_seconds", "type", "words"]] * 2
    assert [w for e in events for w in e["words"]] == ["Hello", "big", "wide", "world."]
    assert [s for e in events for s in e["start_seconds"]] == [0.0, 0.25, 0.5, 0.75]
    assert [s for e in events for s in e["end_seconds"]] == [0.25, 0.5, 0.75, 1.0]
    assert {e["item_id"] for e in events} == {r.headers["x-request-id"]}
    assert fake.tts_requests()[0].body["add_timestamps"] is True


def test_pronunciations_are_sent_replaced_and_timed_as_written(base: str, fake: FakeCartesia) -> None:
    fake.behaviour.transcript_timestamps = True
    entries = ["omg/oh my god", "tomato//təmˈɑːtQ/"]  # IPA: Sonic takes text only, so the word stays
    r = speech(
        base,
        input="Well OMG a tomato.",
        stream=True,
        response_format="raw",
        alignment="word",
        extra_params={"pronunciation_dict": entries},
    )
    assert fake.tts_requests()[0].body["transcript"] == "Well oh my god a tomato."
    events = word_events(r.text)
    # Cartesia timed "Well oh my" then "god a tomato.": the replacement is folded back into "OMG".
    assert [w for e in events for w in e["words"]] == ["Well", "OMG", "a", "tomato."]
    starts = [s for e in events for s in e["start_seconds"]]
    ends = [s for e in events for s in e["end_seconds"]]
    assert starts == [0.0, 0.25, 1.0, 1.25] and ends == [0.25, 1.0, 1.25, 1.5]


def test_json_body_words_are_the_inputs(base: str, fake: FakeCartesia) -> None:
    fake.behaviour.transcript_timestamps = True
    r = speech(base, input="omg yes", alignment="word", extra_params={"pronunciation_dict": ["omg/oh my god"]})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["words"] == [{"word": "omg", "start": 0.0, "end": 0.75}, {"word": "yes", "start": 0.75, "end": 1.0}]


@pytest.mark.parametrize("stream", [False, True])
def test_mulaw_is_cartesias_raw_mulaw_at_the_asked_rate(base: str, fake: FakeCartesia, stream: bool) -> None:
    r = speech(base, response_format="mulaw", sample_rate=8000, stream=stream)
    assert r.status_code == 200
    output = fake.tts_requests()[0].body["output_format"]
    assert output == {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}
    parts = b"".join(audio_part(i) for i in range(3))
    if stream:
        assert b"".join(base64.b64decode(e["delta"]) for e in sse_payloads(r.text)[:-1]) == parts
    else:
        assert r.content == parts and r.headers["content-type"] == "application/octet-stream"


def test_mulaw_without_a_rate_is_at_sonics_default(base: str, fake: FakeCartesia) -> None:
    assert speech(base, response_format="mulaw").status_code == 200
    assert fake.tts_requests()[0].body["output_format"]["sample_rate"] == 44100


@pytest.mark.parametrize(("locale", "sent"), [("zh-hk", "zh"), ("pt-br", "pt"), ("en-gb", "en")])
def test_locales_are_sent_as_their_language(base: str, fake: FakeCartesia, locale: str, sent: str) -> None:
    assert speech(base, language=locale).status_code == 200
    assert fake.tts_requests()[0].body["language"] == sent


def test_an_unknown_locale_is_a_400_naming_the_languages(base: str, fake: FakeCartesia) -> None:
    r = speech(base, language="xx-zz")
    assert r.status_code == 400 and r.json()["error"]["param"] == "language"
    assert "de, en, es" in r.json()["error"]["message"]
    assert fake.tts_requests() == []


def test_sonic_2_and_sonic_3_are_listed_with_their_voices(base: str) -> None:
    names = [m["id"] for m in httpx.get(f"{base}/v1/models").json()]
    assert names == [MODEL, "cartesia/sonic-2", "cartesia/sonic-3"]
    openai = httpx.get(f"{base}/v1/models", params={"format": "openai"}).json()["data"]
    assert {"cartesia/sonic-2", "cartesia/sonic-3"} <= {m["id"] for m in openai}
    everything = httpx.get(f"{base}/v1/voices").json()["data"]
    assert [e["model"] for e in everything] == names
    assert everything[1]["voices"] == everything[0]["voices"]
    (sonic2,) = httpx.get(f"{base}/v1/voices", params={"model": "cartesia/sonic-2"}).json()["data"]
    assert sonic2["model"] == "cartesia/sonic-2" and len(sonic2["voices"]) >= 100
    assert httpx.get(f"{base}/v1/models/cartesia/sonic-3").json()["id"] == "cartesia/sonic-3"
