"""HTTP hygiene on a real socket: the key before the body, bounded headers and bodies, no slow clients,
malformed requests in Together's error shape, 401 with WWW-Authenticate, 404 naming the loaded models."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from server.app import create_app
from server.settings import Settings
from tests.reliability.helpers import MODEL, assert_error
from tests.support.fake_engine import FakeEngine
from tests.support.servers import serve_app

KEY = "sk-hygiene-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server():
    settings = Settings(
        models=[MODEL],
        api_keys=KEY,
        warmup=False,
        header_timeout_s=0.5,
        body_timeout_s=0.5,
        max_body_bytes=64 * 1024,
        max_header_bytes=16 * 1024,
    )
    with serve_app(create_app(settings, engines={MODEL: FakeEngine()})) as base:
        yield base


def raw(base: str, data: bytes, *, then_wait: float = 5.0) -> tuple[bytes, float]:
    """Send ``data`` on a fresh connection; return what comes back until the server closes, and when."""
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=then_wait) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused before we finished: its answer is still there to read
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks), time.monotonic() - started


def parse(response: bytes) -> tuple[int, dict, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


def check_shape(body: dict) -> None:
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}


def test_wrong_key_is_401_before_the_body_is_read(server):
    # 50 MB announced, nothing sent: the 401 must come at once, not after reading (or waiting for) the body.
    request = b"POST /v1/audio/speech HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    request += b"Content-Length: 52428800\r\n\r\n"
    answer, elapsed = raw(server, request)
    status, headers, body = parse(answer)
    assert status == 401 and headers["www-authenticate"] == "Bearer" and elapsed < 2
    check_shape(body)


def test_malformed_json_with_a_wrong_key_is_401_not_400(server):
    r = httpx.post(f"{server}/v1/audio/speech", content=b"{bad", headers={"content-type": "application/json"})
    assert assert_error(r, 401)["code"] == "missing_api_key" and r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(f"{server}/v1/audio/speech", content=b"{bad", headers={**AUTH, "content-type": "application/json"})
    assert_error(r, 400)


def test_oversized_bodies_are_413_whether_announced_or_streamed(server):
    big = b'{"input": "' + b"a" * (70 * 1024) + b'"}'
    r = httpx.post(f"{server}/v1/audio/speech", content=big, headers={**AUTH, "content-type": "application/json"})
    assert_error(r, 413, "request_too_large")

    def chunks():
        for _ in range(10):
            yield b"a" * 8192 + b" "

    r = httpx.post(f"{server}/v1/audio/speech", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert_error(r, 413, "request_too_large")


def test_oversized_headers_are_431_in_the_error_shape(server):
    request = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n"
    status, _, body = parse(raw(server, request)[0])
    assert status == 431
    check_shape(body)


def test_headers_that_trickle_in_are_cut_off(server):
    answer, elapsed = raw(server, b"POST /v1/audio/speech HTTP/1.1\r\nHost: t\r\n")
    status, _, body = parse(answer)
    assert status == 408 and elapsed < 3
    check_shape(body)


def test_a_body_that_never_arrives_is_cut_off(server):
    request = b"POST /v1/audio/speech HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + KEY.encode()
    request += b'\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model"'
    answer, elapsed = raw(server, request)
    status, _, body = parse(answer)
    assert status == 408 and elapsed < 3
    check_shape(body)


def test_malformed_http_is_400_in_the_error_shape(server):
    status, headers, body = parse(raw(server, b"NOT HTTP AT ALL\r\n\r\n")[0])
    assert status == 400 and headers["content-type"] == "application/json"
    check_shape(body)


def test_idle_keep_alive_connections_are_closed_quietly(server):
    answer, elapsed = raw(server, b"")
    assert answer == b"" and elapsed < 7


def test_probes_docs_and_metrics_need_no_key(server):
    for path in ("/health", "/ready", "/metrics", "/openapi.json", "/docs"):
        assert httpx.get(f"{server}{path}").status_code == 200, path
    assert_error(httpx.get(f"{server}/stats"), 401)
    assert httpx.get(f"{server}/stats", headers=AUTH).status_code == 200


def test_stats_show_each_models_settings_without_secrets():
    """How a running server is configured, for benchmarks of it; keys never appear."""
    settings = Settings(models=[MODEL], api_keys=KEY, warmup=False, max_wait_ms=7.5, CARTESIA_API_KEY="sk_car_secret")
    with serve_app(create_app(settings, engines={MODEL: FakeEngine()})) as base:
        response = httpx.get(f"{base}/stats", headers=AUTH)
    shown = response.json()[MODEL]["settings"]
    assert shown["max_wait_ms"] == 7.5 and shown["batch_policy"] == "auto" and shown["max_batch_size"] is None
    assert "g2p_workers" in shown and "api_key" not in shown and "temperature" not in shown  # Kokoro's section only
    assert "sk_car_secret" not in response.text and KEY not in response.text


def test_unknown_model_is_404_naming_the_loaded_models(server):
    body = {"model": "someone/unknown-tts", "input": "Hi.", "voice": "alpha"}
    error = assert_error(httpx.post(f"{server}/v1/audio/speech", json=body, headers=AUTH), 404)
    assert MODEL in error["message"] and error["param"] == "model"
    body["model"] = "canopylabs/orpheus-3b-0.1-ft"  # known to the registry, not loaded here
    assert MODEL in assert_error(httpx.post(f"{server}/v1/audio/speech", json=body, headers=AUTH), 404)["message"]


@pytest.mark.parametrize("path", ["/v1/audio/speech", "/v1/audio/speech/openai"])
@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"input": ' + b'{"a": ' * 50_000, b'{"x": [[[[' * 9 + b"1"])
def test_deeply_nested_json_is_400_not_500(path, body):
    """Python's JSON decoder would recurse until RecursionError (a 500); the depth is checked first."""
    with serve_app(create_app(Settings(models=[MODEL], warmup=False), engines={MODEL: FakeEngine()})) as base:
        r = httpx.post(f"{base}{path}", content=body, headers={"content-type": "application/json"}, timeout=30)
        error = assert_error(r, 400, "invalid_json")
        assert "32 levels" in error["message"]
        # Brackets inside strings are text, and ordinary bodies still work.
        ok = httpx.post(f"{base}/v1/audio/speech", json={"model": MODEL, "voice": "alpha", "input": "[" * 500})
        assert ok.status_code == 200


def test_json_depth_counts_structure_not_text():
    from server.json_depth import json_depth

    assert json_depth(b'{"a": [1, {"b": "[[[{{{"}]}') == 3
    assert json_depth('"\\"[[[["') == 0 and json_depth(b"[[]][[[]]]") == 3 and json_depth(b"42") == 0
