"""Tenants over HTTP and the websocket: keys, allowed models, limits as 429s, concurrency shared by both."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.server.tenants.helpers import BODY, MODEL, auth, write_tenants
from tests.support.fake_engine import FakeEngine
from tests.support.realtime import append, commit, connect, until


@pytest.fixture
def tenants_file(tmp_path):
    return tmp_path / "tenants.json"


def test_keys_file_keys_work_and_others_do_not(fake_server, tenants_file):
    keys = write_tenants(tenants_file, {"acme": {}})
    with fake_server(keys_file=tenants_file, api_keys="plain-key") as (base, _):
        assert httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["acme"])).status_code == 200
        assert httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth("plain-key")).status_code == 200
        r = httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth("key-nobody"))
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.post(f"{base}/v1/audio/speech", json=BODY).status_code == 401


def test_model_outside_the_list_is_403(fake_server, tenants_file):
    keys = write_tenants(tenants_file, {"narrow": {"models": ["canopylabs/orpheus-3b-0.1-ft"]}, "wide": {}})
    with fake_server(keys_file=tenants_file) as (base, _):
        r = httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["narrow"]))
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "model_not_allowed" and r.json()["error"]["param"] == "model"
        assert httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["wide"])).status_code == 200


def test_requests_per_minute_over_http(fake_server, tenants_file):
    keys = write_tenants(
        tenants_file, {"small": {"limits": {"requests_per_minute": 3}}, "other": {"limits": {"requests_per_minute": 3}}}
    )
    with fake_server(keys_file=tenants_file) as (base, _):
        for _ in range(3):
            assert httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["small"])).status_code == 200
        r = httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["small"]))
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "requests_per_minute_exceeded" and error["type"] == "rate_limit_exceeded"
        assert 55 <= int(r.headers["retry-after"]) <= 60
        # One tenant at its limit does not affect another.
        assert httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["other"])).status_code == 200


def test_chars_per_minute_over_http(fake_server, tenants_file):
    keys = write_tenants(tenants_file, {"t": {"limits": {"chars_per_minute": 2 * len(BODY["input"])}}})
    with fake_server(keys_file=tenants_file) as (base, _):
        for _ in range(2):
            assert httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["t"])).status_code == 200
        r = httpx.post(f"{base}/v1/audio/speech", json={**BODY, "input": "A"}, headers=auth(keys["t"]))
        assert r.status_code == 429 and r.json()["error"]["code"] == "chars_per_minute_exceeded"


def test_openai_route_is_limited_too(fake_server, tenants_file):
    keys = write_tenants(tenants_file, {"t": {"limits": {"requests_per_minute": 1}}})
    body = {"model": "tts-1", "input": "Hi.", "voice": "alpha", "response_format": "wav"}
    with fake_server(keys_file=tenants_file, openai_voices="alpha=alpha") as (base, _):
        assert httpx.post(f"{base}/v1/audio/speech/openai", json=body, headers=auth(keys["t"])).status_code == 200
        r = httpx.post(f"{base}/v1/audio/speech/openai", json=body, headers=auth(keys["t"]))
        assert r.status_code == 429 and r.json()["error"]["code"] == "requests_per_minute_exceeded"


async def _stream_open(base: str, key: str, started: asyncio.Event, release: asyncio.Event) -> int:
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream(
            "POST",
            f"{base}/v1/audio/speech",
            json={**BODY, "stream": True, "response_format": "raw"},
            headers=auth(key),
        ) as response:
            started.set()
            await release.wait()
            await response.aread()
            return response.status_code


def test_concurrent_streams_over_http(fake_server, tenants_file):
    keys = write_tenants(tenants_file, {"t": {"limits": {"concurrent_streams": 1}}, "u": {}})
    engine = FakeEngine(chunks=20, delay_s=0.05)

    async def scenario(base: str) -> None:
        started, release = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(_stream_open(base, keys["t"], started, release))
        await started.wait()
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["t"]))
            assert r.status_code == 429 and r.json()["error"]["code"] == "concurrent_streams_exceeded"
            assert r.headers["retry-after"] == "1"
            assert (await client.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["u"]))).status_code == 200
            release.set()
            assert await first == 200
            assert (await client.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["t"]))).status_code == 200

    with fake_server(engine=engine, keys_file=tenants_file) as (base, _):
        asyncio.run(scenario(base))


def test_websocket_items_count_toward_concurrency(fake_server, tenants_file):
    keys = write_tenants(tenants_file, {"t": {"limits": {"concurrent_streams": 1}}})
    engine = FakeEngine(chunks=30, delay_s=0.05)

    async def scenario(base: str) -> None:
        async with connect(base, model=MODEL, voice="alpha", api_key=keys["t"]) as ws:
            await until(ws, "session.created")
            await append(ws, "Hello there.")
            await commit(ws)
            await until(ws, "conversation.item.audio_output.delta")
            async with httpx.AsyncClient(timeout=30) as client:
                r = await client.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["t"]))
                assert r.status_code == 429 and r.json()["error"]["code"] == "concurrent_streams_exceeded"
                # A second item on the same socket is one more stream: refused too, in-band.
                await append(ws, "More text.")
                events = await until(ws, "conversation.item.tts.failed")
                assert events[-1]["error"]["code"] == "concurrent_streams_exceeded"
                await until(ws, "conversation.item.audio_output.done")
                r = await client.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["t"]))
                assert r.status_code == 200

    with fake_server(engine=engine, keys_file=tenants_file) as (base, _):
        asyncio.run(scenario(base))


def test_websocket_connect_is_checked(fake_server, tenants_file):
    keys = write_tenants(
        tenants_file, {"t": {"limits": {"requests_per_minute": 1}}, "narrow": {"models": ["other/model"]}}
    )

    async def scenario(base: str) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["t"]))).status_code == 200
        with pytest.raises(InvalidStatus) as caught:
            async with connect(base, model=MODEL, voice="alpha", api_key=keys["t"]):
                pass
        response = caught.value.response
        assert response.status_code == 429 and 55 <= int(response.headers["retry-after"]) <= 60
        assert json.loads(response.body)["error"]["code"] == "requests_per_minute_exceeded"
        with pytest.raises(InvalidStatus) as caught:
            async with connect(base, model=MODEL, voice="alpha", api_key=keys["narrow"]):
                pass
        assert caught.value.response.status_code == 403

    with fake_server(keys_file=tenants_file) as (base, _):
        asyncio.run(scenario(base))


def test_websocket_items_are_charged_per_item(fake_server, tenants_file):
    keys = write_tenants(tenants_file, {"t": {"limits": {"requests_per_minute": 2}}})

    async def scenario(base: str) -> None:
        async with connect(base, model=MODEL, voice="alpha", api_key=keys["t"]) as ws:
            await until(ws, "session.created")
            for _ in range(2):
                await append(ws, "Hello.")
                await commit(ws)
                await until(ws, "conversation.item.audio_output.done")
            await append(ws, "Third.")
            event = (await until(ws, "conversation.item.tts.failed"))[-1]
            assert event["error"]["code"] == "requests_per_minute_exceeded"

    with fake_server(keys_file=tenants_file) as (base, _):
        asyncio.run(scenario(base))


def test_log_line_names_the_tenant_never_the_key(fake_server, tenants_file, caplog):
    keys = write_tenants(tenants_file, {"acme": {}})
    with caplog.at_level(logging.DEBUG):
        with fake_server(keys_file=tenants_file) as (base, _):
            httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["acme"]))
            httpx.get(f"{base}/metrics")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "tts_server.requests"]
    speech = [line for line in lines if line["path"] == "/v1/audio/speech"]
    assert speech and speech[0]["tenant"] == "acme"
    assert keys["acme"] not in caplog.text


@pytest.mark.parametrize("bad", ["{not json", '{"tenants": [{"name": "x", "keys": ["plain-text-key"]}]}'])
def test_broken_file_refuses_to_start(tmp_path, bad):
    from server.app import create_app
    from server.settings import Settings
    from server.tenants.keyfile import KeysFileError

    path = tmp_path / "t.json"
    path.write_text(bad)
    with pytest.raises(KeysFileError):
        create_app(Settings(keys_file=path), engines={MODEL: FakeEngine()})


def test_websocket_append_past_chars_per_minute_is_refused_and_the_item_goes_on(fake_server, tenants_file):
    keys = write_tenants(tenants_file, {"t": {"limits": {"chars_per_minute": 12}}})

    async def scenario(base: str) -> None:
        async with connect(base, model=MODEL, voice="alpha", api_key=keys["t"]) as ws:
            await until(ws, "session.created")
            await append(ws, "Hello ")  # 6
            await append(ws, "there.")  # 12: at the limit, allowed
            await append(ws, "!")  # 13: refused, naming the item
            failed = (await until(ws, "conversation.item.tts.failed"))[-1]
            assert failed["error"]["code"] == "chars_per_minute_exceeded" and failed["item_id"] == "tts_1"
            await commit(ws)
            await until(ws, "conversation.item.audio_output.done")

    with fake_server(keys_file=tenants_file) as (base, engine):
        asyncio.run(scenario(base))
        assert engine.committed_texts == ["Hello there."]
