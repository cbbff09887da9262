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


def test_models_list(api):
    base, _ = api
    body = httpx.get(f"{base}/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["hexgrad/Kokoro-82M"]
    assert body["data"][0]["object"] == "model"


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

    async def validate(self, request):
        pass

    async def synthesize(self, request):
        yield  # pragma: no cover


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
