"""Every failure path: Cartesia's statuses, the network, timeouts, mid-stream errors, no key."""

from __future__ import annotations

import socket

import pytest

from engines.base import OutputSpec, SynthesisRequest
from engines.cartesia.engine import CartesiaEngine
from server.errors import (
    APIError,
    InvalidRequest,
    Overloaded,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
    error_body,
    error_headers,
    http_status,
)
from tests.engines.cartesia.fake_cartesia import API_KEY, FakeCartesia, audio_part


def make_request(stream: bool = False, voice: str = "polite man") -> SynthesisRequest:
    return SynthesisRequest(
        model="cartesia/sonic",
        text="Fail me.",
        voice=voice,
        output=OutputSpec(format="raw", sample_rate=44100, stream=stream),
    )


async def collect(engine: CartesiaEngine, request: SynthesisRequest) -> tuple[list[bytes], APIError | None]:
    """Audio received before the failure, and the failure."""
    got: list[bytes] = []
    try:
        async for chunk in engine.synthesize(request):
            got.append(chunk.data)
    except APIError as exc:
        return got, exc
    return got, None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("stream", [False, True], ids=["bytes", "sse"])
@pytest.mark.parametrize("status", [400, 422])
async def test_client_faults_are_400_with_cartesias_message(
    engine: CartesiaEngine, fake: FakeCartesia, status: int, stream: bool
) -> None:
    fake.behaviour.tts_status = status
    got, err = await collect(engine, make_request(stream))
    assert got == [] and isinstance(err, InvalidRequest)
    assert http_status(err) == 400
    assert "The fake was told to fail." in err.message


async def test_cartesias_own_rejection_is_reported(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    # A voice UUID Cartesia does not know is only found out upstream: its message reaches the client.
    fake.behaviour.known_voice_ids = {"e00d0e4c-a5c8-443f-a8a3-473eb9a62355"}
    unknown = "99999999-8888-4777-8666-555555555555"
    got, err = await collect(engine, make_request(voice=unknown))
    assert got == [] and isinstance(err, InvalidRequest) and http_status(err) == 400
    assert "Voice not found" in err.message and unknown in err.message


async def test_legacy_plain_text_error_bodies_are_read(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.tts_status = 400
    fake.behaviour.tts_error_body = b"Invalid voice: Voice not found"
    _, err = await collect(engine, make_request())
    assert isinstance(err, InvalidRequest) and "Invalid voice: Voice not found" in err.message


async def test_wrong_key_is_a_502_that_never_echoes_the_key(make_engine, fake: FakeCartesia) -> None:
    wrong = "sk_car_WRONG_secret_value"
    engine = await make_engine(CARTESIA_API_KEY=wrong)
    got, err = await collect(engine, make_request())
    assert got == [] and isinstance(err, UpstreamError)
    assert http_status(err) == 502 and err.code == "upstream_auth_failed"
    assert "CARTESIA_API_KEY" in err.message
    assert wrong not in str(error_body(err)) and API_KEY not in str(error_body(err))
    assert fake.tts_requests()[0].headers["authorization"] == f"Bearer {wrong}"  # it was sent, and refused


async def test_forbidden_is_a_502(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.tts_status = 403
    _, err = await collect(engine, make_request(stream=True))
    assert isinstance(err, UpstreamError) and http_status(err) == 502
    assert "The fake was told to fail." not in err.message  # auth failures quote nothing upstream


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", "7"), ("2.5", "3"), (None, "1"), ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT")],
)
async def test_rate_limit_is_a_429_keeping_retry_after(
    engine: CartesiaEngine, fake: FakeCartesia, retry_after: str | None, expected: str
) -> None:
    fake.behaviour.tts_status = 429
    fake.behaviour.retry_after = retry_after
    _, err = await collect(engine, make_request())
    assert isinstance(err, Overloaded) and http_status(err) == 429
    assert error_headers(err)["Retry-After"] == expected


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_502(engine: CartesiaEngine, fake: FakeCartesia, status: int) -> None:
    fake.behaviour.tts_status = status
    _, err = await collect(engine, make_request())
    assert isinstance(err, UpstreamError) and http_status(err) == 502
    assert str(status) in err.message


async def test_connection_failure_is_a_502(make_engine) -> None:
    engine = await make_engine(cartesia_base_url=f"http://127.0.0.1:{free_port()}")
    _, err = await collect(engine, make_request())
    assert isinstance(err, UpstreamError) and http_status(err) == 502
    assert "ConnectError" in err.message


@pytest.mark.parametrize("stream", [False, True], ids=["bytes", "sse"])
async def test_upstream_silence_is_a_504(make_engine, fake: FakeCartesia, stream: bool) -> None:
    engine = await make_engine(cartesia_read_timeout_s=0.3)
    fake.behaviour.hang_s = 5
    got, err = await collect(engine, make_request(stream))
    assert got == [] and isinstance(err, UpstreamTimeout) and http_status(err) == 504


@pytest.mark.parametrize("stream", [False, True], ids=["bytes", "sse"])
async def test_stall_mid_stream_raises_after_the_audio_already_sent(
    make_engine, fake: FakeCartesia, stream: bool
) -> None:
    engine = await make_engine(cartesia_read_timeout_s=0.3)
    fake.behaviour.stall_after_parts = 1
    got, err = await collect(engine, make_request(stream))
    assert got == [audio_part(0)]
    assert isinstance(err, UpstreamTimeout)
    assert len(fake.tts_requests()) == 1  # no retry once audio has gone out


@pytest.mark.parametrize(("status", "error_type"), [(500, UpstreamError), (400, InvalidRequest), (429, Overloaded)])
async def test_error_event_mid_stream_is_raised_after_the_chunks(
    engine: CartesiaEngine, fake: FakeCartesia, status: int, error_type: type[APIError]
) -> None:
    fake.behaviour.sse_error_after = 2
    fake.behaviour.sse_error_status = status
    got, err = await collect(engine, make_request(stream=True))
    assert got == [audio_part(0), audio_part(1)]
    assert isinstance(err, error_type)
    assert "The model failed mid-stream." in err.message
    assert engine.stats()["upstream_errors"] == 1


async def test_stream_cut_without_done_is_an_error(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.omit_done = True
    got, err = await collect(engine, make_request(stream=True))
    assert len(got) == 3 and isinstance(err, UpstreamError)


async def test_no_key_means_unavailable_and_a_clear_error(make_engine, fake: FakeCartesia) -> None:
    engine = await make_engine(CARTESIA_API_KEY=None)
    assert engine.available is False
    assert engine.voices()  # the catalog is still listed
    with pytest.raises(ServiceUnavailable) as err:
        await engine.validate(make_request())
    assert http_status(err.value) == 503 and "CARTESIA_API_KEY" in err.value.message
    _, failure = await collect(engine, make_request())
    assert isinstance(failure, ServiceUnavailable)
    with pytest.raises(ServiceUnavailable):
        await engine.validate(make_request(voice="not in the catalog"))  # no GET /voices either
    assert fake.requests == []


async def test_warmup_spends_nothing(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    await engine.warmup()
    assert fake.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["bytes", "sse"])
async def test_a_redirect_is_a_502_never_audio(engine: CartesiaEngine, fake: FakeCartesia, stream: bool) -> None:
    # Redirects are not followed (the bearer key must not travel elsewhere), so a 3xx body is no audio.
    fake.behaviour.tts_status = 307
    got, err = await collect(engine, make_request(stream))
    assert got == [] and isinstance(err, UpstreamError) and http_status(err) == 502
