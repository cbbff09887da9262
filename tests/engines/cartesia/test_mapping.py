"""Together request -> Cartesia body, as pure functions (the wire is checked in test_engine_requests)."""

from __future__ import annotations

import pytest

from engines.base import OutputSpec, SessionParams, SynthesisRequest
from engines.cartesia.mapping import (
    CARTESIA_SAMPLE_RATES,
    build_tts_body,
    cartesia_model_id,
    check_request,
    output_format,
)
from server.errors import InvalidRequest, http_status

VOICE_ID = "e00d0e4c-a5c8-443f-a8a3-473eb9a62355"


def request(**output: object) -> SynthesisRequest:
    return SynthesisRequest(
        model="cartesia/sonic", text="Hello.", voice="friendly sidekick", output=OutputSpec(**output)
    )


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("cartesia/sonic", "sonic-3"),
        ("sonic", "sonic-3"),
        ("Cartesia/Sonic", "sonic-3"),
        ("cartesia/sonic-2", "sonic-2"),
        ("cartesia/sonic-turbo", "sonic-turbo"),
        ("cartesia/sonic-3-2026-01-12", "sonic-3-2026-01-12"),
    ],
)
def test_model_names_map_to_cartesia_model_ids(requested: str, expected: str) -> None:
    assert cartesia_model_id(requested, "sonic-3") == expected


@pytest.mark.parametrize("encoding", ["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"])
@pytest.mark.parametrize("container", ["raw", "wav"])
def test_pcm_containers_carry_encoding_and_rate(container: str, encoding: str) -> None:
    spec = OutputSpec(format=container, encoding=encoding, sample_rate=16000)  # type: ignore[arg-type]
    assert output_format(SessionParams(model="cartesia/sonic", voice="v", output=spec)) == {
        "container": container,
        "encoding": encoding if container == "raw" else "pcm_s16le",  # Together: the encoding is raw's only
        "sample_rate": 16000,
    }


@pytest.mark.parametrize("bit_rate", [32000, 64000, 96000, 128000, 192000])
def test_mp3_carries_bit_rate_not_encoding(bit_rate: int) -> None:
    spec = OutputSpec(format="mp3", encoding="pcm_f32le", sample_rate=22050, bit_rate=bit_rate)
    assert output_format(SessionParams(model="cartesia/sonic", voice="v", output=spec)) == {
        "container": "mp3",
        "sample_rate": 22050,
        "bit_rate": bit_rate,
    }


def test_body_has_every_field() -> None:
    req = request(format="raw", encoding="pcm_mulaw", sample_rate=8000, stream=True)
    req.language = "fr"
    assert build_tts_body(req, req.text, model_id="sonic-3", voice_id=VOICE_ID) == {
        "model_id": "sonic-3",
        "transcript": "Hello.",
        "voice": {"mode": "id", "id": VOICE_ID},
        "output_format": {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000},
        "language": "fr",
    }


def test_speed_goes_to_generation_config_only_when_changed() -> None:
    req = request(sample_rate=44100)
    assert "generation_config" not in build_tts_body(req, req.text, model_id="m", voice_id=VOICE_ID)
    req.speed = 1.2
    body = build_tts_body(req, req.text, model_id="m", voice_id=VOICE_ID)
    assert body["generation_config"] == {"speed": 1.2}


@pytest.mark.parametrize("rate", CARTESIA_SAMPLE_RATES)
def test_cartesia_sample_rates_are_accepted(rate: int) -> None:
    check_request(request(format="wav", sample_rate=rate))


@pytest.mark.parametrize("rate", [11025, 12000, 32000, 96000])
def test_other_sample_rates_are_a_clear_400(rate: int) -> None:
    with pytest.raises(InvalidRequest) as err:
        check_request(request(format="wav", sample_rate=rate))
    assert http_status(err.value) == 400 and err.value.param == "sample_rate"
    assert str(rate) in err.value.message and "44100" in err.value.message


def test_other_bit_rates_are_a_400() -> None:
    with pytest.raises(InvalidRequest) as err:
        check_request(request(format="mp3", sample_rate=44100, bit_rate=320000))
    assert err.value.param == "bit_rate"


def test_checks_every_model_shares_are_left_to_the_server() -> None:
    # Language and stream-needs-raw are SpeechService/check_output_supported's; see test_api.
    req = request(format="wav", sample_rate=44100, stream=True)
    req.language = "xx"
    check_request(req)
    assert output_format(req)["container"] == "raw"  # /tts/sse only ever asks for raw


@pytest.mark.parametrize("fmt", ["wav", "mp3", "raw"])
def test_word_timestamps_go_through_sse_as_raw_pcm_with_add_timestamps(fmt: str) -> None:
    req = request(format=fmt, encoding="pcm_f32le", sample_rate=44100)
    req.word_timestamps = True
    body = build_tts_body(req, req.text, model_id="m", voice_id=VOICE_ID)
    assert body["add_timestamps"] is True
    # /tts/bytes has no timestamps: raw PCM over SSE, in the PCM the server builds the container from.
    encoding = "pcm_f32le" if fmt == "raw" else "pcm_s16le"
    assert body["output_format"] == {"container": "raw", "encoding": encoding, "sample_rate": 44100}


def test_speed_out_of_range_is_a_400() -> None:
    req = request(sample_rate=44100)
    req.speed = 3.0
    with pytest.raises(InvalidRequest) as err:
        check_request(req)
    assert err.value.param == "speed"
