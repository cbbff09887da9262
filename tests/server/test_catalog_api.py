"""GET /v1/voices, /v1/models, /health and /ready."""

import asyncio
import time

import httpx

from engines.base import Engine, Voice
from server.app import create_app
from server.settings import Settings
from tests.support.servers import serve_app


def test_voices_in_togethers_shape(api):
    base, _ = api
    body = httpx.get(f"{base}/v1/voices").json()
    assert body["data"] == [
        {
            "model": "hexgrad/Kokoro-82M",
            "voices": [{"id": "alpha", "name": "alpha", "language": "en-US", "gender": "female"}],
        }
    ]


def test_voices_filter_by_model_and_alias(api):
    base, _ = api
    assert (
        httpx.get(f"{base}/v1/voices", params={"model": "hexgrad/Kokoro-82M"}).json()["data"][0]["model"]
        == "hexgrad/Kokoro-82M"
    )
    assert httpx.get(f"{base}/v1/voices", params={"model": "kokoro"}).status_code == 200
    r = httpx.get(f"{base}/v1/voices", params={"model": "acme/none"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"


def test_models_list_is_togethers_array_by_default(api):
    base, _ = api
    for path in ("/v1/models", "/models"):
        body = httpx.get(f"{base}{path}").json()
        assert isinstance(body, list) and [m["id"] for m in body] == ["hexgrad/Kokoro-82M"]
        assert body[0]["object"] == "model" and body[0]["type"] == "audio" and body[0]["organization"] == "hexgrad"


def test_models_list_in_openai_shape_for_the_openai_sdk(api):
    base, _ = api
    by_agent = httpx.get(f"{base}/v1/models", headers={"User-Agent": "OpenAI/Python 2.8.1"}).json()
    by_query = httpx.get(f"{base}/v1/models", params={"format": "openai"}).json()
    for body in (by_agent, by_query):
        # The served model, then OpenAI's names that map to it (server/openai/).
        ids = [m["id"] for m in body["data"]]
        assert body["object"] == "list" and ids[0] == "hexgrad/Kokoro-82M" and {"tts-1", "tts-1-hd"} <= set(ids)
    together_agent = httpx.get(f"{base}/v1/models", headers={"User-Agent": "Together/Python 2.42.0"}).json()
    assert isinstance(together_agent, list)


def test_one_model_by_id(api):
    base, _ = api
    card = httpx.get(f"{base}/v1/models/hexgrad/Kokoro-82M").json()
    assert card["id"] == "hexgrad/Kokoro-82M" and card["object"] == "model"
    assert httpx.get(f"{base}/models/kokoro").json()["id"] == "hexgrad/Kokoro-82M"  # aliases, no /v1
    missing = httpx.get(f"{base}/v1/models/acme/none")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "model"


def test_every_route_answers_with_and_without_the_version_prefix(api):
    base, _ = api
    for prefix in ("", "/v1", "/v1/v1"):
        assert httpx.get(f"{base}{prefix}/voices").status_code == 200
        r = httpx.post(f"{base}{prefix}/audio/speech", json={"model": "kokoro", "input": "Hi.", "voice": "alpha"})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"


class SlowLoading(Engine):
    """Loads only when told to, so readiness can be observed before and after."""

    def __init__(self) -> None:
        super().__init__("hexgrad/Kokoro-82M", None)
        self.release = False

    async def load(self) -> None:
        while not self.release:
            await asyncio.sleep(0.02)

    def voices(self):
        return [Voice(id="a", name="a")]

    async def open_session(self, params):
        raise AssertionError("not used")


def test_liveness_answers_while_loading_and_readiness_waits():
    engine = SlowLoading()
    with serve_app(create_app(Settings(), engines={engine.model_id: engine}), wait_ready=False) as base:
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "loading"
        r = httpx.post(f"{base}/v1/audio/speech", json={"model": "hexgrad/Kokoro-82M", "input": "x", "voice": "a"})
        assert r.status_code == 503 and r.headers["retry-after"]
        engine.release = True
        for _ in range(100):
            if httpx.get(f"{base}/ready").status_code == 200:
                break
            time.sleep(0.05)
        assert httpx.get(f"{base}/ready").json()["status"] == "ready"


class FailsToLoad(SlowLoading):
    async def load(self) -> None:
        from server.errors import ServiceUnavailable

        raise ServiceUnavailable("weights missing: run tts-server download")


def test_failed_load_is_reported_not_hidden():
    engine = FailsToLoad()
    with serve_app(create_app(Settings(), engines={engine.model_id: engine}), wait_ready=False) as base:
        for _ in range(100):
            body = httpx.get(f"{base}/ready").json()
            if body["status"] != "loading":
                break
            time.sleep(0.05)
        assert body == {
            "status": "failed",
            "models": {"hexgrad/Kokoro-82M": "failed"},
            "errors": {"hexgrad/Kokoro-82M": "weights missing: run tts-server download"},
        }
        r = httpx.post(f"{base}/v1/audio/speech", json={"model": "hexgrad/Kokoro-82M", "input": "x", "voice": "a"})
        assert r.status_code == 503 and "tts-server download" in r.json()["error"]["message"]


def test_one_model_failing_does_not_hold_back_another(fake_server):
    from tests.support.fake_engine import FakeEngine

    good, bad = FakeEngine(), FailsToLoad()
    bad.model_id = "canopylabs/orpheus-3b-0.1-ft"
    app = create_app(Settings(), engines={good.model_id: good, bad.model_id: bad})
    with serve_app(app, wait_ready=False) as base:
        for _ in range(100):
            if httpx.get(f"{base}/ready").json()["models"][good.model_id] == "ready":
                break
            time.sleep(0.05)
        ready = httpx.get(f"{base}/ready")
        assert ready.status_code == 503 and ready.json()["models"][bad.model_id] == "failed"
        ok = httpx.post(f"{base}/v1/audio/speech", json={"model": good.model_id, "input": "x", "voice": "alpha"})
        assert ok.status_code == 200
        failed = httpx.post(f"{base}/v1/audio/speech", json={"model": bad.model_id, "input": "x", "voice": "a"})
        assert failed.status_code == 503


def test_voice_entries_never_carry_nulls(fake_server):
    # The v1 SDK parses each voice as Dict[str, str]: a null would break `voices.list()`.
    from tests.support.fake_engine import FakeEngine

    class Sparse(FakeEngine):
        def voices(self):
            return [Voice(id="custom", name="custom")]

    with fake_server(Sparse()) as (base, _):
        assert httpx.get(f"{base}/v1/voices").json()["data"][0]["voices"] == [{"id": "custom", "name": "custom"}]
