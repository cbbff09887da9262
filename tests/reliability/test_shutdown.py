"""Graceful shutdown of the real ``tts-server serve`` process with streams in flight.

Before: SIGTERM waited for every open stream without limit (131 s with 4 Kokoro streams), refused
new connections meanwhile (so liveness failed), and SIGTERM then SIGINT cut streams off with
neither an error event nor ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from tests.reliability.helpers import MODEL, assert_error, sse_events, wait_until
from tests.support.realtime import connect, recv

TEXT = "This stream keeps talking for a long while, sentence after sentence, until it is stopped. " * 6


@contextlib.contextmanager
def cli_server(kokoro_dir, *args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    cmd = [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--kokoro-source", str(kokoro_dir), "--device", "cpu", "--torch-threads", "1", "--no-warmup"]
    cmd += ["--first-segment-chars", "40", "--segment-chars", "60", *args]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is not None or _ready(base), timeout=180, interval=0.2)
        assert proc.poll() is None, _tail(log)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _tail(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def start_streams(base: str, count: int) -> tuple[list[list], list[threading.Thread]]:
    results: list[list] = [[] for _ in range(count)]

    def run(i: int) -> None:
        body = {"model": MODEL, "input": TEXT, "voice": "af_heart", "stream": True, "response_format": "raw"}
        with httpx.stream("POST", f"{base}/v1/audio/speech", json=body, timeout=120) as r:
            for line in r.iter_lines():
                results[i].extend(sse_events([line]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    wait_until(lambda: all(any(isinstance(e, dict) and "b64" in e for e in r) for r in results), timeout=180)
    return results, threads


def assert_ended_properly(results: list[list]) -> None:
    for events in results:
        assert events[-1] == "[DONE]", events[-3:]
        last = events[-2]
        assert "b64" in last or last["error"]["code"] == "server_shutdown", last


def test_sigterm_drains_answers_health_and_ends_streams_within_the_grace(kokoro_dir):
    with cli_server(kokoro_dir, "--shutdown-grace-s", "2", "--max-batch-size", "4") as (base, proc):
        results, threads = start_streams(base, 4)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: httpx.get(f"{base}/health", timeout=2).json()["status"] == "draining", timeout=5)
        assert httpx.get(f"{base}/health", timeout=2).status_code == 200  # liveness holds while draining
        assert httpx.get(f"{base}/ready", timeout=2).status_code == 503
        body = {"model": MODEL, "input": "Hi.", "voice": "af_heart"}
        refused = httpx.post(f"{base}/v1/audio/speech", json=body, timeout=5)
        assert_error(refused, 503, "server_shutting_down")
        assert refused.headers["retry-after"] == "1"
        proc.wait(60)
        exit_s = time.monotonic() - sent
        for thread in threads:
            thread.join(10)
    assert proc.returncode == 0
    assert_ended_properly(results)
    assert any(events[-2].get("error") for events in results)  # these inputs outlast a 2 s grace
    assert exit_s < 2 + 10, exit_s
    print(f"\nshutdown: 4 streams in flight, exit {exit_s:.1f} s after SIGTERM (grace 2 s)")


def test_a_second_signal_ends_streams_at_once_still_with_an_error_event_and_done(kokoro_dir):
    with cli_server(kokoro_dir, "--shutdown-grace-s", "30") as (base, proc):
        results, threads = start_streams(base, 2)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        exit_s = time.monotonic() - sent
        for thread in threads:
            thread.join(10)
    assert_ended_properly(results)
    assert all(events[-2].get("error") for events in results)
    assert exit_s < 12, exit_s  # not the 30 s grace
    print(f"\nshutdown after SIGTERM + SIGINT: exit in {exit_s:.1f} s")


def test_sigterm_ends_a_realtime_socket_with_server_shutdown_and_refuses_new_ones(kokoro_dir):
    grace_s = 3.0
    args = ("--shutdown-grace-s", str(grace_s), "--realtime-idle-timeout-s", "60")
    with cli_server(kokoro_dir, *args) as (base, proc):

        async def talk():
            async with connect(base, voice="af_heart") as ws:
                created = await recv(ws, timeout=10)
                sent = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                async with httpx.AsyncClient() as client:
                    for _ in range(100):
                        if (await client.get(f"{base}/health", timeout=2)).json()["status"] == "draining":
                            break
                        await asyncio.sleep(0.05)
                    else:
                        raise AssertionError("the server never started draining")
                with pytest.raises(InvalidStatus) as refused:  # within the grace period: the open socket waits
                    async with connect(base, voice="af_heart"):
                        pass
                failed = await recv(ws, timeout=grace_s + 10)
                ended_after_s = time.monotonic() - sent
                with pytest.raises(ConnectionClosedOK):
                    await recv(ws, timeout=10)
                return created, refused.value.response, failed, ended_after_s, ws.close_reason

        created, refused, failed, ended_after_s, reason = asyncio.run(talk())
        proc.wait(30)
    assert created["type"] == "session.created"
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert json.loads(refused.body)["error"]["code"] == "server_shutting_down"
    assert failed["type"] == "conversation.item.tts.failed" and failed["error"]["code"] == "server_shutdown"
    assert reason == "server_shutdown"
    assert grace_s <= ended_after_s < grace_s + 10, ended_after_s  # the socket had its grace period
    assert proc.returncode == 0
