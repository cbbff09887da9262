"""Usage accounting: what each tenant sent and received, in /metrics and GET /v1/usage, across restarts."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest
import soundfile as sf

from server.app import create_app
from server.settings import Settings
from tests.server.tenants.helpers import BODY, MODEL, auth, write_tenants
from tests.support.fake_engine import RATE, FakeEngine
from tests.support.realtime import append, commit, connect, pcm_of, until
from tests.support.servers import serve_app


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "tenants.json"
    keys = write_tenants(path, {"a": {}, "b": {}, "ops": {"admin": True}})
    return path, keys, tmp_path / "data"


def usage(base: str, key: str, **query) -> dict:
    r = httpx.get(f"{base}/v1/usage", params=query, headers=auth(key))
    assert r.status_code == 200, r.text
    return {(row["tenant"], row["model"]): row for row in r.json()["data"]}


def usage_when(base: str, key: str, ready, **query) -> dict:
    """Usage once ``ready(rows)`` holds: a request's record is written just after its last byte."""
    for _ in range(100):
        rows = usage(base, key, **query)
        if ready(rows):
            return rows
        asyncio.run(asyncio.sleep(0.05))
    raise AssertionError(f"usage never became ready: {rows}")


def wav_seconds(data: bytes) -> float:
    samples, rate = sf.read(io.BytesIO(data))
    return len(samples) / rate


def test_characters_and_audio_match_what_was_sent_and_received(fake_server, setup):
    path, keys, data_dir = setup
    inputs = ["Hello there.", "A somewhat longer sentence for tenant a."]
    with fake_server(engine=FakeEngine(chunks=4), keys_file=path, data_dir=data_dir) as (base, _):
        received_a = 0.0
        for text in inputs:
            r = httpx.post(f"{base}/v1/audio/speech", json={**BODY, "input": text}, headers=auth(keys["a"]))
            received_a += wav_seconds(r.content)
        raw = {**BODY, "input": "Raw.", "response_format": "raw", "response_encoding": "pcm_s16le"}
        r = httpx.post(f"{base}/v1/audio/speech", json=raw, headers=auth(keys["b"]))
        received_b = len(r.content) / 2 / RATE
        r = httpx.post(f"{base}/v1/audio/speech", json={**BODY, "voice": "nope"}, headers=auth(keys["b"]))
        assert r.status_code == 400

        rows = usage_when(base, keys["ops"], lambda r: sum(sum(row["requests"].values()) for row in r.values()) == 4)
        a, b = rows[("a", MODEL)], rows[("b", MODEL)]
        assert a["input_characters"] == sum(len(t) for t in inputs) and a["requests"] == {"200": 2}
        assert a["audio_seconds"] == pytest.approx(received_a, abs=1e-3)
        assert b["input_characters"] == len("Raw.")  # the refused request's text was not spoken
        assert b["requests"] == {"200": 1, "400": 1}
        assert b["audio_seconds"] == pytest.approx(received_b, abs=1e-3)
        assert a["first_audio_seconds_mean"] is not None and a["first_audio_seconds_mean"] >= 0
        assert ("ops", MODEL) not in rows

        metrics = httpx.get(f"{base}/metrics").text
        assert f'tts_tenant_input_characters_total{{model="{MODEL}",tenant="a"}} {float(len("".join(inputs)))}' in (
            metrics
        )
        assert f'tts_tenant_requests_total{{model="{MODEL}",status="400",tenant="b"}} 1.0' in metrics
        assert f'tts_tenant_time_to_first_audio_seconds_count{{model="{MODEL}",tenant="a"}} 2.0' in metrics
        assert keys["a"] not in metrics


def test_usage_survives_a_restart(setup):
    path, keys, data_dir = setup

    def serve():
        engine = FakeEngine()
        return serve_app(create_app(Settings(keys_file=path, data_dir=data_dir), engines={MODEL: engine}))

    with serve() as base:
        for _ in range(3):
            assert httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["a"])).status_code == 200
        before = usage_when(base, keys["ops"], lambda r: r.get(("a", MODEL), {}).get("requests") == {"200": 3})
    with serve() as base:
        after = usage(base, keys["ops"])
        assert after[("a", MODEL)]["requests"] == {"200": 3}
        assert after[("a", MODEL)]["input_characters"] == 3 * len(BODY["input"])
        assert after == before
        httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["a"]))
    with serve() as base:
        assert usage(base, keys["ops"])[("a", MODEL)]["requests"] == {"200": 4}


def test_a_disconnected_stream_counts_only_the_audio_sent(fake_server, setup):
    path, keys, data_dir = setup
    engine = FakeEngine(chunks=200, delay_s=0.02)  # 200 chunks of 0.1 s: 20 s of audio over 4 s
    chunk_s = engine.chunk_samples / RATE

    async def listen_briefly(base: str) -> float:
        body = {**BODY, "stream": True, "response_format": "raw", "response_encoding": "pcm_s16le"}
        got = 0
        async with httpx.AsyncClient(timeout=30) as client:
            async with client.stream("POST", f"{base}/v1/audio/speech", json=body, headers=auth(keys["a"])) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: {"):
                        got += 1
                        if got == 5:
                            break
        return got * chunk_s

    with fake_server(engine=engine, keys_file=path, data_dir=data_dir) as (base, _):
        heard = asyncio.run(listen_briefly(base))
        rows = usage_when(base, keys["ops"], lambda r: ("a", MODEL) in r)  # after the server notices
        counted = rows[("a", MODEL)]["audio_seconds"]
        assert heard <= counted <= heard + 5 * chunk_s, (heard, counted)
        assert engine.closed_early == 1


def test_websocket_items_are_accounted_one_by_one(fake_server, setup):
    path, keys, data_dir = setup
    texts = ["First item.", "Second, longer item of text."]

    async def scenario(base: str) -> float:
        pcm = b""
        async with connect(base, model=MODEL, voice="alpha", api_key=keys["b"]) as ws:
            await until(ws, "session.created")
            for text in texts:
                await append(ws, text)
                await commit(ws)
                pcm += pcm_of(await until(ws, "conversation.item.audio_output.done"))
        return len(pcm) / 2 / RATE

    with fake_server(keys_file=path, data_dir=data_dir) as (base, _):
        received = asyncio.run(scenario(base))
        rows = usage_when(
            base, keys["ops"], lambda r: sum(r.get(("b", MODEL), {"requests": {}})["requests"].values()) == 2
        )
        row = rows[("b", MODEL)]
        assert row["requests"] == {"200": 2} and row["input_characters"] == sum(map(len, texts))
        assert row["audio_seconds"] == pytest.approx(received, abs=1e-3)


def test_usage_is_for_admins_only(fake_server, setup):
    path, keys, data_dir = setup
    with fake_server(keys_file=path, api_keys="plain", data_dir=data_dir) as (base, _):
        r = httpx.get(f"{base}/v1/usage", headers=auth(keys["a"]))
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
        assert httpx.get(f"{base}/v1/usage", headers=auth("plain")).status_code == 403
        assert httpx.get(f"{base}/v1/usage").status_code == 401
        assert httpx.get(f"{base}/v1/usage", headers=auth(keys["ops"])).status_code == 200
    with fake_server(api_keys="plain", data_dir=data_dir) as (base, _):  # no tenants file: any key
        assert httpx.get(f"{base}/v1/usage", headers=auth("plain")).status_code == 200


def test_usage_time_range(fake_server, setup):
    path, keys, data_dir = setup
    with fake_server(keys_file=path, data_dir=data_dir) as (base, _):
        httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(keys["a"]))
        assert usage_when(base, keys["ops"], lambda r: ("a", MODEL) in r, **{"from": "2020-01-01T00:00:00Z"})
        assert usage(base, keys["ops"], **{"from": "2020-01-01", "to": "2020-01-02"}) == {}
        r = httpx.get(f"{base}/v1/usage", params={"from": "yesterday"}, headers=auth(keys["ops"]))
        assert r.status_code == 400 and r.json()["error"]["param"] == "from"
