import logging

import httpx
import pytest

BODY = {"model": "hexgrad/Kokoro-82M", "input": "Hi.", "voice": "alpha"}


@pytest.fixture(scope="module")
def secured():
    from server.app import create_app
    from server.settings import Settings
    from tests.support.fake_engine import FakeEngine
    from tests.support.servers import serve_app

    engine = FakeEngine()
    with serve_app(create_app(Settings(api_keys="key-one,key-two"), engines={engine.model_id: engine})) as base:
        yield base


@pytest.mark.parametrize("path", ["/v1/voices", "/v1/models"])
def test_missing_key_is_401(secured, path):
    r = httpx.get(secured + path)
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"


def test_wrong_key_is_401(secured):
    r = httpx.post(f"{secured}/v1/audio/speech", json=BODY, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert "nope" not in r.text


@pytest.mark.parametrize("key", ["key-one", "key-two"])
def test_each_configured_key_works(secured, key):
    r = httpx.post(f"{secured}/v1/audio/speech", json=BODY, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200


def test_health_needs_no_key(secured):
    assert httpx.get(f"{secured}/health").status_code == 200
    assert httpx.get(f"{secured}/ready").status_code == 200


def test_open_server_warns_at_startup(fake_server, caplog):
    with caplog.at_level(logging.WARNING, logger="server.app"):
        with fake_server() as (base, _):
            assert httpx.post(f"{base}/v1/audio/speech", json=BODY).status_code == 200
    assert any("no API keys" in rec.message for rec in caplog.records)


def test_keys_never_reach_the_log(fake_server, caplog):
    with caplog.at_level(logging.DEBUG):
        with fake_server(api_keys="very-secret-key") as (base, _):
            httpx.post(f"{base}/v1/audio/speech", json=BODY, headers={"Authorization": "Bearer wrong-key"})
            httpx.post(f"{base}/v1/audio/speech", json=BODY, headers={"Authorization": "Bearer very-secret-key"})
    assert "very-secret-key" not in caplog.text and "wrong-key" not in caplog.text
