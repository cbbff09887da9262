"""/metrics speaks Prometheus; /openapi.json describes the server as it behaves; /docs works offline."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engines.histogram import Histogram, from_counts
from server.app import create_app
from server.settings import Settings
from tests.reliability.helpers import MODEL, WorkerEngine, drain
from tests.support.realtime import connect, recv
from tests.support.servers import serve_app


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_engine_and_websocket_metrics():
    engine = WorkerEngine(chunks=3)
    body = {"model": MODEL, "input": "Hello there.", "voice": "alpha"}
    with serve_app(create_app(Settings(models=[MODEL], warmup=False), engines={MODEL: engine})) as base:
        for _ in range(2):
            assert httpx.post(f"{base}/v1/audio/speech", json=body).status_code == 200
        assert httpx.post(f"{base}/v1/audio/speech", json={**body, "voice": "nobody"}).status_code == 400

        async def websocket() -> None:
            async with connect(base, model=MODEL, voice="alpha") as ws:
                await recv(ws)  # session.created: the session is open now
                open_now = samples(httpx.get(f"{base}/metrics").text)
                assert value(open_now, "tts_websocket_sessions_open", model=MODEL) == 1

        asyncio.run(websocket())
        response = httpx.get(f"{base}/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        m = samples(response.text)
    route = "/v1/audio/speech"
    assert value(m, "tts_requests_total", model=MODEL, route=route, status="200") == 2
    assert value(m, "tts_requests_total", model=MODEL, route=route, status="400") == 1
    assert value(m, "tts_time_to_first_audio_seconds_count", model=MODEL, route=route) == 2
    assert value(m, "tts_request_duration_seconds_count", model=MODEL, route=route) == 3
    assert abs(value(m, "tts_audio_seconds_total", model=MODEL) - 2 * 0.3) < 1e-6  # 3 chunks of 0.1 s each
    assert value(m, "tts_websocket_sessions_open", model=MODEL) == 0
    assert value(m, "tts_model_ready", model=MODEL, status="ready") == 1
    assert value(m, "tts_queue_depth", model=MODEL) == 0 and value(m, "tts_queue_capacity", model=MODEL) == 16
    assert value(m, "tts_queue_wait_seconds_count", model=MODEL) == 2
    assert value(m, "tts_batch_size_count", model=MODEL) >= 3
    assert value(m, "tts_jobs_completed_total", model=MODEL) == 2
    assert value(m, "tts_requests_in_flight") == 0


async def test_backlogged_jobs_pause_and_resume():
    """A reader that does not read pauses its own job at max_buffered_s; other jobs go on."""
    engine = WorkerEngine(max_buffered_s=0.35)  # each step emits 0.1 s
    await engine.load()
    try:
        worker = engine.worker
        slow = worker.submit({"i": 0, "n": 40})
        fast = worker.submit({"i": 0, "n": 40})
        assert len(await drain(fast)) == 40  # not held back by the stalled one
        await asyncio.sleep(0.2)
        assert slow.steps <= 4 and slow.buffered_seconds <= 0.35 + 0.1 + 1e-9
        assert len(await drain(slow)) == 40  # reading resumes it
    finally:
        await engine.close()


def test_engine_histograms_have_prometheus_bucket_semantics():
    histogram = Histogram((1, 2, 4))
    for v in (0.5, 1, 1.5, 4, 9):
        histogram.observe(v)
    snap = histogram.snapshot()
    assert snap["buckets"] == [[1, 2], [2, 3], [4, 4]] and snap["count"] == 5 and snap["sum"] == 16
    assert from_counts({1: 3, 3: 2})["buckets"][:3] == [[1, 3], [2, 3], [4, 5]]


def test_openapi_is_true_to_the_server(api):
    base = api[0]
    spec = httpx.get(f"{base}/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A key from TTS_API_KEYS (if set).",
    }
    speech = spec["paths"]["/v1/audio/speech"]["post"]
    assert {"audio/wav", "audio/mpeg", "application/octet-stream", "text/event-stream"} <= set(
        speech["responses"]["200"]["content"]
    )
    for status in ("400", "401", "404", "429", "503"):
        schema = speech["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    assert speech["security"] == [{"bearerAuth": []}] and "Retry-After" in speech["responses"]["429"]["headers"]
    assert spec["paths"]["/health"]["get"]["security"] == []
    codes = {p: {m: list(o["responses"]) for m, o in i.items()} for p, i in spec["paths"].items()}
    assert "422" not in json.dumps(codes) and "HTTPValidationError" not in json.dumps(spec)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("description"), (method, path)
    for name, schema in spec["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            assert prop.get("description"), (name, field)


def test_docs_load_swagger_ui_from_this_server(api):
    base = api[0]
    page = httpx.get(f"{base}/docs").text
    assert "/docs/static/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    js = httpx.get(f"{base}/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert httpx.get(f"{base}/docs/static/swagger-ui.css").status_code == 200


def test_gpu_memory_is_reported_only_where_cuda_runs():
    import torch

    from server.metrics import _gpu_memory

    families = {family.name: family for family in _gpu_memory()}
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        assert families == {}
        return
    assert {"tts_gpu_memory_allocated_bytes", "tts_gpu_memory_reserved_bytes", "tts_gpu_memory_total_bytes"} <= set(
        families
    )


@pytest.mark.gpu
def test_gpu_memory_metrics_on_cuda():
    import torch

    from server.metrics import _gpu_memory

    held = torch.zeros(1 << 20, device="cuda")
    families = {family.name: family for family in _gpu_memory()}
    allocated = families["tts_gpu_memory_allocated_bytes"].samples[0]
    assert allocated.labels == {"device": "cuda:0"} and allocated.value >= held.numel() * 4
